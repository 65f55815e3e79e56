"""Checks that encoded bytes are an image Transform can decode, before they reach a batch.

ExampleGen uses it to reject files, the model server to reject request instances: both must
agree with the decoder inside the Transform graph, so both call that decoder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import tensorflow as tf

from contract.images import MAX_IMAGE_PIXELS
from modules.exif_orientation import jpeg_orientation, may_hold_orientation
from modules.image_header import pixels_problem

# Images one batched call decodes at a time: enough to keep every core busy, few enough
# that large photos do not all sit decoded in memory together.
_PARALLEL_DECODES = 8


class UndecodableImage(ValueError):
    """The bytes are not an image the pipeline can decode; the message says why."""


def decoded_size(data: bytes) -> tuple[int, int]:
    """(height, width) of `data` decoded exactly as `modules.transform` decodes it."""
    if not data:
        raise UndecodableImage("empty file (0 bytes)")
    # Eager decoding when there is no orientation to read: the server checks every image,
    # and a graph call costs more than a small image's decode.
    size_of = _upright_size if may_hold_orientation(data) else _stored_size
    try:
        height, width = size_of(data).numpy().tolist()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise UndecodableImage(f"cannot be decoded: {_op_message(error.message)}") from None
    if height == 0 or width == 0:
        raise UndecodableImage("decodes to an empty image")
    return height, width


def decoded_sizes(
    batch: Sequence[bytes], max_pixels: int = MAX_IMAGE_PIXELS
) -> list[tuple[int, int] | UndecodableImage]:
    """`decoded_size` of each image, or why it failed, decoding the whole batch in one call.

    An image whose header declares more than `max_pixels` is refused without being decoded.
    """
    answers: list[tuple[int, int] | UndecodableImage | None] = [None] * len(batch)
    to_decode = []
    for index, data in enumerate(batch):
        problem = pixels_problem(data, max_pixels)
        if problem:
            answers[index] = UndecodableImage(problem)
        else:
            to_decode.append(index)
    decoded = _sizes_in_one_call([batch[index] for index in to_decode])
    for index, size in zip(to_decode, decoded, strict=True):
        answers[index] = size
    return answers


def _sizes_in_one_call(batch: list[bytes]) -> list[tuple[int, int] | UndecodableImage]:
    """One graph call runs the decodes on every core; eager calls one at a time use one core.
    A batch with a bad image is decoded again image by image, so each gets its own answer."""
    if batch and all(batch):
        try:
            sizes = _batch_sizes(tf.constant(batch)).numpy()
        except tf.errors.OpError:
            pass
        else:
            if sizes.all():
                return [(int(height), int(width)) for height, width in sizes]
    return [_size_or_error(data) for data in batch]


def _stored_size(data: tf.Tensor | bytes) -> tf.Tensor:
    return tf.shape(tf.io.decode_image(data, channels=3, expand_animations=False))[:2]


def _size(data: tf.Tensor) -> tf.Tensor:
    """[height, width] upright. Decoding proves the bytes are an image; turning it cannot
    fail, so only the size is turned (a 40-megapixel transpose would cost 120 MB)."""
    size = _stored_size(data)
    return tf.where(jpeg_orientation(data) >= 5, tf.reverse(size, [0]), size)


# Graphs: the server checks each request's images eagerly, where each op is a call.
_upright_size = tf.function(_size, input_signature=[tf.TensorSpec([], tf.string)])


@tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
def _batch_sizes(batch: tf.Tensor) -> tf.Tensor:
    return tf.map_fn(
        _size,
        batch,
        fn_output_signature=tf.TensorSpec([2], tf.int32),
        parallel_iterations=_PARALLEL_DECODES,
    )


def _size_or_error(data: bytes) -> tuple[int, int] | UndecodableImage:
    try:
        return decoded_size(data)
    except UndecodableImage as error:
        return error


def _op_message(message: str) -> str:
    """The decoder's own words, without TensorFlow's op and device decoration (and, from a
    graph, the Python trace that precedes them)."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message or "")
    message = re.sub(r"\s*\[\[\{\{node [^}]*\}\}\]\]", "", message)
    message = re.sub(r"\s*\[Op:\w+\]$", "", message.strip()).rsplit("\n\n", 1)[-1]
    return message.strip() or "unknown decoder error"

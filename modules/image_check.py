"""Checks that encoded bytes are an image Transform can decode, before they reach a batch.

ExampleGen uses it to reject files, the model server to reject request instances: both must
agree with the decoder inside the Transform graph, so both call that decoder.
"""

from __future__ import annotations

import io
import re
import warnings

import tensorflow as tf
from PIL import Image


class UndecodableImage(ValueError):
    """The bytes are not an image the pipeline can decode; the message says why."""


def decoded_size(data: bytes, max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) of `data` decoded exactly as `modules.transform` decodes it.

    With `max_pixels`, the size in the header is checked first, so a small file that would
    expand to gigabytes is refused without being decoded.
    """
    if not data:
        raise UndecodableImage("empty file (0 bytes)")
    if max_pixels is not None:
        _check_header_size(data, max_pixels)
    try:
        decoded = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        raise UndecodableImage(f"cannot be decoded: {_op_message(error.message)}") from None
    height, width = int(decoded.shape[0]), int(decoded.shape[1])
    if height == 0 or width == 0:
        raise UndecodableImage("decodes to an empty image")
    return height, width


def _check_header_size(data: bytes, max_pixels: int) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        width = height = max_pixels  # Pillow's own, larger limit was already exceeded
    except (OSError, ValueError, SyntaxError):
        return  # Pillow cannot read the header; the TensorFlow decoder has the final word
    if width * height > max_pixels:
        raise UndecodableImage(
            f"{width}x{height} pixels exceed the limit of {max_pixels:,}; send a smaller image"
        )


def _op_message(message: str) -> str:
    """The decoder's own words, without TensorFlow's op and device decoration."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message or "")
    return re.sub(r"\s*\[Op:\w+\]$", "", message.strip()) or "unknown decoder error"

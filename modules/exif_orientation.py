"""Decodes an image upright: a JPEG's EXIF orientation (tag 0x0112) is applied in the graph.

Phones store photos as the sensor saw them and say in EXIF how to turn them; every viewer,
and Pillow's `ImageOps.exif_transpose`, turns them. Doing it with TensorFlow ops keeps it
inside the Transform graph, so training, the model server, TF Serving and BulkInferrer all
see the same upright picture. Only JPEG's APP1 segment is read (where cameras write EXIF);
PNG and WebP `eXIf` chunks are not.

The parser never fails: a missing, damaged or hostile EXIF block reads as orientation 1.
"""

from __future__ import annotations

import tensorflow as tf

# EXIF lives in APP1, written right after SOI (and APP0) by cameras; a segment is at most
# 64 KiB, so the orientation sits within the first 128 KiB even behind an ICC profile.
_HEAD_BYTES = 1 << 17
_MAX_SEGMENTS = 16  # markers walked before giving up on finding APP1
_MAX_ENTRIES = 256  # IFD0 entries read; real files hold a few dozen
_ORIENTATION_TAG = 0x0112
_EXIF = b"Exif\0\0"  # APP1's signature


def decode_upright(encoded: tf.Tensor) -> tf.Tensor:
    """One encoded image to uint8 [height, width, 3], turned as its EXIF orientation says."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    upright = apply_orientation(image, jpeg_orientation(encoded))
    upright.set_shape([None, None, 3])  # the computed transpose hides the channels
    return upright


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """`image` turned as EXIF `orientation` 1-8 says, as `PIL.ImageOps.exif_transpose` does.

    Each orientation is a transpose (5-8) followed by flips, so one transpose and one reverse
    with computed arguments do all eight, without branches (TFT cannot save a `Case` op).
    """
    transpose = orientation >= 5
    image = tf.transpose(image, tf.where(transpose, [1, 0, 2], [0, 1, 2]))
    flip_rows = tf.reduce_any(tf.equal(orientation, [3, 4, 7, 8]))
    flip_columns = tf.reduce_any(tf.equal(orientation, [2, 3, 6, 7]))
    return tf.reverse(image, tf.boolean_mask([0, 1], [flip_rows, flip_columns]))


def may_hold_orientation(encoded: bytes) -> bool:
    """False when `jpeg_orientation` would surely answer 1: not a JPEG, or no EXIF block.
    Lets a caller with the bytes in hand skip the parser's graph call (0.5 ms)."""
    return encoded[:2] == b"\xff\xd8" and _EXIF in encoded[:_HEAD_BYTES]


# A graph even when called eagerly (the server checks each image eagerly): its loops would
# otherwise run op by op, 40 ms an image instead of 1.
@tf.function(input_signature=[tf.TensorSpec([], tf.string)])
def jpeg_orientation(encoded: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation (int32, 1-8) of an encoded image; 1 where there is none."""
    head = tf.strings.substr(encoded, 0, _HEAD_BYTES)
    is_jpeg = tf.equal(tf.strings.substr(head, 0, 2), b"\xff\xd8")
    # Most images carry no EXIF: a search for its signature skips the walk for them.
    has_exif = tf.size(tf.strings.split(head, sep=_EXIF)) > 1
    orientation = tf.cond(
        tf.logical_and(is_jpeg, has_exif), lambda: _orientation_in(head), lambda: tf.constant(1)
    )
    valid = tf.logical_and(orientation >= 1, orientation <= 8)
    return tf.where(valid, orientation, 1)


def _orientation_in(head: tf.Tensor) -> tf.Tensor:
    raw = tf.io.decode_raw(head, tf.uint8)
    # Zero padding past the end makes every read in bounds; zeros end each walk below.
    data = tf.cast(tf.pad(raw, [[0, _HEAD_BYTES + 16 - tf.size(raw)]]), tf.int32)
    tiff = _exif_start(data)
    return tf.cond(tiff > 0, lambda: _ifd0_orientation(data, tiff), lambda: tf.constant(1))


def _read(
    data: tf.Tensor, at: tf.Tensor, width: int, little: tf.Tensor | bool = False
) -> tf.Tensor:
    """The unsigned `width`-byte number at `at` (big-endian unless `little`), clipped into
    the padded buffer so that no offset, however hostile, reads outside it."""
    at = tf.clip_by_value(at, 0, tf.size(data) - 16)
    raw = data[at : at + width]
    ordered = tf.where(little, tf.reverse(raw, [0]), raw)
    value = tf.constant(0)
    for index in range(width):
        value = value * 256 + ordered[index]
    return value


def _exif_start(data: tf.Tensor) -> tf.Tensor:
    """Offset of the TIFF header inside the APP1 "Exif" segment, or 0."""
    limit = tf.size(data) - 16

    def body(at: tf.Tensor, found: tf.Tensor, step: tf.Tensor) -> tuple:
        marker = data[at + 1]
        is_exif = tf.logical_and(
            tf.equal(marker, 0xE1),
            tf.reduce_all(tf.equal(data[at + 4 : at + 10], [0x45, 0x78, 0x69, 0x66, 0, 0])),
        )
        found = tf.where(is_exif, at + 10, found)
        return tf.minimum(at + 2 + _read(data, at + 2, 2), limit), found, step + 1

    def more(at: tf.Tensor, found: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        # A segment starts with 0xFF; the image data (SOS, 0xDA) ends the headers.
        return tf.reduce_all(
            [
                tf.equal(found, 0),
                step < _MAX_SEGMENTS,
                at < limit,
                tf.equal(data[at], 0xFF),
                tf.not_equal(data[at + 1], 0xDA),
            ]
        )

    _, found, _ = tf.while_loop(more, body, [tf.constant(2), tf.constant(0), tf.constant(0)])
    return found


def _ifd0_orientation(data: tf.Tensor, tiff: tf.Tensor) -> tf.Tensor:
    limit = tf.size(data) - 16
    little = tf.logical_and(tf.equal(data[tiff], 0x49), tf.equal(data[tiff + 1], 0x49))

    def read(at: tf.Tensor, width: int) -> tf.Tensor:
        return _read(data, at, width, little)

    # Offsets are from the TIFF header; a negative int32 (offset >= 2**31) is out of range too.
    ifd = tiff + tf.clip_by_value(read(tiff + 4, 4), 0, limit)
    entries = tf.minimum(read(ifd, 2), _MAX_ENTRIES)

    def body(index: tf.Tensor, orientation: tf.Tensor) -> tuple:
        entry = ifd + 2 + 12 * index
        is_orientation = tf.equal(read(entry, 2), _ORIENTATION_TAG)
        return index + 1, tf.where(is_orientation, read(entry + 8, 2), orientation)

    def more(index: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
        return tf.logical_and(index < entries, tf.equal(orientation, 0))

    _, orientation = tf.while_loop(more, body, [tf.constant(0), tf.constant(0)])
    return orientation

"""TFX Transform: decode, resize and normalize images with full-pass statistics.

Orientation: a JPEG's EXIF orientation is applied (modules/exif_orientation.py).

Resize policy (identical in training, evaluation and serving, because all three run this
graph): centre-crop the largest square, then resize it to image_size x image_size with
bilinear, antialiased interpolation. Cropping first keeps the aspect ratio, like AlexNet's
"rescale the shorter side, take the central patch".

Normalization: per-channel mean and standard deviation over every pixel of the training
split, computed by TFT analyzers in one full pass (Transform analyzes `train` only).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft

from contract.data import IMAGE_KEY, LABEL_KEY
from modules.exif_orientation import decode_upright


@dataclasses.dataclass(frozen=True)
class TransformSettings:
    """What preprocessing_fn needs, passed whole in the Transform's custom_config."""

    image_feature: str  # raw feature holding the encoded image
    label_feature: str  # raw feature holding the int64 class index
    image_size: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def decode_and_resize(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """One encoded image (contract/images.py's formats) to float32 [size, size, 3], 0-255,
    upright as its EXIF orientation says."""
    image = decode_upright(encoded)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)
    image = tf.image.crop_to_bounding_box(
        image, (height - side) // 2, (width - side) // 2, side, side
    )
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.ensure_shape(image, [size, size, 3])


def decode_batch(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """A batch of encoded images ([batch] or [batch, 1]) to float32 [batch, size, size, 3]."""
    encoded = tf.reshape(encoded, [-1])
    return tf.map_fn(
        lambda one: decode_and_resize(one, size),
        encoded,
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
    )


def preprocessing_fn(inputs: dict[str, tf.Tensor], custom_config: dict[str, Any]) -> dict:
    """Raw examples to {image: normalized float32 [S, S, 3], label: int64}."""
    settings = TransformSettings(**custom_config)
    size = settings.image_size
    images = decode_batch(inputs[settings.image_feature], size)
    # Every image has size*size pixels after resizing, so the mean of per-image channel
    # means is the mean over all pixels; likewise for the mean of squares.
    channel_mean = tft.mean(tf.reduce_mean(images, axis=[1, 2]), reduce_instance_dims=False)
    channel_square_mean = tft.mean(
        tf.reduce_mean(tf.square(images), axis=[1, 2]), reduce_instance_dims=False
    )
    channel_std = tf.sqrt(tf.maximum(channel_square_mean - tf.square(channel_mean), 1e-6))
    labels = tf.reshape(inputs[settings.label_feature], [-1])
    return {
        IMAGE_KEY: (images - channel_mean) / channel_std,
        LABEL_KEY: tf.cast(labels, tf.int64),
    }

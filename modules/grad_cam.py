"""Grad-CAM (Selvaraju et al., 2017): where the exported network looked, on conv5, the last
convolution, computed with its own layers on images as the transform graph prepares them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from contract.data import IMAGE_KEY

SALIENCY_LAYER = "conv5"


def grad_cam(
    model_dir: str, transform_dir: str, image_feature: str, images: list[bytes], size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For encoded images: heat maps in [0, 1] at `size` x `size`, the predicted class ids
    and their probabilities."""
    model = keras.models.load_model(model_dir, compile=False)
    raw = {image_feature: tf.constant([[image] for image in images])}
    inputs = tft.TFTransformOutput(transform_dir).transform_raw_features(
        raw, drop_unused_features=True
    )[IMAGE_KEY]
    probe = keras.Model(model.inputs, [model.get_layer(SALIENCY_LAYER).output, model.output])
    with tf.GradientTape() as tape:
        activations, probabilities = probe(inputs, training=False)
        predicted = tf.argmax(probabilities, axis=1)
        scores = tf.gather(probabilities, predicted, batch_dims=1)
    gradients = tape.gradient(scores, activations)
    # Each channel weighs by how much the predicted score grows with it, averaged over space.
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1, keepdims=True))
    maps = maps / (tf.reduce_max(maps, axis=(1, 2, 3), keepdims=True) + 1e-9)
    maps = tf.image.resize(maps, [size, size], method="bilinear").numpy()[..., 0]
    return maps, predicted.numpy(), scores.numpy()

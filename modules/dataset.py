"""The Trainer's and the Tuner's input pipeline: raw examples -> TFT layer -> batches."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from contract.data import IMAGE_KEY, LABEL_KEY
from modules.hyperparameters import Hyperparameters

CROP_FRACTION = 0.875  # AlexNet's 224 of 256
SHUFFLE_BUFFER = 1024


def augment(image: tf.Tensor, label: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Training only: a random crop scaled back to full size, and a horizontal flip."""
    crop = max(1, round(size * CROP_FRACTION))
    image = tf.image.random_crop(image, [crop, crop, 3])
    image = tf.image.resize(image, [size, size], method="bilinear")
    return tf.image.random_flip_left_right(image), label


def make_dataset(
    files: list[str],
    data_accessor: tfx.components.DataAccessor,
    transform_output: tft.TFTransformOutput,
    hyperparameters: Hyperparameters,
    num_classes: int,
    training: bool,
    cache: bool,
) -> tf.data.Dataset:
    """Raw examples -> TFT layer (parallel, per batch) -> cache -> augment -> batches."""
    hp = hyperparameters
    metadata = (
        transform_output.transformed_metadata if hp.materialize else transform_output.raw_metadata
    )
    dataset = data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=hp.batch_size, num_epochs=1, shuffle=False),
        metadata.schema,
    )
    if not hp.materialize:
        layer = transform_output.transform_features_layer()
        dataset = dataset.map(layer, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(
        lambda features: (
            tf.reshape(features[IMAGE_KEY], [-1, hp.image_size, hp.image_size, 3]),
            tf.one_hot(tf.reshape(features[LABEL_KEY], [-1]), num_classes),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).unbatch()
    if cache:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(SHUFFLE_BUFFER).repeat()
        dataset = dataset.map(
            lambda image, label: augment(image, label, hp.image_size),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.repeat()
    return dataset.batch(hp.batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def train_and_eval_datasets(
    fn_args: tfx.components.FnArgs,
    transform_output: tft.TFTransformOutput,
    hyperparameters: Hyperparameters,
    num_classes: int,
    cache: bool,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The train split (shuffled, augmented, endless) and the eval split (endless)."""
    train, evaluation = (
        make_dataset(
            files,
            fn_args.data_accessor,
            transform_output,
            hyperparameters,
            num_classes,
            training=training,
            cache=cache,
        )
        for files, training in ((fn_args.train_files, True), (fn_args.eval_files, False))
    )
    return train, evaluation

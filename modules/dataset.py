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
# Enough for a class mean and a covariance's top directions; the pass costs a forward step
# per image, so a large split is sampled.
REFERENCE_IMAGES = 4096
_HOLD_OUT_BUCKETS = 10_000


def augment(image: tf.Tensor, label: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Training only: a random crop scaled back to full size, and a horizontal flip."""
    crop = max(1, round(size * CROP_FRACTION))
    image = tf.image.random_crop(image, [crop, crop, 3])
    image = tf.image.resize(image, [size, size], method="bilinear")
    return tf.image.random_flip_left_right(image), label


def _labelled_images(
    files: list[str],
    data_accessor: tfx.components.DataAccessor,
    transform_output: tft.TFTransformOutput,
    hp: Hyperparameters,
    num_classes: int,
) -> tf.data.Dataset:
    """Raw examples -> TFT layer (parallel, per batch) -> one (image, one-hot label) at a time."""
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
    return dataset.map(
        lambda features: (
            tf.reshape(features[IMAGE_KEY], [-1, hp.image_size, hp.image_size, 3]),
            tf.one_hot(tf.reshape(features[LABEL_KEY], [-1]), num_classes),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).unbatch()


def is_held_out(image: tf.Tensor, fraction: float) -> tf.Tensor:
    """Whether a train image is in the held-out slice (never trained on; calibration and the
    unknown-image threshold are fitted on it): by a hash of its pixels, so the same images
    whatever order they are read in, and byte-identical copies on one side."""
    bucket = tf.strings.to_hash_bucket_fast(tf.io.serialize_tensor(image), _HOLD_OUT_BUCKETS)
    return bucket < round(fraction * _HOLD_OUT_BUCKETS)


def make_dataset(
    files: list[str],
    data_accessor: tfx.components.DataAccessor,
    transform_output: tft.TFTransformOutput,
    hyperparameters: Hyperparameters,
    num_classes: int,
    training: bool,
    cache: bool,
) -> tf.data.Dataset:
    """Training: the split less its held-out slice, cached, shuffled, augmented, endless.
    Otherwise the whole split, endless."""
    hp = hyperparameters
    dataset = _labelled_images(files, data_accessor, transform_output, hp, num_classes)
    if training:
        dataset = dataset.filter(
            lambda image, label: tf.logical_not(is_held_out(image, hp.calibration_fraction))
        )
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
    dataset = dataset.batch(hp.batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
    # A multi-worker training splits each global batch among the replicas; the examples are
    # in few files, too few to give each replica files of its own.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def held_out_and_reference(
    fn_args: tfx.components.FnArgs,
    transform_output: tft.TFTransformOutput,
    hyperparameters: Hyperparameters,
    num_classes: int,
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """One pass each, unaugmented: the train split's held-out slice, and up to
    REFERENCE_IMAGES of the images trained on (the unknown-image detector's statistics)."""
    hp = hyperparameters
    images = _labelled_images(
        fn_args.train_files, fn_args.data_accessor, transform_output, hp, num_classes
    )
    held_out = images.filter(lambda image, label: is_held_out(image, hp.calibration_fraction))
    trained_on = images.filter(
        lambda image, label: tf.logical_not(is_held_out(image, hp.calibration_fraction))
    ).take(REFERENCE_IMAGES)
    return tuple(
        part.batch(hp.batch_size).prefetch(tf.data.AUTOTUNE) for part in (held_out, trained_on)
    )


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

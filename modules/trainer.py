"""TFX Trainer: trains AlexNet on the Transform graph's output and exports two signatures.

Both signatures embed the same TFT layer as training, so no preprocessing is written twice:
  serving_default(images: tf.string [None])   raw encoded images (TF Serving / KServe V1)
  serving_examples(examples: tf.string [None]) serialized tf.Examples (TFMA, batch jobs)
Each returns probabilities [None, C], class_ids [None], class_names [None], scores [None].
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from components import serving_layout
from modules.model import build_alexnet, compile_alexnet
from modules.transform import IMAGE_KEY, LABEL_KEY

HISTORY_FILE = "training_history.json"
EPOCH_LOG = "epochs.jsonl"
LABELS_FILE = "labels.txt"
CROP_FRACTION = 0.875  # AlexNet's 224 of 256
SHUFFLE_BUFFER = 1024


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    """Hyperparameters and data facts the pipeline passes in `custom_config`."""

    image_feature: str
    image_size: int
    width_multiplier: float
    dropout: float
    batch_size: int
    epochs: int
    learning_rate: float
    seed: int
    cache_decoded: bool
    materialized: bool
    class_names: list[str] | None = None
    num_classes: int | None = None

    @classmethod
    def from_custom_config(cls, config: dict[str, Any]) -> TrainerSettings:
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in config.items() if key in fields})


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    strategy: str  # "mirrored" or "default"
    policy: str  # "mixed_float16" or "float32"
    devices: list[str]


def plan_devices(gpus: list[str]) -> DevicePlan:
    """All visible GPUs: mirrored for 2+, default strategy for 0 or 1; fp16 only on GPU."""
    return DevicePlan(
        strategy="mirrored" if len(gpus) > 1 else "default",
        policy="mixed_float16" if gpus else "float32",
        devices=gpus or ["CPU"],
    )


def make_strategy(plan: DevicePlan) -> tf.distribute.Strategy:
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def resolve_class_names(train_files: list[str], settings: TrainerSettings) -> list[str]:
    """Names from the config, else ImageFolderExampleGen's labels.txt, else label indices."""
    if settings.class_names:
        return list(settings.class_names)
    # train_files look like <examples uri>/Split-train/*
    labels = os.path.join(os.path.dirname(os.path.dirname(train_files[0])), LABELS_FILE)
    if tf.io.gfile.exists(labels):
        with tf.io.gfile.GFile(labels) as handle:
            return [line.strip() for line in handle if line.strip()]
    if settings.num_classes:
        return [str(index) for index in range(settings.num_classes)]
    raise ValueError(
        "The number of classes is unknown: the examples carry no labels.txt. Set class_names "
        "or num_classes in the pipeline config."
    )


def _augment(image: tf.Tensor, label: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Training only: a random crop scaled back to full size, and a horizontal flip."""
    crop = max(1, round(size * CROP_FRACTION))
    image = tf.image.random_crop(image, [crop, crop, 3])
    image = tf.image.resize(image, [size, size], method="bilinear")
    return tf.image.random_flip_left_right(image), label


def make_dataset(
    files: list[str],
    data_accessor: tfx.components.DataAccessor,
    transform_output: tft.TFTransformOutput,
    settings: TrainerSettings,
    num_classes: int,
    training: bool,
) -> tf.data.Dataset:
    """Raw examples -> TFT layer (parallel, per batch) -> cache -> augment -> batches."""
    metadata = (
        transform_output.transformed_metadata
        if settings.materialized
        else transform_output.raw_metadata
    )
    dataset = data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=settings.batch_size, num_epochs=1, shuffle=False),
        metadata.schema,
    )
    if not settings.materialized:
        layer = transform_output.transform_features_layer()
        dataset = dataset.map(layer, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(
        lambda features: (
            tf.reshape(features[IMAGE_KEY], [-1, settings.image_size, settings.image_size, 3]),
            tf.one_hot(tf.reshape(features[LABEL_KEY], [-1]), num_classes),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).unbatch()
    if settings.cache_decoded:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(SHUFFLE_BUFFER).repeat()
        dataset = dataset.map(
            lambda image, label: _augment(image, label, settings.image_size),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.repeat()
    return dataset.batch(settings.batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


class EpochLog(keras.callbacks.Callback):
    """Appends each finished epoch to a JSON-lines file, which survives restarts."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._started = 0.0
        self._train_seconds: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()
        self._train_seconds = None
        logging.info("Trainer: epoch %d starting", epoch)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._train_seconds = time.perf_counter() - self._started

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._started
        record = {
            "epoch": epoch,
            "seconds": seconds,
            "train_seconds": self._train_seconds or seconds,
            **{key: float(value) for key, value in (logs or {}).items()},
        }
        with tf.io.gfile.GFile(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def read_epoch_log(path: str) -> list[dict[str, Any]]:
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    # A restart re-runs an interrupted epoch: keep the last record of each epoch.
    return sorted(
        {record["epoch"]: record for record in records}.values(), key=lambda record: record["epoch"]
    )


def _predictions(model: keras.Model, images: tf.Tensor, names: tf.Tensor) -> dict:
    probabilities = tf.cast(model(images, training=False), tf.float32)
    class_ids = tf.argmax(probabilities, axis=1)
    return {
        "probabilities": probabilities,
        "class_ids": class_ids,
        "class_names": tf.gather(names, class_ids),
        "scores": tf.reduce_max(probabilities, axis=1),
    }


def export_model(
    model: keras.Model,
    transform_output: tft.TFTransformOutput,
    settings: TrainerSettings,
    class_names: list[str],
    path: str,
) -> None:
    """Saves a SavedModel whose two signatures run the TFT layer, then the network."""
    model.tft_layer = transform_output.transform_features_layer()
    names = tf.constant(class_names)
    image_spec = {
        settings.image_feature: transform_output.raw_feature_spec()[settings.image_feature]
    }

    def transformed_images(raw: dict[str, tf.Tensor]) -> tf.Tensor:
        return model.tft_layer(raw)[IMAGE_KEY]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")], autograph=False)
    def serve_images(images: tf.Tensor) -> dict:
        raw = {settings.image_feature: tf.reshape(images, [-1, 1])}
        return _predictions(model, transformed_images(raw), names)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name="examples")], autograph=False
    )
    def serve_examples(examples: tf.Tensor) -> dict:
        raw = tf.io.parse_example(examples, image_spec)
        return _predictions(model, transformed_images(raw), names)

    model.save(
        path,
        save_format="tf",
        signatures={
            "serving_default": serve_images.get_concrete_function(),
            "serving_examples": serve_examples.get_concrete_function(),
        },
    )
    serving_layout.write_class_names(path, class_names)


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """The TFX Trainer entry point."""
    settings = TrainerSettings.from_custom_config(fn_args.custom_config or {})
    class_names = resolve_class_names(fn_args.train_files, settings)
    plan = plan_devices([device.name for device in tf.config.list_physical_devices("GPU")])
    logging.info(
        "Trainer: devices %s, strategy %s, precision policy %s",
        plan.devices,
        plan.strategy,
        plan.policy,
    )
    keras.mixed_precision.set_global_policy(plan.policy)
    strategy = make_strategy(plan)
    keras.utils.set_random_seed(settings.seed)

    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = make_dataset(
        fn_args.train_files,
        fn_args.data_accessor,
        transform_output,
        settings,
        len(class_names),
        training=True,
    )
    evaluation = make_dataset(
        fn_args.eval_files,
        fn_args.data_accessor,
        transform_output,
        settings,
        len(class_names),
        training=False,
    )
    with strategy.scope():
        model = compile_alexnet(
            build_alexnet(
                len(class_names), settings.image_size, settings.width_multiplier, settings.dropout
            ),
            settings.learning_rate,
        )
    steps_per_epoch = max(1, fn_args.train_steps // max(1, settings.epochs))
    epoch_log = os.path.join(fn_args.model_run_dir, EPOCH_LOG)
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(fn_args.model_run_dir, "backup")),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        EpochLog(epoch_log),
    ]
    model.fit(
        train,
        epochs=settings.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=evaluation,
        validation_steps=max(1, fn_args.eval_steps),
        callbacks=callbacks,
        verbose=2,
    )

    keras.mixed_precision.set_global_policy("float32")
    export_model(model, transform_output, settings, class_names, fn_args.serving_model_dir)
    epochs = read_epoch_log(epoch_log)
    timed = epochs[1:] or epochs  # the first epoch includes tracing and cache filling
    images = steps_per_epoch * settings.batch_size * len(timed)
    history = {
        "epochs": len(epochs),
        "loss": [record.get("loss") for record in epochs],
        "accuracy": [record.get("accuracy") for record in epochs],
        "val_loss": [record.get("val_loss") for record in epochs],
        "val_accuracy": [record.get("val_accuracy") for record in epochs],
        "epoch_seconds": [record["seconds"] for record in epochs],
        "images_per_second": images / max(1e-9, sum(r["train_seconds"] for r in timed)),
        "device": ", ".join(plan.devices),
        "strategy": plan.strategy,
        "precision_policy": plan.policy,
        "class_names": class_names,
    }
    history_path = os.path.join(os.path.dirname(fn_args.serving_model_dir), HISTORY_FILE)
    with tf.io.gfile.GFile(history_path, "w") as handle:
        json.dump(history, handle, indent=2)

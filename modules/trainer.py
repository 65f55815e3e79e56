"""TFX Trainer: trains AlexNet on the Transform graph's output and exports two signatures.

Both signatures embed the same TFT layer as training, so no preprocessing is written twice:
  serving_default(images: tf.string [None])   raw encoded images (TF Serving / KServe V1)
  serving_examples(examples: tf.string [None]) serialized tf.Examples (TFMA, batch jobs)
Each returns the fields of `contract.prediction.OUTPUTS`.
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

from contract import prediction
from contract.data import IMAGE_KEY, LABEL_KEY, LABELS_FILE
from modules.hyperparameters import Hyperparameters, check_known_keys
from modules.model import build_alexnet, compile_alexnet

HISTORY_FILE = "training_history.json"
EPOCH_LOG = "epochs.jsonl"
CROP_FRACTION = 0.875  # AlexNet's 224 of 256
SHUFFLE_BUFFER = 1024


@dataclasses.dataclass(frozen=True)
class TrainerInputs:
    """What run_fn needs beyond TFX's own arguments, passed whole in `custom_config`."""

    hyperparameters: Hyperparameters
    image_feature: str  # raw feature holding the encoded image
    class_names: list[str] | None = None  # None: ExampleGen's labels.txt
    num_classes: int | None = None

    def to_custom_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(cls, values: dict[str, Any]) -> TrainerInputs:
        """Fails on a key it does not know, rather than dropping it."""
        check_known_keys(cls, values, "Trainer custom_config key")
        hyperparameters = Hyperparameters.from_dict(values["hyperparameters"])
        return cls(**{**values, "hyperparameters": hyperparameters})


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


def resolve_class_names(train_files: list[str], inputs: TrainerInputs) -> list[str]:
    """Names from the config, else ImageFolderExampleGen's labels.txt, else label indices."""
    if inputs.class_names:
        return list(inputs.class_names)
    # train_files look like <examples uri>/Split-train/*
    labels = os.path.join(os.path.dirname(os.path.dirname(train_files[0])), LABELS_FILE)
    if tf.io.gfile.exists(labels):
        with tf.io.gfile.GFile(labels) as handle:
            return [line.strip() for line in handle if line.strip()]
    if inputs.num_classes:
        return [str(index) for index in range(inputs.num_classes)]
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
    hyperparameters: Hyperparameters,
    num_classes: int,
    training: bool,
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
    if hp.cache_decoded:
        dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(SHUFFLE_BUFFER).repeat()
        dataset = dataset.map(
            lambda image, label: _augment(image, label, hp.image_size),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.repeat()
    return dataset.batch(hp.batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


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
        prediction.PROBABILITIES.name: probabilities,
        prediction.CLASS_ID.name: class_ids,
        prediction.CLASS_NAME.name: tf.gather(names, class_ids),
        prediction.SCORE.name: tf.reduce_max(probabilities, axis=1),
    }


def export_model(
    model: keras.Model,
    transform_output: tft.TFTransformOutput,
    image_feature: str,
    class_names: list[str],
    path: str,
) -> None:
    """Saves a SavedModel whose two signatures run the TFT layer, then the network."""
    model.tft_layer = transform_output.transform_features_layer()
    names = tf.constant(class_names)
    image_spec = {image_feature: transform_output.raw_feature_spec()[image_feature]}

    def transformed_images(raw: dict[str, tf.Tensor]) -> tf.Tensor:
        return model.tft_layer(raw)[IMAGE_KEY]

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name=prediction.IMAGES_INPUT)],
        autograph=False,
    )
    def serve_images(images: tf.Tensor) -> dict:
        raw = {image_feature: tf.reshape(images, [-1, 1])}
        return _predictions(model, transformed_images(raw), names)

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.string, name=prediction.EXAMPLES_INPUT)],
        autograph=False,
    )
    def serve_examples(examples: tf.Tensor) -> dict:
        raw = tf.io.parse_example(examples, image_spec)
        return _predictions(model, transformed_images(raw), names)

    model.save(
        path,
        save_format="tf",
        signatures={
            prediction.IMAGES_SIGNATURE: serve_images.get_concrete_function(),
            prediction.EXAMPLES_SIGNATURE: serve_examples.get_concrete_function(),
        },
    )
    labels = os.path.join(path, prediction.CLASS_NAMES_FILE)
    tf.io.gfile.makedirs(os.path.dirname(labels))
    with tf.io.gfile.GFile(labels, "w") as handle:
        handle.write("".join(f"{name}\n" for name in class_names))


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """The TFX Trainer entry point."""
    inputs = TrainerInputs.from_custom_config(fn_args.custom_config or {})
    hp = inputs.hyperparameters
    class_names = resolve_class_names(fn_args.train_files, inputs)
    plan = plan_devices([device.name for device in tf.config.list_physical_devices("GPU")])
    logging.info(
        "Trainer: devices %s, strategy %s, precision policy %s",
        plan.devices,
        plan.strategy,
        plan.policy,
    )
    keras.mixed_precision.set_global_policy(plan.policy)
    strategy = make_strategy(plan)
    keras.utils.set_random_seed(hp.seed)

    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train = make_dataset(
        fn_args.train_files,
        fn_args.data_accessor,
        transform_output,
        hp,
        len(class_names),
        training=True,
    )
    evaluation = make_dataset(
        fn_args.eval_files,
        fn_args.data_accessor,
        transform_output,
        hp,
        len(class_names),
        training=False,
    )
    with strategy.scope():
        model = compile_alexnet(
            build_alexnet(len(class_names), hp.image_size, hp.width_multiplier, hp.dropout),
            hp.learning_rate,
        )
    steps_per_epoch = max(1, fn_args.train_steps // max(1, hp.epochs))
    epoch_log = os.path.join(fn_args.model_run_dir, EPOCH_LOG)
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(fn_args.model_run_dir, "backup")),
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        EpochLog(epoch_log),
    ]
    model.fit(
        train,
        epochs=hp.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=evaluation,
        validation_steps=max(1, fn_args.eval_steps),
        callbacks=callbacks,
        verbose=2,
    )

    keras.mixed_precision.set_global_policy("float32")
    export_model(
        model, transform_output, inputs.image_feature, class_names, fn_args.serving_model_dir
    )
    epochs = read_epoch_log(epoch_log)
    timed = epochs[1:] or epochs  # the first epoch includes tracing and cache filling
    images = steps_per_epoch * hp.batch_size * len(timed)
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

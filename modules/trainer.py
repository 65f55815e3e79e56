"""TFX Trainer: trains AlexNet on the Transform graph's output, from the served model's
weights when they fit (modules/warm_start.py), and exports it (modules/export.py).

Training is resumable across executions. Its backup is keyed by a fingerprint of the
Trainer's inputs and settings, not by the execution's output URIs, which differ between a
killed local run and its re-run, and between attempts of a retried Kubeflow pod.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx.utils import io_utils
from tfx_bsl.public import tfxio

from contract.data import IMAGE_KEY, INPUT_FILE, LABEL_KEY, LABELS_FILE, SPANS_FILE, is_remote
from modules import backup_mirror
from modules.decoded_cache import plan_cache
from modules.export import export_model
from modules.hyperparameters import Hyperparameters, check_known_keys
from modules.model import build_alexnet, compile_alexnet
from modules.progress import ProgressReport
from modules.warm_start import WarmStart, load_served_weights, plan_warm_start

HISTORY_FILE = "training_history.json"
EPOCH_LOG = "epochs.jsonl"
# <Trainer's output folder>/backup/<fingerprint>/: Keras' checkpoint and the epoch log.
BACKUP_DIR = "backup"
CROP_FRACTION = 0.875  # AlexNet's 224 of 256
SHUFFLE_BUFFER = 1024


@dataclasses.dataclass(frozen=True)
class TrainerInputs:
    """What run_fn needs beyond TFX's own arguments, passed whole in `custom_config`."""

    hyperparameters: Hyperparameters
    image_feature: str  # raw feature holding the encoded image
    class_names: list[str] | None = None  # None: ExampleGen's labels.txt
    num_classes: int | None = None
    warm_start: bool = True  # from the served model (fn_args.base_model), when it fits
    memory_mb: int = 4096  # for the decoded-image cache (modules/decoded_cache.py)

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


# CPU features with bfloat16 arithmetic (AVX512_BF16, AMX): mixed_bfloat16 trains AlexNet
# about 1.5 times as fast there (BENCHMARKS.md); without them bfloat16 is emulated, slower.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


# oneDNN's ISA caps that keep bfloat16 instructions (AVX512_CORE_BF16, the AMX and AVX10 ones).
BF16_ONEDNN_ISAS = ("ALL", "BF16", "AMX", "AVX10")


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has bfloat16 arithmetic and oneDNN may use it (ONEDNN_MAX_CPU_ISA)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if not any(isa in cap for isa in BF16_ONEDNN_ISAS):
        return False
    try:
        with open(cpuinfo) as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def plan_devices(gpus: list[str], cpu_bfloat16: bool) -> DevicePlan:
    """All visible GPUs: mirrored for 2+, default strategy for 0 or 1. Mixed precision on
    GPUs (float16) and on CPUs with bfloat16 arithmetic; float32 otherwise."""
    if gpus:
        policy = "mixed_float16"
    else:
        policy = "mixed_bfloat16" if cpu_bfloat16 else "float32"
    return DevicePlan(
        strategy="mirrored" if len(gpus) > 1 else "default",
        policy=policy,
        devices=gpus or ["CPU"],
    )


def local_device_plan() -> DevicePlan:
    """The plan for this machine's GPUs and CPU."""
    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    return plan_devices(gpus, cpu_has_bfloat16())


def make_strategy(plan: DevicePlan) -> tf.distribute.Strategy:
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _examples_file(train_files: list[str], name: str) -> str:
    # train_files look like <examples uri>/Split-train/*
    return os.path.join(os.path.dirname(os.path.dirname(train_files[0])), name)


def resolve_class_names(train_files: list[str], inputs: TrainerInputs) -> list[str]:
    """Names from the config, else ImageFolderExampleGen's labels.txt, else label indices."""
    if inputs.class_names:
        return list(inputs.class_names)
    labels = _examples_file(train_files, LABELS_FILE)
    if tf.io.gfile.exists(labels):
        with tf.io.gfile.GFile(labels) as handle:
            return [line.strip() for line in handle if line.strip()]
    if inputs.num_classes:
        return [str(index) for index in range(inputs.num_classes)]
    raise ValueError(
        "The number of classes is unknown: the examples carry no labels.txt. Set class_names "
        "or num_classes in the pipeline config."
    )


def read_input_record(train_files: list[str]) -> dict[str, Any] | str:
    """What the examples were made from (our ExampleGens' INPUT_FILE); for others (TFX's
    ImportExampleGen, materialized examples), their URI."""
    path = _examples_file(train_files, INPUT_FILE)
    if not tf.io.gfile.exists(path):
        return _examples_file(train_files, "")
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def read_spans(train_files: list[str]) -> list[int] | None:
    """The spans the examples hold (ExampleGen's spans.json); None for data without spans."""
    path = _examples_file(train_files, SPANS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)["spans"]


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


def training_fingerprint(fn_args: tfx.components.FnArgs) -> str:
    """Identifies a training by its input artifacts and exec properties: a later execution
    with the same fingerprint may resume its backup; any change starts afresh."""
    identity = {
        "train_files": sorted(fn_args.train_files),
        "eval_files": sorted(fn_args.eval_files),
        "transform_graph": fn_args.transform_graph_path,
        "schema": fn_args.schema_path,
        "base_model": fn_args.base_model,
        "custom_config": fn_args.custom_config,
        "tuned": fn_args.hyperparameters,
        "train_steps": fn_args.train_steps,
        "eval_steps": fn_args.eval_steps,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def backup_dir(fn_args: tfx.components.FnArgs) -> str:
    """Beside the executions' output folders, so every execution of this Trainer finds it:
    locally <root>/Trainer/model_run/<execution> -> <root>/Trainer/backup/<fingerprint>; on
    Kubeflow .../<run>/Trainer/<attempt>/model_run -> .../<run>/Trainer/backup/<fingerprint>."""
    node_dir = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip("/")))
    return os.path.join(node_dir, BACKUP_DIR, training_fingerprint(fn_args))


@contextlib.contextmanager
def claim_backup(fn_args: tfx.components.FnArgs) -> Iterator[str]:
    """The training's backup folder, locked for this process. When another live process
    holds it (the same training in a concurrent run), this execution keeps a backup of its
    own in its model_run folder instead. The lock dies with its process, even on SIGKILL."""
    shared = backup_dir(fn_args)
    tf.io.gfile.makedirs(shared)
    if is_remote(shared):  # no file locks there; Kubeflow runs each have their own folder
        yield shared
        return
    with open(os.path.join(shared, "lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            private = os.path.join(fn_args.model_run_dir, BACKUP_DIR)
            logging.info(
                "Trainer: %s is in use by a concurrent run; backing up to %s", shared, private
            )
            tf.io.gfile.makedirs(private)
            yield private
            return
        yield shared


class EpochLog(keras.callbacks.Callback):
    """Appends each finished epoch to a JSON-lines file, which survives restarts, and notes
    the first epoch this execution trains (0 unless it resumed a backup)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.first_epoch: int | None = None
        self._started = 0.0
        self._train_seconds: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
            if epoch:
                logging.info("Trainer: resumed from its backup at epoch %d", epoch)
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
        logging.info("Trainer: epoch %d done: %s", epoch, json.dumps(record))


def read_epoch_log(path: str) -> list[dict[str, Any]]:
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    # A restart re-runs an interrupted epoch: keep the last record of each epoch.
    return sorted(
        {record["epoch"]: record for record in records}.values(), key=lambda record: record["epoch"]
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """The TFX Trainer entry point."""
    inputs = TrainerInputs.from_custom_config(fn_args.custom_config or {})
    if fn_args.hyperparameters:  # the Tuner's best trial: KerasTuner's HyperParameters config
        tuned = inputs.hyperparameters.with_values(fn_args.hyperparameters["values"])
        inputs = dataclasses.replace(inputs, hyperparameters=tuned)
    hp = inputs.hyperparameters
    class_names = resolve_class_names(fn_args.train_files, inputs)
    # What makes this training what it is; recorded with the model, to recognize a re-run,
    # on either runner: on Kubeflow every run's artifacts have new URIs.
    trained_on = {
        "examples": read_input_record(fn_args.train_files),
        "image_feature": inputs.image_feature,
        "hyperparameters": hp.to_dict(),
    }
    warm = plan_warm_start(fn_args.base_model, inputs.warm_start, class_names, hp, trained_on)
    logging.info("Trainer: %s", warm.note)
    spans = read_spans(fn_args.train_files)
    plan = local_device_plan()
    if warm.reuse:
        io_utils.copy_dir(fn_args.base_model, fn_args.serving_model_dir)
        outcome = TrainingOutcome(epochs=[], images_per_second=0.0, cache_note=None)
    else:
        training_record = {
            "hyperparameters": hp.to_dict(),
            "tuned": bool(fn_args.hyperparameters),
            "class_names": class_names,
            "spans": spans,
            "warm_started_from": warm.version,
            "trained_on": trained_on,
        }
        outcome = train_and_export(fn_args, inputs, class_names, plan, warm, training_record)
    epochs = outcome.epochs
    history = {
        "epochs": len(epochs),
        "loss": [record.get("loss") for record in epochs],
        "accuracy": [record.get("accuracy") for record in epochs],
        "val_loss": [record.get("val_loss") for record in epochs],
        "val_accuracy": [record.get("val_accuracy") for record in epochs],
        "epoch_seconds": [record["seconds"] for record in epochs],
        "images_per_second": outcome.images_per_second,
        "resumed_from_epoch": outcome.resumed_from_epoch,
        "hyperparameters": hp.to_dict(),
        "tuned": bool(fn_args.hyperparameters),
        "device": ", ".join(plan.devices),
        "strategy": plan.strategy,
        "precision_policy": plan.policy,
        "class_names": class_names,
        "spans": spans,
        "warm_started_from": warm.version,
        "warm_start_note": warm.note,
        "reused_version": warm.reused_version,
        "decoded_cache": outcome.cache_note,
    }
    history_path = os.path.join(os.path.dirname(fn_args.serving_model_dir), HISTORY_FILE)
    with tf.io.gfile.GFile(history_path, "w") as handle:
        json.dump(history, handle, indent=2)


def steps_per_epoch(fn_args: tfx.components.FnArgs, hp: Hyperparameters) -> int:
    return max(1, fn_args.train_steps // max(1, hp.epochs))


def fit_resumably(
    model: keras.Model,
    train: tf.data.Dataset,
    evaluation: tf.data.Dataset,
    hp: Hyperparameters,
    fn_args: tfx.components.FnArgs,
    backup: str,
) -> int:
    """model.fit with a checkpoint and an epoch log in `backup`, continuing after the last
    epoch they hold; returns the first epoch this call trained (hp.epochs: none left)."""
    checkpoint = os.path.join(backup, "checkpoint")
    epoch_log = os.path.join(backup, EPOCH_LOG)
    if not tf.io.gfile.exists(checkpoint):
        backup_mirror.restore(backup)  # a retried Kubeflow pod starts on an empty disk
    if not tf.io.gfile.exists(checkpoint) and tf.io.gfile.exists(epoch_log):
        tf.io.gfile.remove(epoch_log)  # records of epochs no checkpoint kept
    logging.info("Trainer: backup in %s", backup)
    epoch_logger = EpochLog(epoch_log)
    callbacks = [
        # Before the backup: a kill between the two retrains an epoch, never loses one.
        epoch_logger,
        # A backup of this training (a re-run, a retried pod) wins over the warm start.
        # Kept after fit(): a kill during the export then resumes at the export.
        keras.callbacks.BackupAndRestore(checkpoint, delete_checkpoint=False),
        backup_mirror.MirrorBackup(backup),  # after the save it copies
        keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch"),
        ProgressReport(hp.batch_size),
    ]
    model.fit(
        train,
        epochs=hp.epochs,
        steps_per_epoch=steps_per_epoch(fn_args, hp),
        validation_data=evaluation,
        validation_steps=max(1, fn_args.eval_steps),
        callbacks=callbacks,
        verbose=0,  # ProgressReport and EpochLog report instead
    )
    return hp.epochs if epoch_logger.first_epoch is None else epoch_logger.first_epoch


@dataclasses.dataclass(frozen=True)
class TrainingOutcome:
    epochs: list[dict[str, Any]]  # every epoch's record, those before a resume included
    images_per_second: float  # training, after this execution's first epoch
    cache_note: str | None  # the decoded-image cache's plan
    resumed_from_epoch: int = 0  # the first epoch this execution trained


def train_and_export(
    fn_args: tfx.components.FnArgs,
    inputs: TrainerInputs,
    class_names: list[str],
    plan: DevicePlan,
    warm: WarmStart,
    training_record: dict[str, Any],
) -> TrainingOutcome:
    """Trains (resuming from a backup, else from `warm`), exports the model and removes the
    backup."""
    hp = inputs.hyperparameters
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
    cache = plan_cache(
        fn_args.train_files + fn_args.eval_files, hp.image_size, hp.cache_decoded, inputs.memory_mb
    )
    logging.info("Trainer: decoded-image cache %s", cache.note)
    train, evaluation = (
        make_dataset(
            files,
            fn_args.data_accessor,
            transform_output,
            hp,
            len(class_names),
            training=training,
            cache=cache.in_memory,
        )
        for files, training in ((fn_args.train_files, True), (fn_args.eval_files, False))
    )
    with strategy.scope():
        model = compile_alexnet(
            build_alexnet(len(class_names), hp.image_size, hp.width_multiplier, hp.dropout),
            hp.learning_rate,
            hp.optimizer,
        )
        if warm.version is not None:
            load_served_weights(model, fn_args.base_model)
    with claim_backup(fn_args) as backup:
        first = fit_resumably(model, train, evaluation, hp, fn_args, backup)
        # Served in float32 whatever trained it: the serving CPU may lack bfloat16 or float16
        # arithmetic. Mixed precision keeps its weights in float32, so they copy over as they are.
        keras.mixed_precision.set_global_policy("float32")
        served = build_alexnet(len(class_names), hp.image_size, hp.width_multiplier, hp.dropout)
        served.set_weights(model.get_weights())
        export_model(
            served,
            tft.TFTransformOutput(fn_args.transform_output),  # its TFT layer made under float32
            inputs.image_feature,
            class_names,
            fn_args.serving_model_dir,
            training_record,
        )
        epoch_log = os.path.join(backup, EPOCH_LOG)
        epochs = read_epoch_log(epoch_log)
        io_utils.copy_file(
            epoch_log, os.path.join(fn_args.model_run_dir, EPOCH_LOG), overwrite=True
        )
        tf.io.gfile.rmtree(backup)  # its mirror on Kubeflow stays (backup_mirror.py)
        # This execution's epochs after its first, which includes tracing and cache filling.
        timed = [record for record in epochs if record["epoch"] > first] or epochs[first:]
        images = steps_per_epoch(fn_args, hp) * hp.batch_size * len(timed)
        seconds = sum(record["train_seconds"] for record in timed)
        return TrainingOutcome(epochs, images / max(1e-9, seconds), cache.note, first)

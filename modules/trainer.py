"""TFX Trainer: trains AlexNet on the Transform graph's output, from the served model's
weights when they fit (modules/warm_start.py), resumably (modules/resumable_fit.py), and
exports it (modules/export.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx.utils import io_utils

from contract.model_files import HISTORY_FILE, TRAINING_RECORD_FILE
from contract.progress import PROGRESS_LOGGER
from contract.training_job import PROGRESS_ENV
from modules.dataset import held_out_and_reference, train_and_eval_datasets
from modules.decoded_cache import plan_cache
from modules.device_plan import DevicePlan, local_device_plan, make_strategy
from modules.examples_files import read_input_record, read_spans, resolve_class_names
from modules.export import export_model
from modules.held_out_fit import fit_on_held_out
from modules.model import make_model
from modules.multi_worker import finish_together, per_replica_batch
from modules.progress import ProgressFile
from modules.resumable_fit import FitRecord, close_backup, fit_resumably
from modules.trainer_inputs import TrainerInputs
from modules.training_backup import claim_backup
from modules.warm_start import WarmStart, load_served_weights, plan_warm_start


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    """The TFX Trainer entry point; in a multi-worker training, each replica's."""
    plan = local_device_plan()
    strategy = make_strategy(plan)  # first: a multi-worker one must precede other TF work
    if plan.is_chief and os.environ.get(PROGRESS_ENV):
        logging.getLogger(PROGRESS_LOGGER).addHandler(ProgressFile(os.environ[PROGRESS_ENV]))
    inputs = TrainerInputs.from_custom_config(fn_args.custom_config or {})
    if fn_args.hyperparameters:  # the Tuner's best trial: KerasTuner's HyperParameters config
        tuned = inputs.hyperparameters.with_values(fn_args.hyperparameters["values"])
        inputs = dataclasses.replace(inputs, hyperparameters=tuned)
    hp = inputs.hyperparameters
    class_names = resolve_class_names(fn_args.train_files, inputs.class_names, inputs.num_classes)
    # What makes this training what it is; recorded with the model, to recognize a re-run,
    # on either runner: on Kubeflow every run's artifacts have new URIs.
    trained_on = {
        "examples": read_input_record(fn_args.train_files),
        "image_feature": inputs.image_feature,
        "hyperparameters": hp.to_dict(),
    }
    warm = plan_warm_start(fn_args.base_model, inputs.warm_start, class_names, hp, trained_on)
    logging.info("Trainer: %s", warm.note)
    training_record = {
        "hyperparameters": hp.to_dict(),
        "tuned": bool(fn_args.hyperparameters),
        "class_names": class_names,
        "spans": read_spans(fn_args.train_files),
        "warm_started_from": warm.version,
        "trained_on": trained_on,
    }
    if warm.reuse:
        if plan.is_chief:
            io_utils.copy_dir(fn_args.base_model, fn_args.serving_model_dir)
        fitted, cache_note = FitRecord(epochs=[], images_per_second=0.0), None
    else:
        fitted, cache_note = train_and_export(
            fn_args, inputs, class_names, plan, strategy, warm, training_record
        )
    if plan.is_chief:
        write_history(fn_args, training_record, fitted, plan, warm, cache_note)
    if plan.role is not None:
        finish_together(strategy)


def train_and_export(
    fn_args: tfx.components.FnArgs,
    inputs: TrainerInputs,
    class_names: list[str],
    plan: DevicePlan,
    strategy: tf.distribute.Strategy,
    warm: WarmStart,
    training_record: dict[str, Any],
) -> tuple[FitRecord, str]:
    """Trains (resuming from a backup, else from `warm`); then the chief calibrates it on the
    held-out slice, exports it and removes the backup. Returns the fit and the decoded-image
    cache's plan."""
    hp = inputs.hyperparameters
    logging.info(
        "Trainer: devices %s, strategy %s, precision policy %s",
        plan.devices,
        plan.strategy,
        plan.policy,
    )
    keras.mixed_precision.set_global_policy(plan.policy)
    keras.utils.set_random_seed(hp.seed)
    cache = plan_cache(
        fn_args.train_files + fn_args.eval_files, hp.image_size, hp.cache_decoded, inputs.memory_mb
    )
    logging.info("Trainer: decoded-image cache %s", cache.note)
    transform_output = tft.TFTransformOutput(fn_args.transform_output)
    train, evaluation = train_and_eval_datasets(
        fn_args, transform_output, hp, len(class_names), cache=cache.in_memory
    )
    replica_batch = per_replica_batch(strategy, train) if plan.role else None
    with strategy.scope():
        model = make_model(hp, len(class_names))
        if warm.version is not None:
            load_served_weights(model, fn_args.base_model)
    with claim_backup(fn_args) as backup:
        first_epoch = fit_resumably(
            model, train, evaluation, hp, fn_args, backup, chief=plan.is_chief
        )
        if not plan.is_chief:
            return FitRecord(epochs=[], images_per_second=0.0), cache.note
        # Served in float32 whatever trained it: the serving CPU may lack bfloat16 or float16
        # arithmetic. Mixed precision keeps its weights in float32, so they copy over as they are.
        keras.mixed_precision.set_global_policy("float32")
        served = make_model(hp, len(class_names), compiled=False)
        served.set_weights(model.get_weights())
        # Its TFT layer made under float32.
        transform_output = tft.TFTransformOutput(fn_args.transform_output)
        held_out = fit_on_held_out(
            served,
            *held_out_and_reference(fn_args, transform_output, hp, len(class_names)),
            len(class_names),
            hp.ood_keep,
        )
        logging.info(
            "Trainer: %s; unknown-image threshold %.3f %s",
            held_out.temperature.note,
            held_out.detector.threshold,
            held_out.detector.note,
        )
        export_model(
            served,
            transform_output,
            inputs.image_feature,
            class_names,
            fn_args.serving_model_dir,
            {**training_record, "calibration": held_out.record()},
            held_out,
        )
        fitted = close_backup(backup, first_epoch, fn_args, hp)
        return dataclasses.replace(fitted, replica_batch=replica_batch), cache.note


def write_history(
    fn_args: tfx.components.FnArgs,
    training_record: dict[str, Any],
    fitted: FitRecord,
    plan: DevicePlan,
    warm: WarmStart,
    cache_note: str | None,
) -> None:
    """The training record with how the training went, and the calibration the model carries
    (a reused served model: its own), beside the model (HISTORY_FILE)."""
    epochs = fitted.epochs
    record_path = os.path.join(fn_args.serving_model_dir, TRAINING_RECORD_FILE)
    calibration = None  # a reused model exported before calibration has none
    if tf.io.gfile.exists(record_path):
        with tf.io.gfile.GFile(record_path) as handle:
            calibration = json.load(handle).get("calibration")
    history = {
        **{key: value for key, value in training_record.items() if key != "trained_on"},
        "calibration": calibration,
        "epochs": len(epochs),
        "loss": [record.get("loss") for record in epochs],
        "accuracy": [record.get("accuracy") for record in epochs],
        "val_loss": [record.get("val_loss") for record in epochs],
        "val_accuracy": [record.get("val_accuracy") for record in epochs],
        "epoch_seconds": [record["seconds"] for record in epochs],
        "images_per_second": fitted.images_per_second,
        "resumed_from_epoch": fitted.resumed_from_epoch,
        "device": ", ".join(plan.devices),
        "strategy": plan.strategy,
        "replicas": plan.role.workers if plan.role else 1,
        "replica_batch": fitted.replica_batch,
        "precision_policy": plan.policy,
        "warm_start_note": warm.note,
        "reused_version": warm.reused_version,
        "decoded_cache": cache_note,
    }
    history_path = os.path.join(os.path.dirname(fn_args.serving_model_dir), HISTORY_FILE)
    with tf.io.gfile.GFile(history_path, "w") as handle:
        json.dump(history, handle, indent=2)

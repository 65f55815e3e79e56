"""Warm start: begin training from the served model's weights, when they fit this model.

The Trainer gets the served version through its `base_model` input (PushedModelResolver's
snapshot). Its weights are used only if it was trained on the same classes, in the same
order, with the same architecture (image size and width multiplier); otherwise training
starts from scratch, and the reason is recorded for the run summary.

If the served model was trained on exactly this run's inputs (the same input files made
into examples the same way, and the same hyperparameters), training again would only repeat
the run that made it, so it is reused as it is: a re-run with nothing new trains nothing,
and nothing downstream evaluates, checks or pushes it again. A change of code alone is not
seen, as TFX's cache does not see it either; pass --no-warm-start to train anyway.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import tensorflow as tf
import tf_keras as keras

from contract.model_files import CLASS_NAMES_FILE, SERVED_RECORD_FILE, TRAINING_RECORD_FILE
from modules.hyperparameters import Hyperparameters

ARCHITECTURE = ("image_size", "width_multiplier")


@dataclasses.dataclass(frozen=True)
class WarmStart:
    version: int | None  # the served version the weights come from; None: from scratch
    note: str  # what happens, and why
    reused_version: int | None = None  # the served version trained on these very inputs

    @property
    def reuse(self) -> bool:
        return self.reused_version is not None


def _read_json(path: str) -> dict | None:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def _mismatch(
    base_model: str, record: dict | None, class_names: list[str], hyperparameters: Hyperparameters
) -> str | None:
    """Why the served model's weights do not fit this model, or None if they do."""
    with tf.io.gfile.GFile(os.path.join(base_model, CLASS_NAMES_FILE)) as handle:
        served_classes = handle.read().splitlines()
    if served_classes != class_names:
        return f"its classes {served_classes} differ from the data's {class_names}"
    if record is None:
        return "it records no architecture (it was pushed before warm starts existed)"
    for name in ARCHITECTURE:
        served, ours = record["hyperparameters"][name], getattr(hyperparameters, name)
        if served != ours:
            return f"its {name} is {served}, this run's is {ours}"
    return None


def plan_warm_start(
    base_model: str | None,
    enabled: bool,
    class_names: list[str],
    hyperparameters: Hyperparameters,
    trained_on: dict[str, Any],
) -> WarmStart:
    """Where training starts: from the served weights, from scratch, or not at all (reuse).

    `trained_on` identifies this run's inputs; the Trainer records it with every model.
    """
    if not enabled:
        return WarmStart(None, "warm_start is off; trained from scratch")
    if not base_model or not tf.io.gfile.exists(os.path.join(base_model, "saved_model.pb")):
        return WarmStart(None, "no model is served; trained from scratch")
    version = (_read_json(os.path.join(os.path.dirname(base_model), SERVED_RECORD_FILE)) or {}).get(
        "version"
    )
    record = _read_json(os.path.join(base_model, TRAINING_RECORD_FILE))
    mismatch = _mismatch(base_model, record, class_names, hyperparameters)
    if mismatch:
        return WarmStart(None, f"served version {version} not used: {mismatch}")
    if record.get("trained_on") == trained_on:
        return WarmStart(
            None,
            f"served version {version} was trained on these examples with these "
            "hyperparameters; reused as it is, nothing trained",
            reused_version=version,
        )
    return WarmStart(version, f"started from the weights of served version {version}")


def load_served_weights(model: keras.Model, base_model: str) -> None:
    """Copies each layer's weights from the served SavedModel into `model`."""
    source = keras.models.load_model(base_model, compile=False)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())

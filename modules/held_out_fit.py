"""After training, on the train split's held-out slice (images neither trained on nor in the
reported metrics): the temperature that calibrates the probabilities, and the threshold of the
unknown-image detector, whose statistics come from images trained on."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from modules.calibration import Temperature, fit_temperature
from modules.model import features_and_logits
from modules.ood_detector import DIVERGED, OOD_METHOD, OodDetector, fit_detector, set_threshold


@dataclasses.dataclass(frozen=True)
class HeldOutFit:
    temperature: Temperature
    detector: OodDetector

    def record(self) -> dict[str, Any]:
        """What the training record keeps of it, beside the model."""
        return {
            "temperature": self.temperature.value,
            "held_out_images": self.temperature.images,
            "note": self.temperature.note,
            "ood_method": OOD_METHOD,
            "ood_threshold": self.detector.threshold,
            "ood_keep": self.detector.keep,
            "ood_note": self.detector.note,
        }


def _features_logits_labels(
    network: keras.Model, dataset: tf.data.Dataset
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features, logits, labels = [], [], []
    for images, one_hot in dataset:
        batch_features, batch_logits = network(images, training=False)
        features.append(batch_features.numpy())
        logits.append(batch_logits.numpy())
        labels.append(np.argmax(one_hot.numpy(), axis=1))
    if not labels:
        return np.zeros((0, network.outputs[0].shape[-1])), np.zeros((0, 0)), np.zeros(0, int)
    return np.concatenate(features), np.concatenate(logits), np.concatenate(labels)


def fit_on_held_out(
    model: keras.Model,
    held_out: tf.data.Dataset,
    trained_on: tf.data.Dataset,
    num_classes: int,
    keep: float,
) -> HeldOutFit:
    """The temperature and the detector for `model` (float32, trained)."""
    network = features_and_logits(model)
    held_features, held_logits, held_labels = _features_logits_labels(network, held_out)
    train_features, _, train_labels = _features_logits_labels(network, trained_on)
    # A diverged training answers NaN: nothing to fit on. The Evaluator refuses such a model;
    # until then its temperature stays 1 and every image it sees is flagged unknown.
    finite = np.isfinite(train_features).all(axis=1)
    detector = fit_detector(train_features[finite], train_labels[finite], num_classes)
    temperature = fit_temperature(held_logits, held_labels)
    if len(held_labels) and not np.isfinite(held_logits).all():
        temperature = Temperature(1.0, len(held_labels), f"not calibrated: {DIVERGED}")
    return HeldOutFit(
        temperature=temperature,
        detector=set_threshold(detector, held_features, train_features, keep),
    )

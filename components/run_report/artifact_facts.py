"""Reads facts out of artifacts' files: statistics, training history and TFMA's results."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2
from tfx.utils import path_utils

from components.anomalies_gate import SCHEMA_DIFF_FILE, split_files
from components.evaluation_metrics import (
    ACCURACY,
    candidate_name,
    overall_arrays,
    overall_metrics,
)
from components.serving_check.executor import RESULT_FILE as SERVING_CHECK_RESULT_FILE
from contract.model_files import HISTORY_FILE
from contract.prediction import CLASS_ID
from modules.calibration_error import (
    CALIBRATION_ERROR,
    CALIBRATION_ERROR_BEFORE,
    RELIABILITY,
    RELIABILITY_BEFORE,
)
from modules.chance_line import ACCURACY_OVER_CHANCE, CHANCE_ACCURACY, STRICTLY_ABOVE
from modules.tuner import OBJECTIVE
from serving.layout import read_class_names

# The Tuner's files, as tfx/components/tuner/executor.py (TFX 1.21) names them.
TUNER_RESULTS_FILE = "tuner_results.json"
BEST_HYPERPARAMETERS_FILE = "best_hyperparameters.txt"


def example_counts(statistics_uri: str) -> dict[str, int]:
    counts = {}
    for split, path in split_files(statistics_uri, "FeatureStats.pb"):
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        with tf.io.gfile.GFile(path, "rb") as handle:
            stats.ParseFromString(handle.read())
        counts[split] = sum(dataset.num_examples for dataset in stats.datasets)
    return counts


def drift_findings(drift_uri: str) -> list[dict[str, Any]]:
    """Each drift measurement above its threshold: feature, measure, value, threshold."""
    findings = []
    for _, path in split_files(drift_uri, SCHEMA_DIFF_FILE):
        with tf.io.gfile.GFile(path, "rb") as handle:
            anomalies = anomalies_pb2.Anomalies.FromString(handle.read())
        for drift in anomalies.drift_skew_info:
            for measurement in drift.drift_measurements:
                if measurement.value > measurement.threshold:
                    findings.append(
                        {
                            "feature": ".".join(drift.path.step),
                            "measure": anomalies_pb2.DriftSkewInfo.Measurement.Type.Name(
                                measurement.type
                            ),
                            "value": round(measurement.value, 6),
                            "threshold": measurement.threshold,
                        }
                    )
    return findings


def training_facts(model_uri: str) -> dict[str, Any] | None:
    """The Trainer's history file, summarized; None if the model has none."""
    path = os.path.join(model_uri, HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        history = json.load(handle)
    return {
        "final_loss": history["loss"][-1] if history["loss"] else None,
        "final_accuracy": history["accuracy"][-1] if history["accuracy"] else None,
        "final_val_accuracy": history["val_accuracy"][-1] if history["val_accuracy"] else None,
        "epochs": history["epochs"],
        "images_per_second": round(history["images_per_second"], 2),
        "device": history["device"],
        "precision_policy": history["precision_policy"],
        "class_names": history["class_names"],
        "warm_started_from": history["warm_started_from"],
        "warm_start_note": history["warm_start_note"],
        "reused_version": history.get("reused_version"),
        # Models trained before training resumed across executions have no such entry.
        "resumed_from_epoch": history.get("resumed_from_epoch", 0),
        # Models trained before the Tuner was wired in record neither.
        "hyperparameters": history.get("hyperparameters"),
        "calibration": history.get("calibration"),
        "tuned": history.get("tuned", False),
        "history_path": path,
    }


def _read_json(path: str) -> Any:
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def tuning_facts(results_uri: str, best_uri: str) -> dict[str, Any]:
    """Every completed trial (id, score, values), best first, and the best trial's values."""
    trials = _read_json(os.path.join(results_uri, TUNER_RESULTS_FILE))
    best = _read_json(os.path.join(best_uri, BEST_HYPERPARAMETERS_FILE))["values"]
    return {
        "objective": OBJECTIVE.name,
        "trials": [
            {"trial_id": trial.pop("trial_id"), "score": trial.pop("score"), "values": trial}
            for trial in trials
        ],
        "best": best,
    }


def bulk_inference_facts(result_uri: str, model_uri: str) -> dict[str, Any]:
    """How many images the BulkInferrer scored, and how many it put in each class."""
    from tensorflow_serving.apis import prediction_log_pb2

    files = tf.io.gfile.glob(os.path.join(result_uri, "prediction_logs-*"))
    class_names = read_class_names(path_utils.serving_model_dir(model_uri))
    by_class = dict.fromkeys(class_names, 0)
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        class_id = log.predict_log.response.outputs[CLASS_ID.name].int64_val[0]
        by_class[class_names[class_id]] += 1
    return {
        "predictions": sum(by_class.values()),
        "by_class": by_class,
        "prediction_logs": files,
    }


def _describe_failure(failure: Any) -> str:
    """For example: accuracy 0.51 is below the minimum 0.90."""
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    name = failure.metric_key.name
    if failure.metric_key.is_diff:
        allowed = threshold.change_threshold.absolute.value
        return (
            f"{name} changed by {value:+.4f} against the served baseline; the allowed "
            f"change is {allowed:+.4f} or better"
        )
    bound = threshold.value_threshold.lower_bound.value
    if name == ACCURACY_OVER_CHANCE:
        margin = max(0.0, bound - STRICTLY_ABOVE)
        verdict = "" if margin else ": no better than chance"
        return (
            f"accuracy beats always answering the largest class by {value:+.4f}, not by more "
            f"than {margin:.4f} (chance_margin){verdict}"
        )
    return f"{name} {value:.4f} is below the minimum {bound:.4f} (min_accuracy)"


def evaluation_facts(uri: str, classes: list[str] | None) -> dict[str, Any] | None:
    """Overall and per-class metrics, the confusion matrix and failed thresholds, from TFMA;
    None for an evaluation that wrote nothing (the candidate was the served version)."""
    import tensorflow_model_analysis as tfma

    if not tf.io.gfile.exists(uri) or not tf.io.gfile.listdir(uri):
        return None
    overall = overall_metrics(uri)

    def name(class_id: int) -> str:
        return classes[class_id] if classes and class_id < len(classes) else str(class_id)

    candidate = candidate_name(overall)
    class_ids = sorted({key[2] for key in overall if key[2] is not None})
    arrays = overall_arrays(uri)
    bins = {
        state: arrays[(candidate, key)]
        for state, key in (("calibrated", RELIABILITY), ("uncalibrated", RELIABILITY_BEFORE))
        if (candidate, key) in arrays
    }
    metrics = {
        "accuracy": overall.get((candidate, ACCURACY, None)),
        "chance_accuracy": overall.get((candidate, CHANCE_ACCURACY, None)),
        "calibration_error": overall.get((candidate, CALIBRATION_ERROR, None)),
        "calibration_error_uncalibrated": overall.get((candidate, CALIBRATION_ERROR_BEFORE, None)),
        "reliability_bins": bins or None,
        "example_count": int(overall.get((candidate, "example_count", None)) or 0),
        "per_class": {
            name(class_id): {
                "precision": overall.get((candidate, "precision", class_id)),
                "recall": overall.get((candidate, "recall", class_id)),
            }
            for class_id in class_ids
        },
    }
    matrix = None
    for plots in tfma.load_plots(uri):
        if plots.slice_key.single_slice_keys:
            continue
        for item in plots.plot_keys_and_values:
            if item.key.model_name == candidate and item.key.name.startswith("multi_class"):
                size = len(classes) if classes else len(class_ids)
                matrix = [[0] * size for _ in range(size)]
                for entry in item.value.multi_class_confusion_matrix_at_thresholds.matrices[
                    0
                ].entries:
                    matrix[entry.actual_class_id][entry.predicted_class_id] = int(
                        entry.num_weighted_examples
                    )
    failures = [
        _describe_failure(failure)
        for per_slice in tfma.load_validation_result(uri).metric_validations_per_slice
        for failure in per_slice.failures
    ]
    return {
        "metrics": metrics,
        "baseline_accuracy": overall.get(("baseline", ACCURACY, None)),
        "confusion_matrix": matrix,
        "failed_thresholds": failures,
    }


def serving_check_facts(infra_blessing_uri: str) -> dict[str, Any] | None:
    """The serving check's figures and verdict; None if it did not get that far."""
    path = os.path.join(infra_blessing_uri, SERVING_CHECK_RESULT_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)

"""The overall metrics TFMA wrote for an evaluation, for the summary and the push record."""

from __future__ import annotations

import math

# TFMA's name for the accuracy of integer labels, as eval_config asks for it.
ACCURACY = "sparse_categorical_accuracy"

MetricKey = tuple[str, str, int | None]  # (model name, metric name, class id or None)


def overall_metrics(evaluation_uri: str) -> dict[MetricKey, float | None]:
    """Every metric of the whole eval split (no slice), diffs left out; NaN becomes None."""
    import tensorflow_model_analysis as tfma

    found: dict[MetricKey, float | None] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for item in metrics.metric_keys_and_values:
            if item.key.is_diff or not item.value.HasField("double_value"):
                continue  # arrays: overall_arrays
            class_id = item.key.sub_key.class_id.value if item.key.HasField("sub_key") else None
            number = item.value.double_value.value
            found[(item.key.model_name, item.key.name, class_id)] = (
                None if math.isnan(number) else number  # NaN: no positive predictions
            )
    return found


def overall_arrays(evaluation_uri: str) -> dict[tuple[str, str], list]:
    """Every array-valued metric of the whole eval split, by (model name, metric name), as
    nested lists in its shape."""
    import numpy as np
    import tensorflow_model_analysis as tfma

    found = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for item in metrics.metric_keys_and_values:
            array = item.value.array_value
            if item.key.is_diff or not item.value.HasField("array_value"):
                continue
            values = array.float64_values or array.float32_values or array.int64_values
            found[(item.key.model_name, item.key.name)] = (
                np.asarray(values).reshape(tuple(array.shape)).tolist()
            )
    return found


def candidate_name(metrics: dict[MetricKey, float | None]) -> str:
    """TFX names the models candidate and baseline; a model judged alone has no name."""
    return "candidate" if any(key[0] == "candidate" for key in metrics) else ""


def candidate_accuracy(evaluation_uri: str) -> float | None:
    metrics = overall_metrics(evaluation_uri)
    return metrics.get((candidate_name(metrics), ACCURACY, None))

"""The expected calibration error (15 equal-width bins) as a TFMA metric, of the calibrated
probabilities the model serves and of the uncalibrated ones it answers beside them on the
examples signature (contract.prediction.UNCALIBRATED_PROBABILITIES), with the bins of both
for the report's reliability diagram.

A custom metric the way TFMA defines its own (tensorflow_model_analysis/metrics/
exact_match.py), as modules/chance_line.py is. A model exported before calibration has no
uncalibrated output: its "before" values are NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

from contract.prediction import UNCALIBRATED_PROBABILITIES
from modules.calibration import BINS, Reliability, bin_sums

CALIBRATION_ERROR = "expected_calibration_error"  # of the served (calibrated) probabilities
CALIBRATION_ERROR_BEFORE = "expected_calibration_error_uncalibrated"
# [3, BINS] arrays of calibration.bin_sums: the reliability diagram, after and before.
RELIABILITY = "reliability_bins"
RELIABILITY_BEFORE = "reliability_bins_uncalibrated"
_NAMES = (CALIBRATION_ERROR, CALIBRATION_ERROR_BEFORE, RELIABILITY, RELIABILITY_BEFORE)


class CalibrationError(metric_types.Metric):
    def __init__(self, name: str = CALIBRATION_ERROR) -> None:
        super().__init__(metric_util.merge_per_key_computations(_computations), name=name)


metric_types.register_metric(CalibrationError)


def _computations(
    name: str,
    eval_config: Any = None,
    model_name: str = "",
    output_name: str = "",
    sub_key: metric_types.SubKey | None = None,
    aggregation_type: metric_types.AggregationType | None = None,
    class_weights: dict[int, float] | None = None,
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    keys = [
        metric_types.MetricKey(
            name=metric,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            example_weighted=example_weighted,
        )
        for metric in _NAMES
    ]
    return [
        metric_types.MetricComputation(
            keys=keys,
            preprocessors=None,
            combiner=_CalibrationCombiner(keys, eval_config, example_weighted),
        )
    ]


def _reading_uncalibrated(eval_config: Any) -> Any:
    """The eval config with every model's prediction key the uncalibrated output."""
    if eval_config is None:
        return None
    changed = config_pb2.EvalConfig()
    changed.CopyFrom(eval_config)
    for spec in changed.model_specs:
        spec.prediction_key = UNCALIBRATED_PROBABILITIES
    return changed


class _CalibrationCombiner(beam.CombineFn):
    def __init__(
        self, keys: list[metric_types.MetricKey], eval_config: Any, example_weighted: bool
    ) -> None:
        self._keys = keys
        self._configs = (eval_config, _reading_uncalibrated(eval_config))
        self._example_weighted = example_weighted

    def create_accumulator(self) -> list[np.ndarray]:
        return [np.zeros((3, BINS)), np.zeros((3, BINS))]  # after, before

    def add_input(
        self, sums: list[np.ndarray], element: metric_types.StandardMetricInputs
    ) -> list[np.ndarray]:
        model_name = self._keys[0].model_name
        outputs = element.prediction
        if model_name and isinstance(outputs, Mapping):
            outputs = outputs.get(model_name)
        has_before = isinstance(outputs, Mapping) and UNCALIBRATED_PROBABILITIES in outputs
        for index, config in enumerate(self._configs[: 2 if has_before else 1]):
            for label, probabilities, weight in metric_util.to_label_prediction_example_weight(
                element,
                eval_config=config,
                model_name=model_name,
                output_name=self._keys[0].output_name,
                example_weighted=self._example_weighted,
                flatten=False,
            ):
                sums[index] += bin_sums(
                    np.reshape(probabilities, (1, -1)),
                    np.asarray(label).reshape(-1)[:1].astype(int),  # a sparse label
                    np.asarray([metric_util.safe_to_scalar(weight)]),
                )
        return sums

    def merge_accumulators(self, accumulators: Iterable[list[np.ndarray]]) -> list[np.ndarray]:
        merged = self.create_accumulator()
        for after, before in accumulators:
            merged[0] += after
            merged[1] += before
        return merged

    def extract_output(self, sums: list[np.ndarray]) -> dict[metric_types.MetricKey, Any]:
        after, before = sums
        error, error_before, bins, bins_before = self._keys
        return {
            error: Reliability.from_sums(after).expected_calibration_error,
            error_before: Reliability.from_sums(before).expected_calibration_error,
            bins: after,
            bins_before: before,
        }

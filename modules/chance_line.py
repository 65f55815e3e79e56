"""The chance line as a TFMA metric: how far the accuracy is above always answering the eval
split's largest class. TFX's Evaluator computes it with the other metrics, and a value
threshold on it refuses a model that does not beat chance (pipelines/eval_config.py).

A custom metric the way TFMA defines its own (tensorflow_model_analysis/metrics/
exact_match.py): a Metric whose computation is a Beam CombineFn over the examples.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util

ACCURACY_OVER_CHANCE = "accuracy_over_chance"  # accuracy minus CHANCE_ACCURACY
CHANCE_ACCURACY = "chance_accuracy"  # of always answering the eval split's largest class
# TFMA's value thresholds pass at their bound; the gate asks for more than the margin.
STRICTLY_ABOVE = 1e-9


class AccuracyOverChance(metric_types.Metric):
    """Reports CHANCE_ACCURACY and ACCURACY_OVER_CHANCE (the one to threshold)."""

    def __init__(self, name: str = ACCURACY_OVER_CHANCE) -> None:
        super().__init__(metric_util.merge_per_key_computations(_computations), name=name)


metric_types.register_metric(AccuracyOverChance)


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
        for metric in (name, CHANCE_ACCURACY)
    ]
    return [
        metric_types.MetricComputation(
            keys=keys,
            preprocessors=None,
            combiner=_ChanceCombiner(keys, eval_config, example_weighted),
        )
    ]


class _Counts:
    """Weight per true class, and the weight of correct answers."""

    __slots__ = ("by_class", "correct")

    def __init__(self) -> None:
        self.by_class: collections.Counter = collections.Counter()
        self.correct = 0.0


class _ChanceCombiner(beam.CombineFn):
    def __init__(
        self, keys: list[metric_types.MetricKey], eval_config: Any, example_weighted: bool
    ) -> None:
        self._over, self._chance = keys
        self._eval_config = eval_config
        self._example_weighted = example_weighted

    def create_accumulator(self) -> _Counts:
        return _Counts()

    def add_input(self, counts: _Counts, element: metric_types.StandardMetricInputs) -> _Counts:
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
            element,
            eval_config=self._eval_config,
            model_name=self._over.model_name,
            output_name=self._over.output_name,
            example_weighted=self._example_weighted,
            flatten=False,
        ):
            weight = float(metric_util.safe_to_scalar(weight))
            true_class = int(np.asarray(label).reshape(-1)[0])  # a sparse label
            counts.by_class[true_class] += weight
            counts.correct += weight * (int(np.argmax(prediction)) == true_class)
        return counts

    def merge_accumulators(self, accumulators: Iterable[_Counts]) -> _Counts:
        merged = _Counts()
        for counts in accumulators:
            merged.by_class.update(counts.by_class)
            merged.correct += counts.correct
        return merged

    def extract_output(self, counts: _Counts) -> dict[metric_types.MetricKey, float]:
        total = sum(counts.by_class.values())
        if not total:
            return {self._over: float("nan"), self._chance: float("nan")}
        largest = max(counts.by_class.values())
        # One difference of counts: a tie with chance is exactly 0.
        return {self._over: (counts.correct - largest) / total, self._chance: largest / total}

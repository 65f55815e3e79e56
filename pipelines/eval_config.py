"""The TFMA configuration: accuracy gates the push, absolutely, against the served baseline,
and against chance (always answering the eval split's largest class, modules/chance_line.py);
the calibration error before and after temperature scaling is reported
(modules/calibration_error.py)."""

from __future__ import annotations

from tensorflow_model_analysis.proto import config_pb2 as tfma

from modules import calibration_error, chance_line


def eval_config(
    label_key: str,
    signature_name: str,
    prediction_key: str,
    num_classes: int,
    min_accuracy: float,
    regression_epsilon: float,
    chance_margin: float,
) -> tfma.EvalConfig:
    """`chance_margin`: the accuracy must beat chance by more than this; negative: the chance
    line is reported, not gated."""
    accuracy = tfma.MetricConfig(
        class_name="SparseCategoricalAccuracy",
        # Thresholds apply to the overall slice; per-class slices are reported, not gated.
        per_slice_thresholds=[
            tfma.PerSliceMetricThreshold(
                slicing_specs=[tfma.SlicingSpec()],
                threshold=tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_accuracy}),
                    change_threshold=tfma.GenericChangeThreshold(
                        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                        absolute={"value": -regression_epsilon},
                    ),
                ),
            )
        ],
    )
    over_chance = tfma.MetricConfig(class_name="AccuracyOverChance", module=chance_line.__name__)
    if chance_margin >= 0:
        # The overall slice only: within one class's slice, chance is 1.
        over_chance.per_slice_thresholds.append(
            tfma.PerSliceMetricThreshold(
                slicing_specs=[tfma.SlicingSpec()],
                threshold=tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(
                        lower_bound={"value": chance_margin + chance_line.STRICTLY_ABOVE}
                    )
                ),
            )
        )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=signature_name, label_key=label_key, prediction_key=prediction_key
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[label_key])],
        # The model compiles one-hot metrics; the examples hold integer labels.
        options=tfma.Options(include_default_metrics={"value": False}),
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    accuracy,
                    over_chance,
                    # Reported, not gated: calibration changes no answer.
                    tfma.MetricConfig(
                        class_name="CalibrationError", module=calibration_error.__name__
                    ),
                    tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            ),
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="Precision"),
                    tfma.MetricConfig(class_name="Recall"),
                ],
                binarize=tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))}),
            ),
        ],
    )

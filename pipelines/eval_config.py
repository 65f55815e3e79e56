"""The TFMA configuration: accuracy gates the push, absolutely and against the served baseline."""

from __future__ import annotations

from tensorflow_model_analysis.proto import config_pb2 as tfma


def eval_config(
    label_key: str,
    signature_name: str,
    prediction_key: str,
    num_classes: int,
    min_accuracy: float,
    regression_epsilon: float,
) -> tfma.EvalConfig:
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

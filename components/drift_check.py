"""DriftCheck: the newest data's statistics against those of the served model's training data.

The statistics are computed here, for both splits, by TFDV with its image-domain generator
(the one StatisticsGen can enable skips splits of fewer than 100 images), and written out:
AtomicPusher keeps the train split's with each version, and PushedModelResolver hands the
served version's back to the next run, so no resolver node is needed and both sides of a
comparison are computed alike. The eval split (the newest span's) is compared with the
served version's train split. The comparison is TFDV's: drift
comparators on the label distribution (L-infinity for a categorical label, Jensen-Shannon
divergence for a numeric one) and on image height and width (Jensen-Shannon divergence),
plus the L-infinity distance between the image-format histograms, which its comparators do
not cover. Findings are written as TFDV Anomalies, like
ExampleValidator's, so the anomalies gate, the summary and the report read both alike.
A Python-function component: TFX generates its spec and executor.
"""

# No `from __future__ import annotations`: TFX reads the component's type hints as types.
import json
import os

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, Examples, ExampleStatistics

from components.anomalies_gate import SCHEMA_DIFF_FILE
from components.drift_thresholds import DriftThresholds
from contract.artifact_properties import AVAILABLE, COMPARED_WITH_SERVED
from contract.data import CLASS_NAME_KEY, EVAL, HEIGHT_KEY, SPLITS, TRAIN, WIDTH_KEY

IMAGE_FORMATS = "image_format_histogram"  # TFDV's image-domain custom statistic
STATISTICS_FILE = "FeatureStats.pb"  # as StatisticsGen names it


def _split_statistics(uri: str, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """One split of an ExampleStatistics artifact."""
    path = os.path.join(uri, f"Split-{split}", STATISTICS_FILE)
    with tf.io.gfile.GFile(path, "rb") as handle:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(handle.read())


def _features(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> dict:
    return {feature.path.step[0]: feature for feature in statistics.datasets[0].features}


def _format_shares(feature: statistics_pb2.FeatureNameStatistics) -> dict[str, float] | None:
    for stat in feature.custom_stats:
        if stat.name == IMAGE_FORMATS:
            buckets = stat.rank_histogram.buckets
            total = sum(bucket.sample_count for bucket in buckets) or 1
            return {bucket.label: bucket.sample_count / total for bucket in buckets}
    return None


def drift_anomalies(
    current: statistics_pb2.DatasetFeatureStatisticsList,
    served: statistics_pb2.DatasetFeatureStatisticsList,
    label_feature: str,
    thresholds: DriftThresholds,
) -> anomalies_pb2.Anomalies:
    """TFDV's drift check of `current` against `served`, plus the image-format check."""
    # Imported here: TFDV 1.16 needs tfx imported first (it stubs tfx_bsl.arrow.sql_util).
    import tensorflow_data_validation as tfdv

    features = _features(current)
    schema = tfdv.infer_schema(current)
    # A class-name feature is the label as a category; otherwise the label is numeric, and
    # its distribution's divergence is held to the same threshold.
    label = CLASS_NAME_KEY if CLASS_NAME_KEY in features else label_feature
    for feature in schema.feature:
        comparator = feature.drift_comparator
        if feature.name == label and feature.type == schema_pb2.BYTES:
            comparator.infinity_norm.threshold = thresholds.label_l_infinity
        elif feature.name == label:
            comparator.jensen_shannon_divergence.threshold = thresholds.label_l_infinity
        elif feature.name in (HEIGHT_KEY, WIDTH_KEY):
            comparator.jensen_shannon_divergence.threshold = thresholds.size_js_divergence
    anomalies = tfdv.validate_statistics(current, schema, previous_statistics=served)
    served_features = _features(served)
    for name, feature in features.items():
        now = _format_shares(feature)
        before = _format_shares(served_features[name]) if name in served_features else None
        if now is None or before is None:
            continue
        distance = max(abs(now.get(f, 0) - before.get(f, 0)) for f in set(now) | set(before))
        if distance > thresholds.format_l_infinity:
            info = anomalies.anomaly_info[name]
            info.description = (
                f"The Linfty distance between the image formats of current and previous is "
                f"{distance:.6g}, above the threshold {thresholds.format_l_infinity}. Formats "
                f"now: {json.dumps(now)}; before: {json.dumps(before)}."
            )
            info.short_description = "High Linfty distance between image formats"
            drift = anomalies.drift_skew_info.add()
            drift.path.step.append(name)
            measurement = drift.drift_measurements.add()
            measurement.type = anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY
            measurement.value = distance
            measurement.threshold = thresholds.format_l_infinity
    return anomalies


def split_statistics(examples_uri: str, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV's statistics of one split, image formats included however few the images."""
    # Imported here: TFDV 1.16 needs tfx imported first (it stubs tfx_bsl.arrow.sql_util).
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.statistics.generators import image_stats_generator

    options = tfdv.StatsOptions(
        generators=[image_stats_generator.ImageStatsGenerator(values_threshold=1)]
    )
    pattern = os.path.join(examples_uri, f"Split-{split}", "*")
    return tfdv.generate_statistics_from_tfrecord(pattern, stats_options=options)


@component
def DriftCheck(  # noqa: N802 (a component)
    examples: InputArtifact[Examples],
    served_statistics: InputArtifact[ExampleStatistics],
    statistics: OutputArtifact[ExampleStatistics],
    anomalies: OutputArtifact[ExampleAnomalies],
    label_feature: Parameter[str],
    thresholds: Parameter[str],
) -> None:
    """The eval split (the newest span's) against the served version's training split."""
    statistics.split_names = artifact_utils.encode_split_names(list(SPLITS))
    for split in SPLITS:
        target = os.path.join(statistics.uri, f"Split-{split}", STATISTICS_FILE)
        tf.io.gfile.makedirs(os.path.dirname(target))
        with tf.io.gfile.GFile(target, "wb") as handle:
            handle.write(split_statistics(examples.uri, split).SerializeToString())
    anomalies.split_names = artifact_utils.encode_split_names([EVAL])
    found = anomalies_pb2.Anomalies()
    compared = served_statistics.get_int_custom_property(AVAILABLE) == 1
    if compared:
        found = drift_anomalies(
            _split_statistics(statistics.uri, EVAL),
            _split_statistics(served_statistics.uri, TRAIN),
            label_feature,
            DriftThresholds(**json.loads(thresholds)),
        )
    anomalies.set_int_custom_property(COMPARED_WITH_SERVED, int(compared))
    target = os.path.join(anomalies.uri, f"Split-{EVAL}", SCHEMA_DIFF_FILE)
    tf.io.gfile.makedirs(os.path.dirname(target))
    with tf.io.gfile.GFile(target, "wb") as handle:
        handle.write(found.SerializeToString())

"""AnomaliesGate's executor on fixed ExampleAnomalies artifacts, as TFX tests executors."""

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.anomalies_gate import AnomaliesGate, DataAnomalies


def _anomalies_artifact(root, per_split):
    """An ExampleAnomalies artifact with one SchemaDiff.pb per split."""
    for split, features in per_split.items():
        anomalies = anomalies_pb2.Anomalies()
        for feature, description in features.items():
            anomalies.anomaly_info[feature].description = description
        (root / f"Split-{split}").mkdir(parents=True)
        (root / f"Split-{split}" / "SchemaDiff.pb").write_bytes(anomalies.SerializeToString())
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(root)
    artifact.split_names = artifact_utils.encode_split_names(sorted(per_split))
    return artifact


def _run_gate(artifact):
    executor = AnomaliesGate.EXECUTOR_SPEC.executor_class()
    executor.Do({"anomalies": [artifact]}, {}, {})


def test_clean_data_passes(tmp_path):
    _run_gate(_anomalies_artifact(tmp_path, {"train": {}, "eval": {}}))


def test_anomalies_fail_the_gate_and_are_listed(tmp_path):
    artifact = _anomalies_artifact(
        tmp_path,
        {"train": {}, "eval": {"class_name": "Unexpected string values: bird", "width": "x"}},
    )
    with pytest.raises(DataAnomalies) as raised:
        _run_gate(artifact)
    message = str(raised.value)
    assert message.startswith("2 data anomalies (fail_on_anomalies); nothing was trained")
    assert "eval: feature class_name: Unexpected string values: bird" in message
    assert "eval: feature width: x" in message

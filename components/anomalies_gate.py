"""AnomaliesGate: fails the run when the data validation or the drift check found anomalies.

Nodes wired after it wait for it, so anomalous data never reaches training or serving, with
LocalDagRunner and on Kubeflow Pipelines alike: a failed task stops the run there too. A
Python-function component: TFX generates its spec and executor.
"""

# No `from __future__ import annotations`: TFX reads the component's type hints as types.
import os
from collections.abc import Iterator

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleAnomalies

SCHEMA_DIFF_FILE = "SchemaDiff.pb"


class DataAnomalies(RuntimeError):
    """The data does not fit its schema; the message lists every anomaly."""


def split_files(uri: str, name: str) -> Iterator[tuple[str, str]]:
    """(split, path) of each Split-<name>/<file> that exists under an artifact's URI."""
    for split_dir in sorted(tf.io.gfile.glob(os.path.join(uri, "Split-*"))):
        path = os.path.join(split_dir, name)
        if tf.io.gfile.exists(path):
            yield os.path.basename(split_dir)[len("Split-") :], path


def anomaly_messages(anomalies_uri: str) -> list[str]:
    """One line per anomaly: the split, the feature (or the dataset) and the reason."""
    messages = []
    for split, path in split_files(anomalies_uri, SCHEMA_DIFF_FILE):
        anomalies = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(path, "rb") as handle:
            anomalies.ParseFromString(handle.read())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            reason = info.description or info.short_description
            messages.append(f"{split}: feature {feature}: {reason}")
        for info in anomalies.dataset_anomaly_info.reason:
            messages.append(f"{split}: dataset: {info.description or info.short_description}")
    return messages


def check_anomalies(anomalies_uri: str, drift_uri: str | None = None) -> None:
    """Raises DataAnomalies, listing them, if either artifact holds any."""
    messages = anomaly_messages(anomalies_uri)
    if drift_uri:
        messages += [f"drift: {message}" for message in anomaly_messages(drift_uri)]
    if messages:
        raise DataAnomalies(
            f"{len(messages)} data anomalies (fail_on_anomalies); nothing was trained or "
            "pushed. Fix the data or the schema, then run again:\n  " + "\n  ".join(messages)
        )


@component
def AnomaliesGate(  # noqa: N802 (a component)
    anomalies: InputArtifact[ExampleAnomalies], drift: InputArtifact[ExampleAnomalies] = None
) -> None:
    """Passes when ExampleValidator (and the drift check) found nothing; fails otherwise."""
    check_anomalies(anomalies.uri, drift.uri if drift else None)

"""Builds a run's machine-readable summary from MLMD lineage and the run's artifacts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import tensorflow as tf
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from pipelines.config import PipelineConfig

_STATUS = {
    metadata_store_pb2.Execution.COMPLETE: "complete",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
}


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


class RunLineage:
    """The executions of one pipeline run and the artifacts they produced, by node id."""

    def __init__(self, store: metadata_store.MetadataStore, pipeline_name: str, run_id: str):
        self.store = store
        self.run_id = run_id
        context = store.get_context_by_type_and_name("pipeline_run", run_id)
        executions = store.get_executions_by_context(context.id) if context else []
        prefix = f"{pipeline_name}."
        self.executions: dict[str, metadata_store_pb2.Execution] = {}
        for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
            for ctx in store.get_contexts_by_execution(execution.id):
                if ctx.type == "node" and ctx.name.startswith(prefix):
                    self.executions[ctx.name[len(prefix) :]] = execution

    def outputs(self, node_id: str, key: str) -> list[metadata_store_pb2.Artifact]:
        execution = self.executions.get(node_id)
        if execution is None:
            return []
        ids = [
            event.artifact_id
            for event in self.store.get_events_by_execution_ids([execution.id])
            if event.type == metadata_store_pb2.Event.OUTPUT
            and any(step.key == key for step in event.path.steps)
        ]
        return self.store.get_artifacts_by_id(ids)

    def output(self, node_id: str, key: str) -> metadata_store_pb2.Artifact | None:
        artifacts = self.outputs(node_id, key)
        return artifacts[0] if artifacts else None

    def components(self) -> dict[str, dict[str, Any]]:
        return {
            node: {
                "status": _STATUS.get(execution.last_known_state, "unknown"),
                "seconds": round(
                    (execution.last_update_time_since_epoch - execution.create_time_since_epoch)
                    / 1000,
                    3,
                ),
            }
            for node, execution in self.executions.items()
        }


def _split_files(uri: str, name: str) -> Iterator[tuple[str, str]]:
    for split_dir in sorted(tf.io.gfile.glob(os.path.join(uri, "Split-*"))):
        path = os.path.join(split_dir, name)
        if tf.io.gfile.exists(path):
            yield os.path.basename(split_dir)[len("Split-") :], path


def example_counts(statistics_uri: str) -> dict[str, int]:
    counts = {}
    for split, path in _split_files(statistics_uri, "FeatureStats.pb"):
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        stats.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        counts[split] = sum(dataset.num_examples for dataset in stats.datasets)
    return counts


def anomaly_messages(anomalies_uri: str) -> list[str]:
    messages = []
    for split, path in _split_files(anomalies_uri, "SchemaDiff.pb"):
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(tf.io.gfile.GFile(path, "rb").read())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            reason = info.description or info.short_description
            messages.append(f"{split}: feature {feature}: {reason}")
        for info in anomalies.dataset_anomaly_info.reason:
            messages.append(f"{split}: dataset: {info.description or info.short_description}")
    return messages


def _string_property(artifact: metadata_store_pb2.Artifact, name: str) -> str | None:
    value = artifact.custom_properties.get(name)
    return value.string_value if value is not None else None


def build(
    config: PipelineConfig, run_id: str, wall_seconds: float, example_gen_id: str
) -> dict[str, Any]:
    """The summary fields filled in so far; absent stages leave their fields null."""
    lineage = RunLineage(open_store(config.metadata_path), config.pipeline_name, run_id)
    summary: dict[str, Any] = {
        "pipeline_name": config.pipeline_name,
        "run_id": run_id,
        "wall_seconds": round(wall_seconds, 3),
        "classes": None,
        "examples": None,
        "rejected_files": None,
        "rejects_path": None,
        "anomalies": None,
        "training": None,
        "components": lineage.components(),
    }
    examples = lineage.output(example_gen_id, "examples")
    if examples is not None:
        names = _string_property(examples, "class_names")
        summary["classes"] = json.loads(names) if names else config.class_names
        rejected = examples.custom_properties.get("rejected_count")
        summary["rejected_files"] = rejected.int_value if rejected is not None else 0
        summary["rejects_path"] = _string_property(examples, "rejects_path")
    statistics = lineage.output("StatisticsGen", "statistics")
    if statistics is not None:
        summary["examples"] = example_counts(statistics.uri)
    anomalies = lineage.output("ExampleValidator", "anomalies")
    if anomalies is not None:
        summary["anomalies"] = anomaly_messages(anomalies.uri)
    model = lineage.output("Trainer", "model")
    if model is not None:
        summary["training"] = training_facts(model.uri)
    return summary


def training_facts(model_uri: str) -> dict[str, Any] | None:
    path = os.path.join(model_uri, "training_history.json")
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
        "history_path": path,
    }


def describe(summary: dict[str, Any]) -> str:
    """A short human summary of the run."""
    lines = [
        f"Run {summary['run_id']} of {summary['pipeline_name']} ({summary['wall_seconds']:.1f} s)"
    ]
    for name, info in summary["components"].items():
        seconds = f"{info['seconds']:.1f} s" if info["seconds"] is not None else ""
        lines.append(f"  {name:<24}{info['status']:<10}{seconds}")
    if summary["classes"] is not None:
        lines.append(f"Classes: {', '.join(summary['classes'])}")
    if summary["examples"] is not None:
        counts = ", ".join(f"{split} {n}" for split, n in sorted(summary["examples"].items()))
        lines.append(f"Examples: {counts}")
    training = summary["training"]
    if training:
        lines.append(
            f"Training: {training['epochs']} epochs on {training['device']}, final loss "
            f"{training['final_loss']:.4f}, accuracy {training['final_accuracy']:.3f}, "
            f"{training['images_per_second']:.1f} images/s"
        )
    if summary["rejected_files"]:
        lines.append(
            f"Rejected files: {summary['rejected_files']} (listed in {summary['rejects_path']})"
        )
    if summary["anomalies"]:
        lines.append("Anomalies:")
        lines.extend(f"  {message}" for message in summary["anomalies"])
    elif summary["anomalies"] is not None:
        lines.append("Anomalies: none")
    return "\n".join(lines)

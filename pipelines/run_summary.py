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
        "metrics": None,
        "baseline_accuracy": None,
        "baseline_version": None,
        "confusion_matrix": None,
        "failed_thresholds": None,
        "blessed": None,
        "pushed": None,
        "pushed_model_dir": None,
        "pushed_version": None,
        "lineage": {},
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
        if summary["training"] and not summary["classes"]:
            summary["classes"] = summary["training"]["class_names"]
    baseline = lineage.output("PushedModelResolver", "model")
    if baseline is not None:
        summary["baseline_version"] = _int_property(baseline, "baseline_version") or None
    evaluation = lineage.output("Evaluator", "evaluation")
    if evaluation is not None:
        summary.update(
            evaluation_facts(
                evaluation.uri, summary["classes"], has_baseline=bool(summary["baseline_version"])
            )
        )
    blessing = lineage.output("Evaluator", "blessing")
    if blessing is not None:
        summary["blessed"] = _int_property(blessing, "blessed") == 1
    summary["lineage"] = {
        "data": config.data_path,
        **{
            name: artifact.uri
            for name, artifact in (
                ("examples", examples),
                (
                    "schema",
                    lineage.output(
                        "CuratedImportSchemaGen" if config.schema_file else "SchemaGen", "schema"
                    ),
                ),
                ("transform_graph", lineage.output("Transform", "transform_graph")),
                ("model", model),
                ("baseline_model", baseline),
                ("evaluation", evaluation),
            )
            if artifact is not None
        },
    }
    push = lineage.output("Pusher", "pushed_model")
    if push is not None:
        summary["pushed"] = _int_property(push, "pushed") == 1
        if summary["pushed"]:
            summary["pushed_model_dir"] = _string_property(push, "pushed_destination")
            summary["pushed_version"] = int(_string_property(push, "pushed_version"))
            summary["lineage"]["pushed_model_dir"] = summary["pushed_model_dir"]
    return summary


def _int_property(artifact: metadata_store_pb2.Artifact, name: str) -> int | None:
    value = artifact.custom_properties.get(name)
    return value.int_value if value is not None else None


def _metric_value(value: Any) -> float | None:
    number = value.double_value.value
    return None if number != number else number  # NaN: no positive predictions


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
    return f"{name} {value:.4f} is below the minimum {bound:.4f} (min_accuracy)"


def evaluation_facts(uri: str, classes: list[str] | None, has_baseline: bool) -> dict[str, Any]:
    """Overall and per-class metrics, the confusion matrix and failed thresholds, from TFMA."""
    import tensorflow_model_analysis as tfma

    overall: dict[tuple[str, str, int | None], float | None] = {}
    for metrics in tfma.load_metrics(uri):
        if metrics.slice_key.single_slice_keys:
            continue
        for item in metrics.metric_keys_and_values:
            if item.key.is_diff:
                continue
            class_id = item.key.sub_key.class_id.value if item.key.HasField("sub_key") else None
            overall[(item.key.model_name, item.key.name, class_id)] = _metric_value(item.value)

    def name(class_id: int) -> str:
        return classes[class_id] if classes and class_id < len(classes) else str(class_id)

    class_ids = sorted({key[2] for key in overall if key[2] is not None})
    metrics = {
        "accuracy": overall.get(("candidate", "sparse_categorical_accuracy", None)),
        "example_count": int(overall.get(("candidate", "example_count", None)) or 0),
        "per_class": {
            name(class_id): {
                "precision": overall.get(("candidate", "precision", class_id)),
                "recall": overall.get(("candidate", "recall", class_id)),
            }
            for class_id in class_ids
        },
    }
    matrix = None
    for plots in tfma.load_plots(uri):
        if plots.slice_key.single_slice_keys:
            continue
        for item in plots.plot_keys_and_values:
            if item.key.model_name == "candidate" and item.key.name.startswith("multi_class"):
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
        "baseline_accuracy": overall.get(("baseline", "sparse_categorical_accuracy", None))
        if has_baseline
        else None,
        "confusion_matrix": matrix,
        "failed_thresholds": failures,
    }


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
        "class_names": history["class_names"],
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
    metrics = summary["metrics"]
    if metrics:
        baseline = summary["baseline_accuracy"]
        lines.append(
            f"Eval accuracy: {metrics['accuracy']:.4f} on {metrics['example_count']} examples"
            + (
                f" (served baseline v{summary['baseline_version']}: {baseline:.4f})"
                if baseline is not None
                else " (no served baseline)"
            )
        )
    if summary["blessed"] is not None:
        if summary["blessed"]:
            lines.append("Blessed: yes")
        else:
            lines.append("Blessed: NO. Failed thresholds:")
            lines.extend(f"  {failure}" for failure in summary["failed_thresholds"] or [])
    if summary["pushed"] is not None:
        lines.append(
            f"Pushed: version {summary['pushed_version']} to {summary['pushed_model_dir']}"
            if summary["pushed"]
            else "Pushed: no (not blessed, or identical to the served model)"
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


def list_runs(metadata_path: str) -> list[dict[str, Any]]:
    """Every recorded pipeline run, oldest first, read from MLMD lineage."""
    import datetime

    if not tf.io.gfile.exists(metadata_path):
        raise FileNotFoundError(
            f"No pipeline metadata at {metadata_path}; run the pipeline "
            "first or point --pipeline-root at its root."
        )
    store = open_store(metadata_path)
    rows = []
    for pipeline in store.get_contexts_by_type("pipeline"):
        # A run belongs to this pipeline when its executions carry this pipeline's nodes.
        for run in store.get_contexts_by_type("pipeline_run"):
            lineage = RunLineage(store, pipeline.name, run.name)
            if not lineage.executions:
                continue
            evaluation = lineage.output("Evaluator", "evaluation")
            accuracy = (
                evaluation_facts(evaluation.uri, None, has_baseline=False)["metrics"]["accuracy"]
                if evaluation is not None
                else None
            )
            blessing = lineage.output("Evaluator", "blessing")
            push = lineage.output("Pusher", "pushed_model")
            pushed = push is not None and _int_property(push, "pushed") == 1
            rows.append(
                {
                    "pipeline": pipeline.name,
                    "run_id": run.name,
                    "time": datetime.datetime.fromtimestamp(
                        run.create_time_since_epoch / 1000
                    ).isoformat(timespec="seconds"),
                    "accuracy": accuracy,
                    "blessed": None
                    if blessing is None
                    else _int_property(blessing, "blessed") == 1,
                    "pushed_version": int(_string_property(push, "pushed_version"))
                    if pushed
                    else None,
                }
            )
    return sorted(rows, key=lambda row: row["time"])

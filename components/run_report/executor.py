"""RunReport's executor: the summary built from the input artifacts, written as KFP's
system.* artifacts (components/run_report/artifacts.py)."""

from __future__ import annotations

import json
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from components.run_report.report import write_report
from components.run_report.settings import ReportSettings
from components.run_report.summary import RunSummary, summarize
from components.run_report.summary_text import describe
from contract.launcher_paths import remote_uri

PIPELINE_NAME_KEY = "pipeline_name"
DATA_KEY = "data"
CLASS_NAMES_KEY = "class_names"
NODES_KEY = "nodes"
SETTINGS_KEY = "settings"
METRICS_KEY = "metrics"
CONFUSION_MATRIX_KEY = "confusion_matrix"
SUMMARY_KEY = "summary"
REPORT_KEY = "report"


def run_id_of(uri: str) -> str:
    """The run's id from an output URI, <root>/<pipeline>/<run>/<task>/<uuid>/<key>, as
    KFP's driver lays them out (driver/driver.go provisionOutputs)."""
    parts = uri.rstrip("/").split("/")
    return parts[-4] if len(parts) >= 4 else "unknown"


def markdown(summary: RunSummary) -> str:
    """The console's summary lines as a Markdown document."""
    title, *lines = describe(summary, components=False).splitlines()
    items = "\n".join(f"- {line}" if not line.startswith("  ") else f"  - {line.strip()}"
                      for line in lines)  # fmt: skip
    return f"# {title}\n\n{items}\n"


def scalar_metrics(summary: RunSummary) -> dict[str, float]:
    """The eval metrics as system.Metrics scalars (unset ones left out)."""
    found: dict[str, float | None] = {}
    if metrics := summary.metrics:
        found |= {"accuracy": metrics.accuracy, "eval_examples": metrics.example_count}
        for name, values in metrics.per_class.items():
            found |= {f"precision_{name}": values.precision, f"recall_{name}": values.recall}
    found["baseline_accuracy"] = summary.baseline_accuracy
    return {name: float(value) for name, value in found.items() if value is not None}


def confusion_matrix(summary: RunSummary) -> dict[str, Any] | None:
    if not summary.confusion_matrix or not summary.classes:
        return None
    return {
        "annotationSpecs": [{"displayName": name} for name in summary.classes],
        "rows": [{"row": row} for row in summary.confusion_matrix],
    }


class Executor(base_executor.BaseExecutor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        outputs = {
            key: artifact_utils.get_single_instance(items) for key, items in output_dict.items()
        }
        found = {role: items[0].mlmd_artifact for role, items in input_dict.items() if items}
        summary = summarize(
            found,
            json.loads(exec_properties[NODES_KEY]),
            RunSummary(
                pipeline_name=exec_properties[PIPELINE_NAME_KEY],
                run_id=run_id_of(remote_uri(outputs[SUMMARY_KEY].uri) or outputs[SUMMARY_KEY].uri),
                wall_seconds=None,
            ),
            exec_properties[DATA_KEY],
            json.loads(exec_properties[CLASS_NAMES_KEY]),
        )
        if summary.training and not summary.classes:
            summary.classes = summary.training.class_names
        settings = ReportSettings(**json.loads(exec_properties[SETTINGS_KEY]))
        # Its reader sees the store's URIs; the report reads the history from the local copy.
        summary.lineage = {role: remote_uri(uri) or uri for role, uri in summary.lineage.items()}
        write_report(summary, outputs[REPORT_KEY].uri, settings)
        with tf.io.gfile.GFile(outputs[SUMMARY_KEY].uri, "w") as handle:
            handle.write(markdown(summary))
        for name, value in scalar_metrics(summary).items():
            outputs[METRICS_KEY].set_float_custom_property(name, value)
        if matrix := confusion_matrix(summary):
            outputs[CONFUSION_MATRIX_KEY].set_json_value_custom_property("confusionMatrix", matrix)

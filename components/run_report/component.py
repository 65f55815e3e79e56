"""RunReport: the run's summary, metrics, confusion matrix and report, as the artifacts
Kubeflow Pipelines' UI shows. Kubeflow only: a local run writes the same report itself.

It reads the artifacts the summary needs, except the examples (and the eval-image gallery
they would give): the launcher copies each input whole into the pod, and the examples are
the whole dataset. Their counts come from the statistics instead.
"""

from __future__ import annotations

import dataclasses
import json

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.run_report import artifacts, executor
from components.run_report.settings import ReportSettings
from contract import roles

# The roles read, by their artifact type.
INPUT_TYPES = {
    roles.STATISTICS: standard_artifacts.ExampleStatistics,
    roles.ANOMALIES: standard_artifacts.ExampleAnomalies,
    roles.DRIFT: standard_artifacts.ExampleAnomalies,
    roles.BASELINE_MODEL: standard_artifacts.Model,
    roles.HYPERPARAMETERS: standard_artifacts.HyperParameters,
    roles.TUNER_RESULTS: standard_artifacts.TunerResults,
    roles.MODEL: standard_artifacts.Model,
    roles.EVALUATION: standard_artifacts.ModelEvaluation,
    roles.BLESSING: standard_artifacts.ModelBlessing,
    roles.INFERENCE_RESULT: standard_artifacts.InferenceResult,
    roles.INFRA_BLESSING: standard_artifacts.InfraBlessing,
    roles.PUSHED_MODEL: standard_artifacts.PushedModel,
}
OUTPUT_TYPES = {
    executor.METRICS_KEY: artifacts.Metrics,
    executor.CONFUSION_MATRIX_KEY: artifacts.ClassificationMetrics,
    executor.SUMMARY_KEY: artifacts.Markdown,
    executor.REPORT_KEY: artifacts.HTML,
}


class RunReportSpec(ComponentSpec):
    PARAMETERS = {
        executor.PIPELINE_NAME_KEY: ExecutionParameter(type=str),
        executor.DATA_KEY: ExecutionParameter(type=str),
        executor.CLASS_NAMES_KEY: ExecutionParameter(type=str),  # JSON; null: the data's
        executor.NODES_KEY: ExecutionParameter(type=str),  # JSON {role: node id}
        executor.SETTINGS_KEY: ExecutionParameter(type=str),  # JSON ReportSettings
    }
    INPUTS = {
        role: ChannelParameter(type=kind, optional=True) for role, kind in INPUT_TYPES.items()
    }
    OUTPUTS = {key: ChannelParameter(type=kind) for key, kind in OUTPUT_TYPES.items()}


class RunReport(base_component.BaseComponent):
    SPEC_CLASS = RunReportSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        channels: dict[str, types.BaseChannel],
        nodes: dict[str, str],
        pipeline_name: str,
        data: str,
        class_names: list[str] | None,
        settings: ReportSettings,
    ) -> None:
        super().__init__(
            spec=RunReportSpec(
                pipeline_name=pipeline_name,
                data=data,
                class_names=json.dumps(class_names),
                nodes=json.dumps(nodes, sort_keys=True),
                settings=json.dumps(dataclasses.asdict(settings), sort_keys=True),
                **{role: channel for role, channel in channels.items() if role in INPUT_TYPES},
                **{key: types.Channel(type=kind) for key, kind in OUTPUT_TYPES.items()},
            )
        )

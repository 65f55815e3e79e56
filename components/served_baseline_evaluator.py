"""ServedBaselineEvaluator: TFX's Evaluator, judging the candidate alone when nothing is served.

PushedModelResolver always emits a baseline artifact (a container step has fixed outputs),
empty when nothing is served. This executor drops an empty one, so TFX's own first-run rule
applies: without a baseline, change thresholds are ignored and value thresholds decide.
"""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types.standard_component_specs import BASELINE_MODEL_KEY

from components.pushed_model_resolver.executor import is_served


class Executor(evaluator_executor.Executor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        baseline = input_dict.get(BASELINE_MODEL_KEY)
        if baseline and not is_served(baseline[0]):
            input_dict = {
                key: value for key, value in input_dict.items() if key != BASELINE_MODEL_KEY
            }
        super().Do(input_dict, output_dict, exec_properties)


class ServedBaselineEvaluator(evaluator_component.Evaluator):
    """TFX's Evaluator, with the served model (if any) as its baseline."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

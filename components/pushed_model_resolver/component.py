"""PushedModelResolver: the served model, and the statistics of the data it was trained on.

One resolution serves the Trainer's warm start, the drift check and the Evaluator's
baseline. Unlike a TFX Resolver node, it is an ordinary container step, so it runs on
open-source Kubeflow Pipelines too.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.pushed_model_resolver import driver, executor


class PushedModelResolverSpec(ComponentSpec):
    PARAMETERS = {
        executor.SERVING_DIR_KEY: ExecutionParameter(type=str),
        executor.MODEL_NAME_KEY: ExecutionParameter(type=str),
        driver.SERVING_STATE_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {}
    OUTPUTS = {
        executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        executor.STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
    }


class PushedModelResolver(base_component.BaseComponent):
    """Resolves the latest complete version in <serving_dir>/<model_name>/.

    Output `model`: a snapshot of the served version (property `baseline_version`), or an
    empty artifact with `baseline_version` 0 when nothing is served. Output `statistics`:
    that version's training statistics as split `train`, or none (property `available` 0)
    when nothing is served or the version was pushed without them.
    """

    SPEC_CLASS = PushedModelResolverSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
    DRIVER_CLASS = driver.Driver

    def __init__(self, serving_dir: str, model_name: str) -> None:
        super().__init__(
            spec=PushedModelResolverSpec(
                serving_dir=serving_dir,
                model_name=model_name,
                model=types.Channel(type=standard_artifacts.Model),
                statistics=types.Channel(type=standard_artifacts.ExampleStatistics),
            )
        )

"""PushedModelResolver: the served model as a Model artifact, for the Evaluator's baseline."""

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
    INPUTS = {executor.CANDIDATE_KEY: ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class PushedModelResolver(base_component.BaseComponent):
    """Resolves the latest complete version in <serving_dir>/<model_name>/ as a Model.

    Unlike a TFX Resolver node, it is an ordinary container step, so it runs on open-source
    Kubeflow Pipelines too. Output `model`: a snapshot of the served version, or the
    candidate itself when nothing is served (property `baseline_version` is then 0).
    """

    SPEC_CLASS = PushedModelResolverSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)
    DRIVER_CLASS = driver.Driver

    def __init__(self, candidate: types.BaseChannel, serving_dir: str, model_name: str) -> None:
        super().__init__(
            spec=PushedModelResolverSpec(
                candidate=candidate,
                serving_dir=serving_dir,
                model_name=model_name,
                model=types.Channel(type=standard_artifacts.Model),
            )
        )

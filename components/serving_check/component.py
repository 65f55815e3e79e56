"""ServingCheck: TFX's InfraValidator for this stack, without Docker or a Kubernetes pod.

It runs the candidate in `alexnet-tfx serve` and writes TFX's `InfraBlessing`, with the
candidate and its TF Serving warm-up records inside (as InfraValidator's `make_warmup`
does), so the Pusher pushes exactly what was checked. On Kubeflow it is an ordinary
container step: the server runs inside that step's pod.
"""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.serving_check import executor


class ServingCheckSpec(ComponentSpec):
    PARAMETERS = {
        "model_name": ExecutionParameter(type=str),
        "image_feature": ExecutionParameter(type=str),
        "num_images": ExecutionParameter(type=int),
        "latency_budget_ms": ExecutionParameter(type=float),
        "ready_deadline_seconds": ExecutionParameter(type=float),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        # Given, a candidate the Evaluator did not bless is not started: nothing will push it.
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing, optional=True),
    }
    OUTPUTS = {"blessing": ChannelParameter(type=standard_artifacts.InfraBlessing)}


class ServingCheck(base_component.BaseComponent):
    """Blesses a candidate that the model server loads, answers like its signature, fast
    enough, and that refuses malformed requests."""

    SPEC_CLASS = ServingCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        examples: types.BaseChannel,
        model_name: str,
        image_feature: str,
        model_blessing: types.BaseChannel | None = None,
        num_images: int = 16,
        latency_budget_ms: float = 1000.0,
        ready_deadline_seconds: float = 120.0,
    ) -> None:
        super().__init__(
            spec=ServingCheckSpec(
                model=model,
                examples=examples,
                model_blessing=model_blessing,
                model_name=model_name,
                image_feature=image_feature,
                num_images=num_images,
                latency_budget_ms=float(latency_budget_ms),
                ready_deadline_seconds=float(ready_deadline_seconds),
                blessing=types.Channel(type=standard_artifacts.InfraBlessing),
            )
        )

"""AtomicPusher: TFX's Pusher with integer versions, atomic, duplicate-free pushes, and the
training statistics kept with each version.

TFX customizes a component by subclassing it (`custom_executor_spec` is deprecated). The
spec is the Pusher's, plus two optional inputs: the statistics of the data the model was
trained on, which the next run's drift check reads from the served version, and the
evaluation, whose accuracy the push record keeps (`alexnet-tfx versions` lists it).
"""

from __future__ import annotations

from tfx import types
from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter

from components.atomic_pusher import executor


class AtomicPusherSpec(standard_component_specs.PusherSpec):
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        executor.STATISTICS_KEY: ChannelParameter(
            type=standard_artifacts.ExampleStatistics, optional=True
        ),
        executor.EVALUATION_KEY: ChannelParameter(
            type=standard_artifacts.ModelEvaluation, optional=True
        ),
    }


class AtomicPusher(Pusher):
    """Pushes a model both checks blessed to <base_directory>/<next integer version>,
    atomically."""

    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        infra_blessing: types.BaseChannel,
        model_blessing: types.BaseChannel,
        push_destination: pusher_pb2.PushDestination,
        statistics: types.BaseChannel | None = None,
        evaluation: types.BaseChannel | None = None,
    ) -> None:
        # No `model`: TFX's Pusher then pushes the model inside the InfraBlessing, the
        # candidate exactly as the serving check ran it, warm-up records included.
        spec = AtomicPusherSpec(
            infra_blessing=infra_blessing,
            model_blessing=model_blessing,
            push_destination=push_destination,
            statistics=statistics,
            evaluation=evaluation,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
        )
        super(Pusher, self).__init__(spec=spec)

"""AtomicPusher: TFX's Pusher with integer versions, atomic, duplicate-free pushes, and the
training statistics kept with each version.

TFX customizes a component by subclassing it (`custom_executor_spec` is deprecated). The
spec is the Pusher's, plus one optional input: the statistics of the data the model was
trained on, which the next run's drift check reads from the served version.
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
    }


class AtomicPusher(Pusher):
    """Pushes a blessed model to <base_directory>/<next integer version>, atomically."""

    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        push_destination: pusher_pb2.PushDestination,
        statistics: types.BaseChannel | None = None,
    ) -> None:
        spec = AtomicPusherSpec(
            model=model,
            model_blessing=model_blessing,
            push_destination=push_destination,
            statistics=statistics,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel),
        )
        super(Pusher, self).__init__(spec=spec)

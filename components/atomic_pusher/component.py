"""AtomicPusher: TFX's Pusher with integer versions and atomic, duplicate-free pushes.

TFX customizes a component's executor by subclassing it (`custom_executor_spec` is
deprecated); the spec, inputs and outputs stay the Pusher's own.
"""

from __future__ import annotations

from tfx.components.pusher.component import Pusher
from tfx.dsl.components.base import executor_spec

from components.atomic_pusher import executor


class AtomicPusher(Pusher):
    """Pushes a blessed model to <base_directory>/<next integer version>, atomically."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

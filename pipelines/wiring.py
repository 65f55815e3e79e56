"""The channels the stages make, by artifact role (contract/roles.py), and the nodes in order.

The channels are the one declaration of the pipeline's artifacts: the run summary, the
runners and the tests find a node's id and output key through them, never by spelling
them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TypeVar

from tfx import v1 as tfx
from tfx.dsl.components.base.base_node import BaseNode

from pipelines.config import PipelineConfig
from pipelines.data_facts import DataFacts

NodeT = TypeVar("NodeT", bound=BaseNode)


@dataclasses.dataclass(frozen=True)
class ArtifactSource:
    """Where an artifact comes from: the producing node's id and its output key."""

    node_id: str
    key: str


@dataclasses.dataclass
class Wiring:
    """The nodes wired so far, in order, and the channels they made, by role."""

    components: list[BaseNode] = dataclasses.field(default_factory=list)
    examples: tfx.types.BaseChannel | None = None
    statistics: tfx.types.BaseChannel | None = None
    schema: tfx.types.BaseChannel | None = None
    anomalies: tfx.types.BaseChannel | None = None
    baseline_model: tfx.types.BaseChannel | None = None  # the served model, if any
    served_statistics: tfx.types.BaseChannel | None = None  # of its training data
    drift: tfx.types.BaseChannel | None = None
    drift_statistics: tfx.types.BaseChannel | None = None  # kept with a pushed version
    transform_graph: tfx.types.BaseChannel | None = None
    transformed_examples: tfx.types.BaseChannel | None = None  # only with materialize
    hyperparameters: tfx.types.BaseChannel | None = None  # the best trial's, with tune
    tuner_results: tfx.types.BaseChannel | None = None  # every trial's score and values
    model: tfx.types.BaseChannel | None = None
    evaluation: tfx.types.BaseChannel | None = None
    blessing: tfx.types.BaseChannel | None = None
    bulk_examples: tfx.types.BaseChannel | None = None  # with bulk_infer_data
    inference_result: tfx.types.BaseChannel | None = None  # the blessed model's predictions
    infra_blessing: tfx.types.BaseChannel | None = None  # with the candidate to push
    pushed_model: tfx.types.BaseChannel | None = None
    # Nodes that every node wired after them waits for (gates).
    gates: list[BaseNode] = dataclasses.field(default_factory=list)

    def add(self, node: NodeT) -> NodeT:
        node.add_upstream_nodes(self.gates)
        self.components.append(node)
        return node

    def sources(self) -> dict[str, ArtifactSource]:
        """Each artifact role wired so far, and the node output that carries it."""
        found = {}
        for field in dataclasses.fields(self):
            channel = getattr(self, field.name)
            if isinstance(channel, tfx.types.BaseChannel):
                found[field.name] = ArtifactSource(
                    channel.producer_component_id, channel.output_key
                )
        return found

    def node_ids(self) -> list[str]:
        return [node.id for node in self.components]


Stage = Callable[[Wiring, PipelineConfig, DataFacts], None]

"""The counters a finished Beam pipeline committed, by name: how the ExampleGens learn their
split and class counts from their own Beam jobs."""

from __future__ import annotations

from apache_beam.metrics import MetricsFilter
from apache_beam.runners.runner import PipelineResult


def committed_counters(result: PipelineResult, namespace: str) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(namespace))
    return {counter.key.metric.name: counter.committed for counter in query["counters"]}

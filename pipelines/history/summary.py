"""A local run's summary: its executions and artifacts read from the MLMD store."""

from __future__ import annotations

from components.run_report.summary import ComponentRun, RunSummary, summarize
from pipelines.history.lineage import RunLineage
from pipelines.wiring import ArtifactSource


def build_summary(
    lineage: RunLineage,
    sources: dict[str, ArtifactSource],
    node_ids: list[str],
    data_path: str,
    config_class_names: list[str] | None,
    wall_seconds: float,
) -> RunSummary:
    """The summary fields filled in so far, reading each artifact through its source.
    Components are listed in the pipeline's order (`node_ids`)."""
    found = {role: lineage.output(source.node_id, source.key) for role, source in sources.items()}
    summary = RunSummary(
        pipeline_name=lineage.pipeline_name,
        run_id=lineage.run_id,
        wall_seconds=round(wall_seconds, 3),
        components={
            node: ComponentRun(status=status, seconds=seconds)
            for node, (status, seconds) in sorted(
                lineage.statuses().items(),
                key=lambda item: node_ids.index(item[0]) if item[0] in node_ids else len(node_ids),
            )
        },
    )
    nodes = {role: source.node_id for role, source in sources.items()}
    return summarize(found, nodes, summary, data_path, config_class_names)

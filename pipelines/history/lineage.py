"""Reads a pipeline run's executions and their output artifacts from the MLMD store."""

from __future__ import annotations

import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

STATUS = {
    metadata_store_pb2.Execution.COMPLETE: "complete",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
}
RUN_CONTEXT = "pipeline_run"  # TFX's context types
NODE_CONTEXT = "node"
PIPELINE_CONTEXT = "pipeline"


class StoreUnreadable(ValueError):
    """The MLMD store is corrupt, truncated, or from an incompatible ML Metadata version."""


def open_store(metadata_path: str) -> metadata_store.MetadataStore:
    """The store, read-only; a missing or unreadable file is an error that says what to do."""
    if not os.path.exists(metadata_path):
        raise FileNotFoundError(
            f"No pipeline metadata at {metadata_path}; run the pipeline first or point "
            "--pipeline-root at its root."
        )
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = metadata_path
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    try:
        return metadata_store.MetadataStore(connection)
    except RuntimeError as error:  # how MLMD's SQLite source reports both
        raise StoreUnreadable(_unreadable(metadata_path, str(error))) from error


def _unreadable(metadata_path: str, error: str) -> str:
    root = os.path.dirname(metadata_path)
    if "database version" in error:  # "MLMD database version 11 is greater than library ..."
        reason = f"it was written by another ML Metadata version ({error.split('.')[0]})"
    else:  # "Error when executing query: file is not a database query: ..."
        detail = error.split("query:")[1] if "query:" in error else error
        reason = f"it is corrupt or truncated ({detail.strip()})"
    return (
        f"Cannot read the pipeline's metadata store {metadata_path}: {reason}. Move the "
        f"pipeline root aside (mv {root} {root}.old) and run again, which starts a new "
        "history; or pass another --output-root."
    )


class RunLineage:
    """The executions of one pipeline run and the artifacts they produced, by node id."""

    def __init__(
        self, store: metadata_store.MetadataStore, pipeline_name: str, run_id: str
    ) -> None:
        self.store = store
        self.pipeline_name = pipeline_name
        self.run_id = run_id
        context = store.get_context_by_type_and_name(RUN_CONTEXT, run_id)
        executions = store.get_executions_by_context(context.id) if context else []
        prefix = f"{pipeline_name}."
        self.executions: dict[str, metadata_store_pb2.Execution] = {}
        for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
            for ctx in store.get_contexts_by_execution(execution.id):
                if ctx.type == NODE_CONTEXT and ctx.name.startswith(prefix):
                    self.executions[ctx.name[len(prefix) :]] = execution

    def output(self, node_id: str, key: str) -> metadata_store_pb2.Artifact | None:
        """The first artifact the node's execution in this run wrote under `key`."""
        execution = self.executions.get(node_id)
        if execution is None:
            return None
        ids = [
            event.artifact_id
            for event in self.store.get_events_by_execution_ids([execution.id])
            if event.type == metadata_store_pb2.Event.OUTPUT
            and any(step.key == key for step in event.path.steps)
        ]
        artifacts = self.store.get_artifacts_by_id(ids)
        return artifacts[0] if artifacts else None

    def output_of_type(self, type_name: str) -> metadata_store_pb2.Artifact | None:
        """The run's one output artifact of an artifact type (for types one node makes)."""
        execution_ids = [execution.id for execution in self.executions.values()]
        ids = [
            event.artifact_id
            for event in self.store.get_events_by_execution_ids(execution_ids)
            if event.type == metadata_store_pb2.Event.OUTPUT
        ]
        found = [
            artifact
            for artifact in self.store.get_artifacts_by_id(ids)
            if artifact.type == type_name
        ]
        return found[0] if found else None

    def statuses(self) -> dict[str, tuple[str, float]]:
        """{node id: (status, seconds)} in the order the executions started."""
        return {
            node: (
                STATUS.get(execution.last_known_state, "unknown"),
                round(
                    (execution.last_update_time_since_epoch - execution.create_time_since_epoch)
                    / 1000,
                    3,
                ),
            )
            for node, execution in self.executions.items()
        }


def recorded_runs(
    store: metadata_store.MetadataStore,
) -> list[tuple[metadata_store_pb2.Context, RunLineage]]:
    """Every recorded run that has executions: its run context and lineage."""
    found = []
    for pipeline in store.get_contexts_by_type(PIPELINE_CONTEXT):
        for run in store.get_contexts_by_type(RUN_CONTEXT):
            lineage = RunLineage(store, pipeline.name, run.name)
            if lineage.executions:
                found.append((run, lineage))
    return found

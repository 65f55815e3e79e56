"""Runs the pipeline locally with LocalDagRunner or BeamDagRunner and writes its summary."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tfx import v1 as tfx
from tfx.dsl.compiler import compiler, constants
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
from tfx.orchestration.portable import partial_run_utils, runtime_parameter_utils
from tfx.proto.orchestration import pipeline_pb2

from components.run_report.report import write_report
from components.run_report.summary import ComponentRun, RunSummary
from modules import storage
from pipelines.config import PipelineConfig, new_run_id
from pipelines.data_facts import inspect_data
from pipelines.history.lineage import RunLineage, open_store
from pipelines.history.summary import build_summary
from pipelines.pipeline import create_pipeline, wire

ORCHESTRATORS = ("local", "beam")


class PipelineFailed(RuntimeError):
    """A component failed; the message names it and where its logs are."""

    def __init__(self, message: str, summary: RunSummary) -> None:
        super().__init__(message)
        self.summary = summary


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Copies every log record of the run into the run's folder."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def run_pipeline(
    config: PipelineConfig,
    to_component: str | None = None,
    orchestrator: str = "local",
    run_id: str | None = None,
) -> RunSummary:
    """Runs the pipeline (up to and including `to_component`); returns the run summary.
    The run's logs go to runs/<run_id>/pipeline.log."""
    if orchestrator not in ORCHESTRATORS:
        raise ValueError(f"orchestrator must be one of {ORCHESTRATORS}, got {orchestrator!r}.")
    if os.path.exists(config.metadata_path):
        open_store(config.metadata_path)  # a corrupt or incompatible store: a one-line error
    # An unreachable bucket fails here, before any training, not at the push.
    for path in (config.data_path, config.serving_path, config.bulk_infer_path):
        if path:
            storage.check_bucket(path)
    wiring = wire(config, inspect_data(config, read_remote=True))
    node_ids = wiring.node_ids()
    if to_component and to_component not in node_ids:
        raise ValueError(
            f"--to {to_component}: no such component; choose one of {', '.join(node_ids)}."
        )
    pipeline = create_pipeline(
        config,
        wiring,
        tfx.orchestration.metadata.sqlite_metadata_connection_config(config.metadata_path),
    )
    run_id = run_id or new_run_id()
    run_dir = Path(config.runs_path) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "pipeline.log"

    ir = compiler.Compiler().compile(pipeline)
    # Our own run id, so the MLMD run context, the run folder and the summary share it.
    runtime_parameter_utils.substitute_runtime_parameter(
        ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id}
    )
    run_options = None
    if to_component:
        run_options = pipeline_pb2.RunOptions(
            partial_run=pipeline_pb2.PartialRun(
                to_nodes=[to_component],
                # TFX's default for partial runs: reuse the latest run's artifacts.
                snapshot_settings=partial_run_utils.latest_pipeline_snapshot_settings(),
            )
        )
    runner = tfx.orchestration.LocalDagRunner() if orchestrator == "local" else BeamDagRunner()

    started = time.monotonic()
    error: BaseException | None = None
    with _log_to(log_path):
        try:
            runner.run_with_ir(ir, run_options=run_options)
        except Exception as raised:  # noqa: BLE001 (reported with the failing component)
            logging.exception("Pipeline run %s failed", run_id)
            error = raised
    summary = build_summary(
        RunLineage(open_store(config.metadata_path), config.pipeline_name, run_id),
        wiring.sources(),
        node_ids,
        config.data_path,
        config.class_names,
        time.monotonic() - started,
    )
    summary.log_path = str(log_path)
    summary.report_path = write_report(summary, str(run_dir / "report.html"), config.report)
    if error is not None:
        failed = _failed_component(summary, node_ids, to_component)
        summary.components[failed] = ComponentRun(status="failed", seconds=None)
    (run_dir / "summary.json").write_text(summary.model_dump_json(indent=2) + "\n")
    if error is not None:
        raise PipelineFailed(
            f"Component {failed} failed: {_explain(error, config)}\nFull logs: {log_path}\n"
            f"Summary: {run_dir / 'summary.json'}",
            summary,
        ) from error
    return summary


def _explain(error: BaseException, config: PipelineConfig) -> str:
    """The error, or for a full disk, what to do about it: Beam and TensorFlow wrap the
    OSError in errors of their own, several screens long."""
    chain = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    text = " ".join(str(item) for item in chain)
    if any(getattr(item, "errno", None) == errno.ENOSPC for item in chain) or (
        "No space left on device" in text
    ):
        return (
            f"no space left on the disk under {config.pipeline_root_path}. Free some space, "
            "then run the same command again: completed components are reused."
        )
    return str(chain[0])


def _failed_component(summary: RunSummary, node_ids: list[str], to_component: str | None) -> str:
    """The failed execution, or, when it failed before MLMD saw it, the first node not run."""
    for name, info in summary.components.items():
        if info.status not in ("complete", "cached"):
            return name
    last = node_ids.index(to_component) + 1 if to_component else len(node_ids)
    return next((node for node in node_ids[:last] if node not in summary.components), node_ids[-1])

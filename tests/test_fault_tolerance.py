"""Fault drills: each fault happens for real (a signal, a killed process, a full or
read-only filesystem, a damaged store, racing processes), and afterwards nothing is lost:
every pushed version loads, and the store lists every completed execution."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import storage_drill
from conftest import run_cli
from fault_injection import PIPELINE_MODULES, killed_push, push_many, run_command
from forked import forkserver
from trainer_harness import has_checkpoint

from serving import layout

MODEL = "alexnet"
# Long enough (about 1 s with the tiny preset) that the signal lands inside an epoch.
STEPS_PER_EPOCH = "200"


@pytest.fixture(scope="module")
def context():
    return forkserver(PIPELINE_MODULES)


def _summary(root: Path, run_id: str | None = None) -> dict:
    runs = sorted((root / "runs").iterdir()) if run_id is None else [root / "runs" / run_id]
    return json.loads((runs[-1] / "summary.json").read_text())


def _loads(version_dir: Path) -> bool:
    """Whether the version is a SavedModel with the serving signature."""
    import tensorflow as tf

    return "serving_default" in tf.saved_model.load(str(version_dir)).signatures


@pytest.fixture(scope="module")
def drill(tmp_path_factory, demo_dir, node_id, context):
    """One output root through three runs of the same command, whose serving directory's
    parent (a volume, say) is missing at first:
    1. interrupted with SIGINT (Ctrl-C) once the Trainer has a checkpoint;
    2. run again: it resumes the Trainer, and the Pusher fails on the missing parent;
    3. the parent made, and a push killed half-way left behind; run again: it pushes."""
    root = tmp_path_factory.mktemp("drill")
    serving = root / "volume" / "serving"
    command = [
        "run", "--data", str(demo_dir), "--preset", "tiny", "--output-root", str(root),
        "--serving-dir", str(serving), "--epochs", "3", "--steps-per-epoch", STEPS_PER_EPOCH,
    ]  # fmt: skip
    log = root / "interrupted.log"
    process = context.Process(target=run_command, args=(command, str(log)))
    process.start()
    deadline = time.monotonic() + 600
    while not has_checkpoint(root / "pipeline_root" / node_id("model")):
        assert process.is_alive(), log.read_text()[-3000:]
        assert time.monotonic() < deadline, "the Trainer made no checkpoint in time"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGINT)
    process.join(120)
    interrupted = {"code": process.exitcode, "log": log.read_text()}

    resumed = run_cli(*command)
    resumed_summary = _summary(root)

    (root / "volume").mkdir()
    model_dir = Path(resumed_summary["lineage"]["model"]) / "Format-Serving"
    killer = context.Process(target=killed_push, args=(str(model_dir), str(serving / MODEL)))
    killer.start()
    killer.join(120)
    left_behind = [p.name for p in (serving / MODEL).iterdir()]

    pushed = run_cli(*command)
    return {
        "root": root,
        "serving": serving / MODEL,
        "interrupted": interrupted,
        "resumed": resumed,
        "resumed_summary": resumed_summary,
        "killer_exitcode": killer.exitcode,
        "left_behind": left_behind,
        "pushed": pushed,
        "pushed_summary": _summary(root),
    }


def test_ctrl_c_says_how_to_resume_in_one_line(drill):
    interrupted = drill["interrupted"]
    assert interrupted["code"] == 130
    hint = [line for line in interrupted["log"].splitlines() if "To resume" in line]
    assert hint == [
        "Interrupted. To resume, run the same command again: finished components are reused "
        "and the Trainer continues after its last finished epoch."
    ]
    assert "Traceback" not in interrupted["log"]


def test_the_rerun_reuses_finished_components_and_resumes_the_trainer(drill, node_id):
    summary = drill["resumed_summary"]
    statuses = summary["components"]
    for role in ("examples", "statistics", "schema", "transform_graph"):
        assert statuses[node_id(role)]["status"] == "cached", statuses
    assert statuses[node_id("model")]["status"] == "complete"
    training = summary["training"]
    # Killed after epoch k (k >= 1 finished): this execution trained epochs k..2 only.
    assert 1 <= training["resumed_from_epoch"] <= 2
    assert training["epochs"] == 3
    history = json.loads(Path(training["history_path"]).read_text())
    assert None not in history["loss"] and len(history["val_accuracy"]) == 3
    # The finished training removed its backup.
    assert not list((drill["root"] / "pipeline_root" / node_id("model") / "backup").iterdir())


def test_a_missing_serving_parent_fails_the_pusher_naming_the_path(drill, node_id):
    resumed = drill["resumed"]
    assert resumed.returncode == 1
    message = resumed.stderr.strip().splitlines()[0]
    volume = drill["root"] / "volume"
    assert f"Component {node_id('pushed_model')} failed: Cannot push to {drill['serving']}" in (
        message
    )
    assert f"parent {volume} does not exist" in message
    assert "run the same command again" in message
    # The model stays in the pipeline root.
    model = Path(drill["resumed_summary"]["lineage"]["model"])
    assert (model / "Format-Serving" / "saved_model.pb").exists()


def test_an_interrupted_push_leaves_no_visible_version_and_is_cleaned_up(drill):
    assert drill["killer_exitcode"] == -signal.SIGKILL
    [staging] = drill["left_behind"]
    assert staging.startswith(layout.STAGING_PREFIX)
    # The next run pushed version 1 and removed the abandoned staging folder.
    assert sorted(p.name for p in drill["serving"].iterdir()) == ["1"]


def test_the_later_run_pushes_the_kept_model(drill, node_id):
    pushed = drill["pushed"]
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    summary = drill["pushed_summary"]
    assert summary["components"][node_id("model")]["status"] == "cached"
    assert summary["pushed"] is True and summary["pushed_version"] == 1
    assert layout.fingerprint(str(drill["serving"] / "1")) == layout.fingerprint(
        str(Path(summary["lineage"]["model"]) / "Format-Serving")
    )
    assert _loads(drill["serving"] / "1")


def test_the_store_lists_every_completed_execution(drill):
    from ml_metadata.proto import metadata_store_pb2

    from pipelines.history.lineage import open_store

    store = open_store(str(drill["root"] / "pipeline_root" / "metadata.sqlite"))
    executions = store.get_executions()
    completed = [
        e for e in executions if e.last_known_state == metadata_store_pb2.Execution.COMPLETE
    ]
    # Every run's folder has the summary of a run the store knows, and the store still has
    # each completed execution with its outputs.
    for execution in completed:
        events = store.get_events_by_execution_ids([execution.id])
        outputs = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
        for artifact in store.get_artifacts_by_id(outputs):
            assert Path(artifact.uri).exists(), artifact.uri
    # Each component a run's summary calls complete is a complete execution in the store.
    from pipelines.history.lineage import RunLineage

    for path in (drill["root"] / "runs").glob("*/summary.json"):
        summary = json.loads(path.read_text())
        lineage = RunLineage(store, summary["pipeline_name"], summary["run_id"])
        for node, run in summary["components"].items():
            if run["status"] == "complete":
                assert lineage.executions[node].last_known_state == (
                    metadata_store_pb2.Execution.COMPLETE
                ), node
    listed = run_cli("runs", "--output-root", drill["root"])
    assert listed.returncode == 0
    for summary in (drill["resumed_summary"], drill["pushed_summary"]):
        assert summary["run_id"] in listed.stdout


@pytest.mark.parametrize("damage", ["truncated", "garbage", "newer", "older"])
def test_a_damaged_store_is_a_one_line_error_that_says_what_to_do(
    drill, tmp_path, damage, demo_dir
):
    import sqlite3

    root = tmp_path / "outputs"
    store = root / "pipeline_root" / "metadata.sqlite"
    store.parent.mkdir(parents=True)
    original = (drill["root"] / "pipeline_root" / "metadata.sqlite").read_bytes()
    if damage == "truncated":
        store.write_bytes(original[: len(original) // 3])
    elif damage == "garbage":
        store.write_bytes(b"not a database" * 100)
    else:  # written by a newer or an older ML Metadata
        shutil.copy(drill["root"] / "pipeline_root" / "metadata.sqlite", store)
        change = "+ 1" if damage == "newer" else "- 1"
        with sqlite3.connect(store) as connection:
            connection.execute(f"UPDATE MLMDEnv SET schema_version = schema_version {change}")
    for command in (
        ["runs", "--output-root", root],
        ["run", "--data", demo_dir, "--preset", "tiny", "--output-root", root],
    ):
        result = run_cli(*command)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert f"Cannot read the pipeline's metadata store {store}" in lines[0]
        assert f"mv {store.parent} {store.parent}.old" in lines[0]
        damaged = damage in ("truncated", "garbage")
        expected = "corrupt or truncated" if damaged else "another ML Metadata version"
        assert expected in lines[0]
    # Nothing was overwritten.
    assert store.stat().st_size > 0


def test_racing_pushers_never_overwrite_each_other(tmp_path, context):
    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"model")
    (model / "variables").mkdir()
    (model / "variables" / "variables.index").write_bytes(b"index")
    base = tmp_path / "serving" / MODEL
    pushers, pushes = 3, 4
    barrier, results = context.Barrier(pushers), context.Queue()
    processes = [
        context.Process(
            target=push_many, args=(str(model), str(base), pusher, pushes, barrier, results)
        )
        for pusher in range(pushers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    pushed = [results.get(timeout=10) for _ in range(pushers * pushes)]
    versions = sorted(version for _, _, version in pushed)
    assert versions == list(range(1, pushers * pushes + 1))
    for pusher, index, version in pushed:
        assert (base / str(version) / "marker.txt").read_text() == f"{pusher}-{index}"
    assert sorted(p.name for p in base.iterdir()) == sorted(str(v) for v in versions)


def test_two_runs_at_once_on_one_output_root(drill, tmp_path, context, demo_dir):
    """Both finish; `runs` lists both; versions stay consecutive with no partial folder."""
    root = drill["root"]
    tolerant = tmp_path / "tolerant.yaml"
    tolerant.write_text("regression_epsilon: 1.0\n")  # the candidates need not beat v1
    command = [
        "run", "--data", str(demo_dir), "--preset", "tiny",
        "--output-root", str(root), "--serving-dir", str(drill["serving"].parent),
        "--epochs", "1", "--config", str(tolerant),
    ]  # fmt: skip
    logs = [tmp_path / f"run-{n}.log" for n in range(2)]
    processes = [context.Process(target=run_command, args=(command, str(log))) for log in logs]
    for process in processes:
        process.start()
    for process, log in zip(processes, logs, strict=True):
        process.join(900)
        assert process.exitcode == 0, log.read_text()[-3000:]
    run_ids = [
        next(line for line in log.read_text().splitlines() if line.startswith("Run ")).split()[1]
        for log in logs
    ]
    summaries = [_summary(root, run_id) for run_id in run_ids]
    listed = run_cli("runs", "--output-root", root)
    assert all(run_id in listed.stdout for run_id in run_ids)
    versions = layout.complete_versions(str(drill["serving"]))
    assert versions == list(range(1, len(versions) + 1))
    assert sorted(p.name for p in drill["serving"].iterdir()) == sorted(str(v) for v in versions)
    pushed = [s["pushed_version"] for s in summaries if s["pushed"]]
    assert len(set(pushed)) == len(pushed) and set(pushed) <= set(versions[1:])
    for version in versions:
        assert _loads(drill["serving"] / str(version))


def test_full_disks_and_a_read_only_serving_dir(tmp_path, demo_dir, node_id, context):
    """Real small filesystems (tmpfs, a read-only bind mount) in a private mount namespace."""
    result_path = tmp_path / "result.json"
    drill = context.Process(
        target=storage_drill.main,
        args=(str(demo_dir), str(tmp_path / "outputs"), node_id("examples"),
              node_id("transform_graph"), str(result_path)),
    )  # fmt: skip
    drill.start()
    drill.join(900)
    assert drill.exitcode == 0
    steps = json.loads(result_path.read_text())
    if "unsupported" in steps:
        pytest.skip(f"no private mount namespace here for tmpfs mounts: {steps['unsupported']}")
    root = tmp_path / "outputs" / "pipeline_root"
    for step, node in (("both_full", "examples"), ("transform_full", "transform_graph")):
        assert steps[step]["code"] == 1
        error = steps[step]["stderr"].strip().splitlines()[0]
        assert error == (
            f"Error: Component {node_id(node)} failed: no space left on the disk under {root}. "
            "Free some space, then run the same command again: completed components are reused."
        )
    assert steps["freed"]["code"] == 0, steps["freed"]["stderr"][-3000:]
    assert f"{node_id('examples')}" in steps["freed"]["stdout"]
    read_only = steps["read_only"]
    serving = tmp_path / "outputs" / "read-only" / "serving" / MODEL
    assert read_only["type"] == "PermissionError"
    assert read_only["error"].startswith(f"Cannot push to {serving}: ")
    assert "Read-only file system" in read_only["error"]

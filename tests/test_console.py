"""The console of `alexnet-tfx run`: a line per component and the Trainer's progress, and
nothing from TensorFlow, absl, Beam, TFMA or CUDA probing, which go to pipeline.log."""

import io
import logging
import re
import subprocess

import pytest
from conftest import run_cli

from contract.progress import PROGRESS_LOGGER, TrainingProgress
from pipelines import console

OURS = [
    r"Run \S+ of alexnet; its logs: \S+pipeline\.log",
    r"  \S+ +(complete|cached) +\d+\.\d s",
    r"  Trainer +epoch \d+/\d+  step \d+/\d+  [\d.]+ images/s  loss [\d.]+( +eval accuracy [\d.]+)?"
    r"  ETA \d+:\d\d",
    r"Run \S+ of alexnet \([\d.]+ s\)",
    r"(Classes|Examples|Training|Warm start|Eval accuracy|Calibration|Unknown images|Blessed"
    r"|Serving check|Pushed|Anomalies|Summary|Report|Serve it): .*",
]
LIBRARIES = re.compile(r"WARNING|I0000|E0000|W0000|absl|tensorflow|Deprecat|cuInit|oneDNN|Beam")


@pytest.fixture(scope="module")
def quiet_run(first_run):
    """The first whole tiny run, in a process of its own, its output captured as a CI log
    would be, and its log file."""
    summary, result = first_run
    return result, open(summary["log_path"]).read()


def test_the_console_shows_only_progress_and_results(quiet_run):
    result, _ = quiet_run
    lines = (result.stdout + result.stderr).splitlines()
    strays = [line for line in lines if not any(re.fullmatch(p, line) for p in OURS)]
    assert strays == []
    assert not [line for line in lines if LIBRARIES.search(line)]
    assert sum(bool(re.fullmatch(OURS[1], line)) for line in lines) == 11  # every component
    assert any(line.startswith("  Trainer ") and "epoch 4/4" in line for line in lines)
    assert len(lines) <= 40


def test_the_log_file_has_what_the_libraries_said(quiet_run):
    _, log = quiet_run
    assert "Component ImageFolderExampleGen is running." in log  # absl, from TFX's runner
    assert "oneDNN custom operations" in log or "cuInit" in log  # TensorFlow's native logs
    assert "WARNING absl: ArtifactQuery.property_predicate is not supported" in log
    assert "WARNING tensorflow: From " in log  # TensorFlow's deprecation notices
    assert "Trainer: epoch 3 done" in log


def test_verbose_shows_the_libraries_on_the_console_too(tmp_path, demo_dir, node_id):
    result = run_cli(
        "run", "--data", demo_dir, "--preset", "tiny", "--output-root", tmp_path,
        "--to", node_id("examples"), "-v",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Component {node_id('examples')} is running." in result.stderr
    log = next(tmp_path.glob("runs/*/pipeline.log")).read_text()
    assert f"Component {node_id('examples')} is running." in log


def _progress(step, done=False):
    return TrainingProgress(1, 2, step, 40, 12.5, 0.5, 75.0, done, 0.9 if done else None)


def _render(progress_steps, interactive, clock, monkeypatch):
    stream = io.StringIO()
    handler = console.RunConsole(stream, interactive)
    handler.emit(logging.makeLogRecord({"msg": "Component %s is running.", "args": ("Trainer",)}))
    times = iter(clock)
    monkeypatch.setattr(console.time, "monotonic", lambda: next(times))
    logger = logging.getLogger(PROGRESS_LOGGER)
    logger.addHandler(handler)
    try:
        for progress in progress_steps:
            logger.info("progress", extra={"progress": progress})
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_on_a_terminal_progress_is_one_live_bar_per_epoch(monkeypatch):
    shown = _render(
        [_progress(10), _progress(20), _progress(40, done=True)], True, [0, 1, 2, 3, 4], monkeypatch
    )
    assert shown.count("\r") == 3 and shown.count("\n") == 1  # the done line replaces the bar
    assert "[##########..........]" in shown  # 20 of 40 steps
    assert shown.rstrip(" \n").endswith("eval accuracy 0.900  ETA 1:15")


def test_in_a_ci_log_progress_lines_are_at_least_15_seconds_apart(monkeypatch):
    steps = [_progress(step) for step in range(1, 40)] + [_progress(40, done=True)]
    clock = [second * 1.0 for second in range(0, 400, 5)]  # a step every 5 s
    shown = _render(steps, False, clock, monkeypatch).splitlines()
    assert "\r" not in "".join(shown)
    assert len(shown) <= console.LINES_PER_EPOCH
    assert shown[-1].startswith("  Trainer") and "step 40/40" in shown[-1]


def test_versions_and_rollback_print_only_their_answer(tmp_path):
    """TensorFlow's native start-up lines stay off the console for these commands too."""
    for command in (["versions"], ["rollback"]):
        result = subprocess.run(
            ["alexnet-tfx", *command, "--serving-dir", tmp_path], capture_output=True, text=True
        )
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert len(lines) == 1, lines
        assert not LIBRARIES.search(lines[0])
    assert lines == [
        f"Error: nothing to roll back: no version is pushed under {tmp_path / 'alexnet'}"
    ]

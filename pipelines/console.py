"""What `alexnet-tfx run` shows while it runs: a line per component as it finishes, with its
status and time, and the Trainer's progress. Everything the libraries print (TensorFlow's
and CUDA's native logs, absl, Beam, TFMA, Python warnings) goes to the run's pipeline.log.

TFX 1.21's local runners have no per-component callbacks; they log `Component %s is
running.` and `... is finished.` (LocalDagRunner) or `node %s ...` (BeamDagRunner), and the
launcher logs whether it used a cached execution. The console follows those records.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from absl import logging as absl_logging

from contract.progress import PROGRESS_LOGGER, ScoringProgress, TrainingProgress
from modules.native_output import native_output_to

_STARTED = ("Component %s is running.", "node %s is running.")
_FINISHED = ("Component %s is finished.", "node %s is finished.")
_CACHED = "A cached execution %d is used."
# Without a terminal (CI logs), progress lines come at most this often, and at most this
# many per epoch.
LINE_SECONDS = 15.0
LINES_PER_EPOCH = 4
BAR_WIDTH = 20


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class RunConsole(logging.Handler):
    """Renders component and training progress records on a terminal or in a CI log."""

    def __init__(self, stream: TextIO, interactive: bool) -> None:
        super().__init__(logging.INFO)
        self.stream = stream
        self.interactive = interactive
        self._started: dict[str, float] = {}
        self._cached: set[str] = set()
        self._running: str | None = None
        self._last_line = 0.0
        self._lines_this_epoch = 0
        self._live_width = 0  # of the live bar on the terminal's last line; 0: none

    def _line(self, text: str) -> None:
        """A finished line; on a terminal it takes the live bar's place."""
        if self._live_width:
            text = "\r" + text.ljust(self._live_width)
        self._live_width = 0
        self.stream.write(text + "\n")
        self.stream.flush()

    def _live(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._live_width))
        self._live_width = len(text)
        self.stream.flush()

    def end_line(self) -> None:
        """Ends a live bar's line, so what follows starts on a line of its own."""
        if self._live_width:
            self.stream.write("\n")
            self._live_width = 0

    def emit(self, record: logging.LogRecord) -> None:
        progress = getattr(record, "progress", None)
        if isinstance(progress, TrainingProgress):
            self._progress(progress)
        elif isinstance(progress, ScoringProgress):
            self._scoring(progress)
        elif record.msg in _STARTED:
            self._running = record.args[0]
            self._started[self._running] = time.monotonic()
        elif record.msg == _CACHED and self._running:
            self._cached.add(self._running)
        elif record.msg in _FINISHED:
            node = record.args[0]
            status = "cached" if node in self._cached else "complete"
            seconds = time.monotonic() - self._started.get(node, time.monotonic())
            self._line(f"  {node:<24}{status:<10}{seconds:.1f} s")

    def _progress(self, progress: TrainingProgress) -> None:
        loss = f"loss {progress.loss:.4f}" if progress.loss is not None else ""
        # The node that reports progress is the one running (the Tuner's trials, the Trainer).
        node = self._running or ""
        if progress.trial:
            stage = "trial {}/{}".format(*progress.trial)
        else:
            stage = f"epoch {progress.epoch}/{progress.epochs}"
        text = (
            f"  {node:<24}{stage}  step {progress.step}/{progress.steps}  "
            f"{progress.images_per_second:.1f} images/s  {loss}"
        )
        if progress.done:
            accuracy = progress.val_accuracy
            text += f"  eval accuracy {accuracy:.3f}" if accuracy is not None else ""
            self._lines_this_epoch = 0
            self._last_line = time.monotonic()
            self._line(text + f"  ETA {_duration(progress.eta_seconds)}")
        elif self.interactive:
            filled = round(BAR_WIDTH * progress.step / progress.steps)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self._live(f"{text}  [{bar}]  ETA {_duration(progress.eta_seconds)}")
        elif (
            time.monotonic() - self._last_line >= LINE_SECONDS
            and self._lines_this_epoch < LINES_PER_EPOCH - 1
            and progress.step >= (self._lines_this_epoch + 1) * progress.steps / LINES_PER_EPOCH
        ):
            self._lines_this_epoch += 1
            self._last_line = time.monotonic()
            self._line(f"{text}  ETA {_duration(progress.eta_seconds)}")

    def _scoring(self, progress: ScoringProgress) -> None:
        of = f"/{progress.total}" if progress.total else ""
        text = f"  {progress.done}{of} files scored  {progress.images_per_second:.1f} files/s"
        if progress.total and progress.images_per_second > 0:
            left = max(0, progress.total - progress.done) / progress.images_per_second
            text += f"  ETA {_duration(left)}"
        if progress.finished:
            self._line(text)
        elif self.interactive:
            self._live(text)
        elif progress.done and time.monotonic() - self._last_line >= LINE_SECONDS:
            self._last_line = time.monotonic()
            self._line(text)


def _terminal() -> TextIO:
    """A stream to the terminal that stays there when stdout's descriptor is redirected."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return sys.stdout  # a test runner's buffer: nothing will redirect it
    return os.fdopen(os.dup(descriptor), "w", buffering=1)


@contextlib.contextmanager
def run_console(log_path: Path, verbose: bool) -> Iterator[None]:
    """Progress on the console for the duration of a run; with `verbose`, the libraries'
    output stays on the console too (it is in pipeline.log either way)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    stream = _terminal()
    console = RunConsole(stream, interactive=stream.isatty())
    root = logging.getLogger()
    # The runners log each component at INFO, which absl drops by default.
    previous = (root.level, absl_logging.get_verbosity())
    root.setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.INFO)
    logging.captureWarnings(True)
    root.addHandler(console)
    logging.getLogger(PROGRESS_LOGGER).addHandler(console)
    muted = [] if verbose else [h for h in root.handlers if _to_terminal(h)]
    for handler in muted:
        root.removeHandler(handler)
    echo = logging.StreamHandler(sys.stderr) if verbose else None
    if echo:
        echo.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(echo)
    redirect = contextlib.nullcontext() if verbose else native_output_to(log_path)
    try:
        with redirect:
            yield
    finally:
        for handler in muted:
            root.addHandler(handler)
        if echo:
            root.removeHandler(echo)
        root.removeHandler(console)
        logging.getLogger(PROGRESS_LOGGER).removeHandler(console)
        logging.captureWarnings(False)
        root.setLevel(previous[0])
        absl_logging.set_verbosity(previous[1])
        console.end_line()
        if stream is not sys.stdout:
            stream.close()


def _to_terminal(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and getattr(handler, "stream", None) in (
        sys.stdout,
        sys.stderr,
    )

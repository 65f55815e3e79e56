"""A Keras callback that reports training progress (contract/progress.py) to the console."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import tf_keras as keras

from contract.progress import PROGRESS_LOGGER, TrainingProgress

INTERVAL_SECONDS = 1.0


class ProgressReport(keras.callbacks.Callback):
    """Step, images/s, loss and ETA, at most once a second and at each epoch's end."""

    def __init__(self, batch_size: int, trial: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.trial = trial
        self._logger = logging.getLogger(PROGRESS_LOGGER)
        self._epoch = 0
        self._epoch_started = self._last = 0.0
        self._seconds_per_step: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch
        self._epoch_started = self._last = time.monotonic()

    def _report(self, step: int, logs: dict | None, done: bool) -> None:
        elapsed = time.monotonic() - self._epoch_started
        steps, epochs = self.params["steps"], self.params["epochs"]
        per_step = self._seconds_per_step or elapsed / max(step, 1)
        remaining = (steps - step) + (epochs - self._epoch - 1) * steps
        logs = logs or {}
        self._logger.info(
            "epoch %d/%d step %d/%d",
            self._epoch + 1,
            epochs,
            step,
            steps,
            extra={
                "progress": TrainingProgress(
                    epoch=self._epoch + 1,
                    epochs=epochs,
                    step=step,
                    steps=steps,
                    images_per_second=step * self.batch_size / max(elapsed, 1e-9),
                    loss=logs.get("loss"),
                    eta_seconds=remaining * per_step,
                    done=done,
                    val_accuracy=logs.get("val_accuracy"),
                    trial=self.trial,
                )
            },
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        if now - self._last >= INTERVAL_SECONDS:
            self._last = now
            self._report(batch + 1, logs, done=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        # Later epochs run without tracing and cache filling: they predict the ETA best.
        self._seconds_per_step = (time.monotonic() - self._epoch_started) / self.params["steps"]
        self._report(self.params["steps"], logs, done=True)


class ProgressFile(logging.Handler):
    """Appends each progress record to a file as a JSON line: the chief replica of a
    multi-worker training tells its launcher (components/multi_worker_trainer/)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        progress = getattr(record, "progress", None)
        if progress is not None:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(dataclasses.asdict(progress)) + "\n")

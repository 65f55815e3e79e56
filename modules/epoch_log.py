"""A record of each finished epoch that survives restarts (JSON lines in the backup)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import tensorflow as tf
import tf_keras as keras

EPOCH_LOG = "epochs.jsonl"


class EpochLog(keras.callbacks.Callback):
    """Appends each finished epoch to a JSON-lines file, which survives restarts, and notes
    the first epoch this execution trains (0 unless it resumed a backup)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.first_epoch: int | None = None
        self._started = 0.0
        self._train_seconds: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
            if epoch:
                logging.info("Trainer: resumed from its backup at epoch %d", epoch)
        self._started = time.perf_counter()
        self._train_seconds = None
        logging.info("Trainer: epoch %d starting", epoch)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._train_seconds = time.perf_counter() - self._started

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._started
        record = {
            "epoch": epoch,
            "seconds": seconds,
            "train_seconds": self._train_seconds or seconds,
            **{key: float(value) for key, value in (logs or {}).items()},
        }
        with tf.io.gfile.GFile(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        logging.info("Trainer: epoch %d done: %s", epoch, json.dumps(record))


def read_epoch_log(path: str) -> list[dict[str, Any]]:
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    # A restart re-runs an interrupted epoch: keep the last record of each epoch.
    return sorted(
        {record["epoch"]: record for record in records}.values(), key=lambda record: record["epoch"]
    )

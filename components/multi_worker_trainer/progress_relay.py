"""The chief replica's training progress, relayed to the launcher's console.

The chief appends each progress record (contract/progress.py) to a file as a JSON line
(modules/progress.py, `ProgressFile`); the launcher re-logs each new line to
PROGRESS_LOGGER while it waits for the job, as if the training ran in its own process.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from types import TracebackType

from contract.progress import PROGRESS_LOGGER, TrainingProgress


class ProgressRelay:
    def __init__(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        handle, self.path = tempfile.mkstemp(prefix="progress-", suffix=".jsonl", dir=folder)
        os.close(handle)
        self._offset = 0
        self._logger = logging.getLogger(PROGRESS_LOGGER)

    def forward(self) -> None:
        """Logs every complete line written since the last call."""
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode().splitlines():
            progress = TrainingProgress(**json.loads(line))
            self._logger.info(
                "epoch %d/%d", progress.epoch, progress.epochs, extra={"progress": progress}
            )

    def __enter__(self) -> ProgressRelay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        os.remove(self.path)

"""A sample of served images with their predictions, for review and the next span.

Each sampled image is written as a file, with one JSON line in `requests.jsonl`: the file,
the predicted class and score, the model version and the time. Writing happens on a
background thread; the request path only draws a random number and, for a sampled
request, puts it on a bounded queue (when the queue is full the sample is skipped). The
log stops, and says so once, when it reaches its size limit or the disk is full; requests
are never failed by it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import queue
import random
import threading
import uuid
from collections.abc import Sequence

from contract.prediction import Prediction, record

logger = logging.getLogger(__name__)

INDEX_FILE = "requests.jsonl"
# The formats the model's decoder reads, by their first bytes.
_SIGNATURES = {b"\xff\xd8": "jpg", b"\x89PNG": "png", b"GIF8": "gif", b"BM": "bmp"}


def image_extension(image: bytes) -> str:
    return next((ext for magic, ext in _SIGNATURES.items() if image.startswith(magic)), "bin")


def _folder_bytes(path: str) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(path) if entry.is_file())


class RequestLog:
    """Samples (image, prediction) pairs into `directory`, within `max_bytes` on disk."""

    def __init__(self, directory: str, sample: float, max_bytes: int, queue_size: int = 256):
        if not 0 < sample <= 1:
            raise ValueError(f"--log-sample: must be in (0, 1], got {sample}")
        try:
            os.makedirs(directory, exist_ok=True)
            probe = os.path.join(directory, f".write-test-{uuid.uuid4().hex}")
            with open(probe, "w") as handle:
                handle.write("ok")
            os.remove(probe)
        except OSError as error:
            raise ValueError(
                f"--log-requests {directory}: cannot write there ({error.strerror}); pass a "
                "folder this user can write to"
            ) from None
        self.directory = directory
        self.sample = sample
        self.max_bytes = max_bytes
        self.written_bytes = _folder_bytes(directory)
        self.stopped_reason: str | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._write_loop, name="request-log", daemon=True)
        self._thread.start()

    def submit(self, images: Sequence[bytes], predictions: Sequence[Prediction]) -> None:
        """On the request path: cheap, never blocks, never raises."""
        if self.stopped_reason is not None:
            return
        for image, prediction in zip(images, predictions, strict=True):
            if random.random() < self.sample:
                try:
                    self._queue.put_nowait((image, prediction, time_now()))
                except queue.Full:
                    pass  # a sample, not a record: skipping one under load is fine

    def close(self, timeout: float = 10) -> None:
        """Writes what is queued, then stops the writer."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _write_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.stopped_reason is None:
                self._write(*item)

    def _write(self, image: bytes, prediction: Prediction, when: str) -> None:
        name = f"{when.replace(':', '')}-{uuid.uuid4().hex[:8]}.{image_extension(image)}"
        line = json.dumps(
            {
                "file": name,
                **record(prediction),
                "model_version": prediction.model_version,
                "time": when,
            }
        )
        size = len(image) + len(line) + 1
        if self.written_bytes + size > self.max_bytes:
            self._stop(f"it reached --log-max-mb ({self.max_bytes / 2**20:.3g} MB)")
            return
        path = os.path.join(self.directory, name)
        try:
            with open(path, "wb") as handle:
                handle.write(image)
            with open(os.path.join(self.directory, INDEX_FILE), "a") as handle:
                handle.write(line + "\n")
        except OSError as error:  # e.g. ENOSPC: the disk is full
            with contextlib.suppress(OSError):
                os.remove(path)  # no image without its line
            self._stop(f"writing failed: {error.strerror}")
            return
        self.written_bytes += size

    def _stop(self, why: str) -> None:
        self.stopped_reason = why
        logger.warning(
            "request log in %s stopped: %s; requests are still served", self.directory, why
        )


def time_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")

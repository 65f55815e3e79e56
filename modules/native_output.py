"""Keeps the output that bypasses Python logging (TensorFlow's C++ logs, CUDA probing,
Keras) off the console: it goes to a log file, or nowhere."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Points this process's stdout and stderr descriptors at the log file, so output that
    bypasses Python logging (TensorFlow's C++ logs, CUDA probing, Keras) lands there."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log_path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for descriptor, original in zip((1, 2), saved, strict=True):
            os.dup2(original, descriptor)
            os.close(original)


def quiet(verbose: bool = False) -> contextlib.AbstractContextManager:
    """For commands without a run log: TensorFlow's start-up output (the oneDNN banner, CUDA
    probing on machines without a GPU) stays off the console while they load. TF 2.21
    writes it through absl's C++ logging, which TF_CPP_MIN_LOG_LEVEL does not silence, so
    only the descriptors can. Errors still raise in Python."""
    return contextlib.nullcontext() if verbose else native_output_to(Path(os.devnull))

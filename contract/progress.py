"""The Trainer's and the Tuner trials' progress records, which `alexnet-tfx run` shows as a
live bar or lines.

The Trainer logs a TrainingProgress at most once a second to PROGRESS_LOGGER, in the record's
`progress` attribute. The logger does not propagate: only a console that attaches itself
shows these records, and logs stay free of them. Each finished epoch is logged as usual.
"""

from __future__ import annotations

import dataclasses
import logging

PROGRESS_LOGGER = "alexnet_tfx.progress"
logging.getLogger(PROGRESS_LOGGER).propagate = False
logging.getLogger(PROGRESS_LOGGER).setLevel(logging.INFO)


@dataclasses.dataclass(frozen=True)
class TrainingProgress:
    epoch: int  # 1-based
    epochs: int
    step: int  # steps done in this epoch
    steps: int
    images_per_second: float
    loss: float | None
    eta_seconds: float  # for the whole training
    done: bool = False  # the epoch has ended
    val_accuracy: float | None = None
    trial: tuple[int, int] | None = None  # a Tuner trial (1-based) and the trial budget


@dataclasses.dataclass(frozen=True)
class ScoringProgress:
    """A batch job's images scored so far (`alexnet-tfx predict-batch`)."""

    done: int
    total: int | None  # None: not known before the job reads its input (TFRecords)
    images_per_second: float
    finished: bool = False

"""One replica of a multi-worker training: TensorFlow's MultiWorkerMirroredStrategy, set up
from TF_CONFIG (modules/tf_config.py), with a deadline for the cluster to form.

MultiWorkerMirroredStrategy waits for every replica named in TF_CONFIG before it returns,
for up to an hour (the coordination service's default registration timeout), with no
public setting for that wait, and it waits inside TensorFlow's C++ runtime holding Python's
GIL, so no Python thread runs meanwhile. So two things that need no GIL keep the deadline:
a watchdog process (modules/cluster_watchdog.py) that says, in one line, that the cluster
did not form and which peers do not answer, and faulthandler's timer, which then ends the
replica with exit code 1: a permanent failure for the Training Operator, so a wrong
TF_CONFIG fails the job instead of restarting it.
"""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys

import tensorflow as tf

from modules.tf_config import Role

STARTUP_TIMEOUT_S = 120.0
# After the watchdog's line: time for it to check the peers and write.
_GRACE_S = 5.0


def multi_worker_strategy(
    role: Role, timeout_s: float = STARTUP_TIMEOUT_S
) -> tf.distribute.MultiWorkerMirroredStrategy:
    """The strategy, once every replica has joined and one all-reduce has crossed the
    cluster; or the watchdog's line and exit code 1 after `timeout_s`."""
    watchdog = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modules.cluster_watchdog",
            str(timeout_s),
            role.kind,
            str(role.index),
            str(role.workers),
            *role.peers(),
        ]
    )
    with open(os.devnull, "w") as quiet:  # the threads' tracebacks: the watchdog said why
        faulthandler.dump_traceback_later(timeout_s + _GRACE_S, exit=True, file=quiet)
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            finish_together(strategy)  # the first all-reduce: the cluster works
        finally:
            faulthandler.cancel_dump_traceback_later()
            watchdog.kill()
            watchdog.wait()
    return strategy


def finish_together(strategy: tf.distribute.Strategy) -> None:
    """One all-reduce that every replica runs last (the chief after its export), so no
    replica leaves the cluster while another still works in it."""
    strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1.0)), axis=None)


def per_replica_batch(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset) -> int:
    """The images of one step that this replica gets, from the dataset as the strategy
    distributes it (its first batch)."""
    images, _ = next(iter(strategy.experimental_distribute_dataset(dataset)))
    return int(strategy.experimental_local_results(images)[0].shape[0])

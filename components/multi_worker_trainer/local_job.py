"""A multi-worker training as local processes, the way Kubeflow's Training Operator runs a
TFJob's pods: one chief and workers, each started with the TF_CONFIG the operator would give
it (modules/tf_config.py), on loopback addresses.

Restarts follow the TFJob this project submits (components/multi_worker_trainer/tfjob.py:
restartPolicy ExitCode, runPolicy.backoffLimit), as kubeflow/training-operator v1.9.0 treats
it: a replica that exits with 128 or more (killed by a signal; `IsRetryableExitCode` in
pkg/util/train/train_util.go) restarts the job, one that exits with 1 to 127 fails it
(`ReconcilePods` in pkg/controller.v1/common/pod.go). On a restart the operator recreates the
failed pod, and MultiWorkerMirroredStrategy's other replicas fail at their next collective
and are recreated too; here the others are stopped at once, and all start again and resume
from the chief's backup.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Sequence

from modules.tf_config import CHIEF, WORKER, tf_config_json

RETRYABLE_EXIT_CODE = 128  # and above; Popen reports death by signal N as -N
POLL_SECONDS = 0.5


class TrainingJobFailed(RuntimeError):
    """The job failed for good: a replica's own one-line reason, or too many restarts."""


@dataclasses.dataclass(frozen=True)
class Replica:
    kind: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.index}"


def replicas(count: int) -> list[Replica]:
    """The TFJob's replicas: a chief, then count - 1 workers."""
    return [Replica(CHIEF, 0)] + [Replica(WORKER, index) for index in range(count - 1)]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def loopback_cluster(members: Sequence[Replica]) -> dict[str, list[str]]:
    """The operator's cluster layout, each address a free loopback port."""
    ports = iter(_free_ports(len(members)))
    cluster: dict[str, list[str]] = {}
    for member in members:
        cluster.setdefault(member.kind, []).append(f"127.0.0.1:{next(ports)}")
    return cluster


def _last_line(path: str) -> str:
    """The last line a replica wrote that is not TensorFlow's own logging."""
    with open(path, errors="replace") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    ours = [line for line in lines if line.startswith(("Error:", "ValueError", "RuntimeError"))]
    return (ours or lines or ["(no output)"])[-1]


def run_local_job(
    command: Sequence[str],
    count: int,
    log_dir: str,
    backoff_limit: int,
    env: dict[str, str] | None = None,
    while_waiting: Callable[[], None] = lambda: None,
) -> int:
    """Runs `command` as `count` replicas until every one exits 0; returns the restarts
    needed. Each replica's output goes to log_dir/<kind>-<index>.log (appended across
    restarts), its process id to <kind>-<index>.pid. Raises TrainingJobFailed with the
    failing replica's reason."""
    members = replicas(count)
    os.makedirs(log_dir, exist_ok=True)
    for attempt in range(backoff_limit + 1):
        cluster = loopback_cluster(members)
        running = {}
        for member in members:
            log_path = os.path.join(log_dir, f"{member.name}.log")
            with open(log_path, "a") as log:
                log.write(f"--- attempt {attempt + 1}, TF_CONFIG for {member.name}\n")
                running[member] = subprocess.Popen(
                    list(command),
                    env={
                        **os.environ,
                        **(env or {}),
                        "TF_CONFIG": tf_config_json(cluster, member.kind, member.index),
                    },
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            with open(os.path.join(log_dir, f"{member.name}.pid"), "w") as handle:
                handle.write(str(running[member].pid))
        failed = _wait(running, while_waiting)
        if failed is None:
            return attempt
        member, code = failed
        reason = _last_line(os.path.join(log_dir, f"{member.name}.log"))
        if 0 < code < RETRYABLE_EXIT_CODE:
            raise TrainingJobFailed(f"{member.name} failed (exit code {code}): {reason}")
        logging.warning(
            "Trainer: %s exited with %s (attempt %d); restarting the job from its backup",
            member.name,
            code,
            attempt + 1,
        )
    raise TrainingJobFailed(
        f"the training job failed {backoff_limit + 1} times (backoffLimit {backoff_limit}); "
        f"last: {member.name}: {reason}"
    )


def _wait(
    running: dict[Replica, subprocess.Popen], while_waiting: Callable[[], None]
) -> tuple[Replica, int] | None:
    """Waits for every replica; at the first failure stops the rest and returns it, with
    its exit code as the operator sees it (a signal N as 128 + N)."""
    try:
        while True:
            while_waiting()
            codes = {member: process.poll() for member, process in running.items()}
            failed = [(m, c) for m, c in codes.items() if c not in (None, 0)]
            if failed:
                member, code = failed[0]
                return member, 128 - code if code < 0 else code
            if all(code == 0 for code in codes.values()):
                return None
            time.sleep(POLL_SECONDS)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        while_waiting()

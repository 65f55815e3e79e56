"""What the fault drills run in processes of their own (forked, see forked.py): a CLI
command that a signal may interrupt, a push killed half-way, and pushers that race."""

from __future__ import annotations

import os
import signal

# The modules a whole pipeline run and its Kubeflow tasks import; the session's forkserver
# imports them once, whichever test starts it first.
PIPELINE_MODULES = [
    "components.atomic_pusher.executor",
    "modules.trainer",
    "pipelines.cli",
    "pipelines.local_runner",
    "tfx.components.trainer.executor",
    "pipelines.kubeflow.entrypoint",
]


def run_command(args: list[str], log_path: str) -> None:
    """`alexnet-tfx ARGS` with this process's output in LOG_PATH; exits with its code."""
    with open(log_path, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    # Ctrl-C reaches a command in a terminal. A test runner started in the background by a
    # shell without job control ignores SIGINT, and so would this process.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from pipelines.cli import main

    main(args=args, prog_name="alexnet-tfx")


def killed_push(model_dir: str, base: str) -> None:
    """Pushes MODEL_DIR to BASE and is SIGKILLed once the copy has started."""
    from tfx.utils import io_utils

    from components.atomic_pusher import executor

    def copy_then_die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    io_utils.copy_file = copy_then_die  # called for saved_model.pb, after the rest
    executor.push_atomically(model_dir, base, {})


def push_many(model_dir: str, base: str, pusher: int, pushes: int, barrier, results) -> None:
    """Pushes MODEL_DIR `pushes` times, marking each copy; reports (pusher, i, version)."""
    from components.atomic_pusher import executor

    barrier.wait()
    for index in range(pushes):
        marker = f"{pusher}-{index}".encode()
        version, _ = executor.push_atomically(model_dir, base, {"marker.txt": marker})
        results.put((pusher, index, version))

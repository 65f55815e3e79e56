"""Multi-worker training with TensorFlow's MultiWorkerMirroredStrategy: replicas as local
processes, each with the TF_CONFIG Kubeflow's Training Operator would give its pod, started
again when one is killed, as the operator's restart policy does."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import run_cli
from trainer_harness import has_checkpoint

from components.multi_worker_trainer.local_job import TrainingJobFailed, run_local_job
from contract.model_files import HISTORY_FILE
from modules.epoch_log import EPOCH_LOG, read_epoch_log


def _trainer_dir(root):
    return root / "pipeline_root" / "Trainer"


def _kill_the_worker_mid_epoch(root, killed, stop):
    """Once an epoch is in the backup, SIGKILL the worker replica; records the epochs the
    backup held then."""
    while not stop.is_set():
        trainer = _trainer_dir(root)
        pid_files = list(trainer.glob("model_run/*/replicas/worker-0.pid"))
        if pid_files and has_checkpoint(trainer):
            logs = list(trainer.glob(f"backup/*/{EPOCH_LOG}"))
            killed["epochs_saved"] = len(read_epoch_log(str(logs[0]))) if logs else 0
            os.kill(int(pid_files[0].read_text()), signal.SIGKILL)
            return
        time.sleep(0.05)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory, demo_dir):
    """A tiny run on two replicas, whose worker is killed during its second epoch."""
    root = tmp_path_factory.mktemp("two-workers")
    summary_path = root / "summary.json"
    killed, stop = {}, threading.Event()
    killer = threading.Thread(target=_kill_the_worker_mid_epoch, args=(root, killed, stop))
    killer.start()
    try:
        result = run_cli(
            "run", "--data", demo_dir, "--preset", "tiny", "--output-root", root,
            "--summary-json", summary_path, "--train-workers", "2", "--epochs", "3",
            "--steps-per-epoch", "40",
        )  # fmt: skip
    finally:
        stop.set()
        killer.join()
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(summary_path.read_text())
    history = json.loads((Path(summary["lineage"]["model"]) / HISTORY_FILE).read_text())
    (job,) = _trainer_dir(root).glob("model_run/*/replicas/job.json")
    return summary, history, result, killed | {"job": json.loads(job.read_text())}


def test_two_replicas_train_one_model_that_is_pushed(two_workers):
    summary, history, result, _ = two_workers
    assert summary["pushed"] and summary["pushed_version"] == 1
    assert (history["strategy"], history["replicas"]) == ("multi_worker", 2)
    assert summary["components"]["Trainer"]["status"] == "complete"
    # The chief's progress reaches the console, as a one-process Trainer's does.
    assert "  Trainer                 epoch 3/3  step 40/40" in result.stdout


def test_the_global_batch_is_the_configured_one(two_workers):
    """Each replica is handed half of each step's images."""
    _, history, _, _ = two_workers
    assert (
        history["replica_batch"] * history["replicas"] == history["hyperparameters"]["batch_size"]
    )


def test_a_killed_worker_restarts_the_job_from_its_last_epoch(two_workers):
    _, history, _, killed = two_workers
    assert "epochs_saved" in killed, "the worker was never killed"
    # Resumed after the epochs the backup held when the worker died: at most the epoch in
    # progress is trained again.
    assert history["resumed_from_epoch"] == killed["epochs_saved"] >= 1
    assert history["epochs"] == 3
    assert killed["job"]["restarts"] == 1


def test_a_replica_that_fails_for_good_fails_the_job_with_its_reason(tmp_path):
    """Exit codes below 128 are the TFJob's permanent failures (ExitCode restart policy)."""
    command = [sys.executable, "-c", "import sys; print('Error: no such file'); sys.exit(2)"]
    with pytest.raises(TrainingJobFailed, match=r"^chief-0 failed \(exit code 2\): Error: no such"):
        run_local_job(command, 2, str(tmp_path), backoff_limit=3)


def test_a_replica_killed_by_a_signal_restarts_the_job_within_its_backoff_limit(tmp_path):
    """The first attempt's worker dies by SIGKILL (exit code 137 to the operator)."""
    marker = tmp_path / "killed-once"
    script = (
        "import json, os, signal\n"
        "role = json.loads(os.environ['TF_CONFIG'])['task']\n"
        f"if role['type'] == 'worker' and not os.path.exists({str(marker)!r}):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert run_local_job([sys.executable, "-c", script], 2, str(tmp_path), 3) == 1
    always = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    with pytest.raises(TrainingJobFailed, match=r"failed 2 times \(backoffLimit 1\)"):
        run_local_job(always, 2, str(tmp_path / "again"), backoff_limit=1)


def _replica(tf_config, code, timeout_s=120):
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return completed, time.monotonic() - started


def test_a_tf_config_with_a_bad_index_is_one_line_at_once():
    cluster = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]}
    tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 3}})
    code = "from modules.device_plan import local_device_plan; local_device_plan()"
    completed, _ = _replica(tf_config, code)
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines()[-1] == (
        "ValueError: TF_CONFIG.task.index 3 is outside the cluster's 1 worker replica(s)"
    )


def test_an_unreachable_peer_is_one_line_within_the_stated_time():
    silent = free_port()  # nobody listens there
    tf_config = json.dumps(
        {
            "cluster": {"chief": [f"127.0.0.1:{free_port()}"], "worker": [f"127.0.0.1:{silent}"]},
            "task": {"type": "chief", "index": 0},
        }
    )
    code = (
        "import os\n"
        "from modules.multi_worker import multi_worker_strategy\n"
        "from modules.tf_config import read_role\n"
        "multi_worker_strategy(read_role(os.environ['TF_CONFIG']), timeout_s=10)\n"
    )
    completed, seconds = _replica(tf_config, code)
    assert completed.returncode == 1  # a permanent failure for the Training Operator
    ours = [line for line in completed.stderr.splitlines() if line.startswith("Error:")]
    assert ours == [
        f"Error: chief 0 of 2 replicas: the cluster did not form within 10 s (127.0.0.1:"
        f"{silent} did not answer); check TF_CONFIG's addresses and that every replica is "
        "running"
    ]
    assert seconds < 10 + 5 + 60  # the deadline, its grace, and TensorFlow's import


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

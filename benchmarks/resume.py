"""A run killed during training, run again: its Trainer's time against an uninterrupted
Trainer's, measured in the same run of this script.

The canonical AlexNet on the demo data (the demo preset, EPOCHS epochs). The upstream
components run once first, so both measured runs reuse them from the cache. Then:
- uninterrupted: `alexnet-tfx run --to Trainer --seed 1`;
- killed: the same with `--seed 2` (another training, so no backup is shared), SIGKILLed
  once the Trainer's backup holds epoch KILL_AFTER's checkpoint;
- re-run: the killed command again; it resumes after epoch KILL_AFTER.
The figure is the re-run's Trainer seconds over the uninterrupted Trainer's (wall time of
the component, from the run summaries); (EPOCHS - KILL_AFTER) / EPOCHS is what training
alone would give, and the rest is the Trainer's fixed cost (graph building, restore,
export).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import node_id, report  # noqa: E402

EPOCHS = 4
KILL_AFTER = 2


def command(root: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "pipelines.cli", "run", "--preset", "demo",
        "--output-root", str(root), "--epochs", str(EPOCHS), *extra,
    ]  # fmt: skip


def run(root: Path, *extra: str) -> dict:
    summary = root / f"summary-{time.monotonic_ns()}.json"
    subprocess.run(command(root, *extra, "--summary-json", str(summary)), check=True)
    return json.loads(summary.read_text())


def checkpointed_epochs(backups: Path) -> int:
    """Epochs the newest checkpoint in BACKUPS holds (its `checkpoint` file names ckpt-N)."""
    best = 0
    for state in backups.glob("*/checkpoint/**/checkpoint"):
        text = state.read_text()
        for line in text.splitlines():
            if line.startswith("model_checkpoint_path:"):
                best = max(best, int(line.split("ckpt-")[-1].strip('"')))
    return best


def main() -> None:
    from pipelines.config import build_config
    from pipelines.demo_data import write_demo_dataset

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = build_config("demo", output_root=str(root))
        write_demo_dataset(config.data_path)
        trainer = node_id(config, "model")
        run(root, "--to", node_id(config, "transform_graph"))  # upstream, cached from here
        uninterrupted = run(root, "--to", trainer, "--seed", "1")

        killed = subprocess.Popen(
            command(root, "--to", trainer, "--seed", "2"), stdout=subprocess.DEVNULL
        )
        backups = root / "pipeline_root" / trainer / "backup"
        while checkpointed_epochs(backups) < KILL_AFTER:
            if killed.poll() is not None:
                raise RuntimeError("the run to kill ended before its checkpoint")
            time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        rerun = run(root, "--to", trainer, "--seed", "2")

    seconds = {
        name: summary["components"][trainer]["seconds"]
        for name, summary in (("uninterrupted", uninterrupted), ("rerun", rerun))
    }
    report(
        "resume",
        {
            "rerun_trainer_vs_uninterrupted": seconds["rerun"] / seconds["uninterrupted"],
            "training_fraction_left": (EPOCHS - KILL_AFTER) / EPOCHS,
            "rerun_resumed_from_epoch": rerun["training"]["resumed_from_epoch"],
            "rerun_epochs_in_history": rerun["training"]["epochs"],
        },
        {"trainer_seconds": seconds, "epochs": EPOCHS, "killed_after_epoch": KILL_AFTER},
    )


if __name__ == "__main__":
    main()

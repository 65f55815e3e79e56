"""The demo pipeline's first run against an identical re-run (the cache at work), and which
components a hyperparameter change re-runs. All three runs share one fresh output root."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    from common import report

    from components.run_report.summary import RunSummary
    from pipelines.config import build_config
    from pipelines.demo_data import write_demo_dataset
    from pipelines.local_runner import run_pipeline

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    write_demo_dataset(work / "data")
    config = build_config("demo", data=str(work / "data"), output_root=str(work / "out"))
    first = run_pipeline(config)
    rerun = run_pipeline(config)
    changed = run_pipeline(
        build_config(
            "demo",
            data=str(work / "data"),
            output_root=str(work / "out"),
            training={"learning_rate": 2e-4},
        )
    )

    def statuses(summary: RunSummary) -> dict:
        return {name: c.status for name, c in summary.components.items()}

    report(
        "pipeline",
        {
            "first_run_seconds": first.wall_seconds,
            "cached_rerun_ratio": rerun.wall_seconds / first.wall_seconds,
            "first_run_accuracy": first.metrics.accuracy,
        },
        {
            "rerun_seconds": rerun.wall_seconds,
            "first_run": statuses(first),
            "rerun": statuses(rerun),
            "learning_rate_change": statuses(changed),
            "rerun_pushed": rerun.pushed,
        },
    )


if __name__ == "__main__":
    main()

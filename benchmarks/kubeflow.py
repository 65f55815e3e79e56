"""A run with nothing new, locally and on the strict KFP launcher (tests/kfp_launcher.py,
which does what open-source KFP 2.x's launcher does, on a real S3 server).

Tiny preset on the tests' demo data (120 images). Locally: a first run, then an identical
one in the same output root; the figure is the second's pipeline time over the first's.
On the strict launcher: the compiled spec run twice under KFP's default minio:// root, the
data and the serving directory in buckets; the figures are the first run's time against
the local first run's, and the unchanged run's against the first.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))  # the launcher, the server

KFP_ROOT = "minio://mlpipeline/v2/artifacts"


def _strict_runs(work: Path, data: Path) -> dict:
    from kfp_launcher import Cluster, Launcher
    from s3_server import shared_server, stop_shared_server

    from pipelines.config import build_config
    from pipelines.kubeflow.runner import compile_pipeline

    server = shared_server(work / "s3")
    try:
        for bucket in ("mlpipeline", "data", "serving"):
            server.make_bucket(bucket)
        server.upload(data, "s3://data/images")
        config = build_config(
            "tiny", data="s3://data/images", serving_dir="s3://serving/serving", num_classes=2
        )
        spec = compile_pipeline(
            config, "alexnet-tfx:bench", str(work / "spec.yaml"), gpus=0,
            s3_endpoint=server.endpoint,
        )  # fmt: skip
        secrets = {"accesskey": server.access_key, "secretkey": server.secret_key}
        cluster = Cluster(
            server.endpoint, server.access_key, server.secret_key,
            secrets={"mlpipeline-minio-artifact": secrets},
        )  # fmt: skip
        (work / "launcher").mkdir()
        launcher = Launcher(cluster, spec, str(work / "launcher"))
        seconds, statuses = [], []
        for run_id in ("run-1", "run-2"):
            started = time.monotonic()
            tasks = launcher.run(KFP_ROOT, run_id)
            seconds.append(time.monotonic() - started)
            statuses.append({name: task.status for name, task in tasks.items()})
        summary = server.filesystem().cat(
            tasks["RunReport"].outputs["summary"]["uri"].split("://", 1)[1]
        )
        pushed = sorted(server.filesystem().ls("serving/serving/alexnet"))
        return {"seconds": seconds, "statuses": statuses, "summary": summary.decode(),
                "pushed": pushed}  # fmt: skip
    finally:
        stop_shared_server(work / "s3")


def main() -> None:
    from common import report

    from pipelines.config import build_config
    from pipelines.demo_data import write_demo_dataset
    from pipelines.local_runner import run_pipeline

    work = Path(tempfile.mkdtemp(prefix="bench-kubeflow-"))
    data = work / "data"
    write_demo_dataset(data, per_class=60, seed=7)
    config = build_config("tiny", data=str(data), output_root=str(work / "out"))
    first = run_pipeline(config)
    unchanged = run_pipeline(config)
    strict = _strict_runs(work, data)
    first_strict, unchanged_strict = strict["seconds"]
    report(
        "kubeflow",
        {
            "unchanged_rerun_ratio_local": unchanged.wall_seconds / first.wall_seconds,
            "strict_first_run_vs_local": first_strict / first.wall_seconds,
            "strict_unchanged_rerun_ratio": unchanged_strict / first_strict,
            "strict_first_run_seconds": first_strict,
        },
        {
            "local_first_seconds": first.wall_seconds,
            "local_unchanged_seconds": unchanged.wall_seconds,
            "local_did_no_work": unchanged.did_no_work,
            "local_unchanged_version": unchanged.unchanged_version,
            "strict_unchanged_seconds": unchanged_strict,
            "strict_statuses": strict["statuses"],
            "strict_unchanged_summary": strict["summary"],
            "strict_pushed": strict["pushed"],
        },
    )


if __name__ == "__main__":
    main()

"""`alexnet-tfx predict-batch` against an in-process loop over the same images and model,
measured alternately in the same run of this script.

The model is the canonical AlexNet (227x227, full width) pushed by a short real pipeline
run (benchmarks/serve.py). The images are IMAGES demo images (class folders).
- loop: `ServedModel.predict` on batches of 32, reading each batch's files first;
- predict-batch: the command's job (`pipelines.batch.job.run_job`, Beam's in-process
  DirectRunner, RunInference with batches of up to 32): listing, reading, the decode check,
  inference and the JSON lines;
- predict-batch with two Beam workers (`--direct_num_workers=2`, multi_processing), each of
  which loads TensorFlow and the model.
Each is timed from the first image read to the last prediction written; the model is loaded
before the loop's timer starts, and inside the job's (RunInference loads it).
The figure is predict-batch's images/s over the loop's (target: at least 0.8).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import report  # noqa: E402
from serve import MODEL, push_canonical_model  # noqa: E402

IMAGES = 2000
BATCH = 32
ROUNDS = 2


def loop_seconds(model, paths: list[Path]) -> float:
    started = time.perf_counter()
    for start in range(0, len(paths), BATCH):
        model.predict([path.read_bytes() for path in paths[start : start + BATCH]])
    return time.perf_counter() - started


def job_seconds(data: Path, choice, out: Path, beam_args: list[str]) -> float:
    from pipelines.batch.agreement import read_lines
    from pipelines.batch.inputs import find_inputs
    from pipelines.batch.job import run_job

    started = time.perf_counter()
    run_job(find_inputs(str(data)), choice, str(out), 3, beam_args)
    seconds = time.perf_counter() - started
    assert len(read_lines(str(out))) == IMAGES
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serving-dir", help="Holds a pushed canonical model already.")
    args = parser.parse_args()
    from pipelines.batch.job import choose_model
    from pipelines.demo_data import write_demo_dataset
    from serving.served_model import ServedModel

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        serving = Path(args.serving_dir) if args.serving_dir else push_canonical_model(work)[0]
        data = work / "images"
        paths = sorted(write_demo_dataset(data, per_class=IMAGES // 2, seed=5))
        choice = choose_model(None, str(serving), MODEL)
        model = ServedModel.latest(str(serving), MODEL)
        loop, job = [], []
        for round_ in range(ROUNDS):  # alternately, so drifts in machine speed hit both
            loop.append(loop_seconds(model, paths))
            job.append(job_seconds(data, choice, work / f"scores-{round_}.jsonl", []))
        workers = job_seconds(
            data,
            choice,
            work / "scores-workers.jsonl",
            ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        )
    loop_rate, job_rate = IMAGES / min(loop), IMAGES / min(job)
    report(
        "predict_batch",
        {
            "predict_batch_over_loop": job_rate / loop_rate,
            "predict_batch_2_workers_over_loop": IMAGES / workers / loop_rate,
            "loop_images_per_second": loop_rate,
            "predict_batch_images_per_second": job_rate,
        },
        {
            "images": IMAGES,
            "loop_seconds": loop,
            "predict_batch_seconds": job,
            "predict_batch_2_workers_seconds": workers,
            "model": "canonical AlexNet, 227x227, pushed by a short pipeline run",
        },
    )


if __name__ == "__main__":
    main()

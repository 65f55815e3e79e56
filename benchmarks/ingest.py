"""ExampleGen throughput against a plain decode loop, and peak memory at 1x and 10x images.

Each measurement runs in a fresh interpreter so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

BASE_PER_CLASS = 200  # 1x = 400 images


def plain_loop(data: str) -> dict:
    """The baseline: one process reads and decodes every file with TensorFlow's decoder."""
    import tensorflow as tf

    files = sorted(Path(data).rglob("*.jpg"))
    tf.io.decode_image(files[0].read_bytes(), channels=3, expand_animations=False)  # warm-up
    started = time.perf_counter()
    for path in files:
        tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
    seconds = time.perf_counter() - started
    return {"images": len(files), "seconds": seconds}


def example_gen(data: str, out: str, beam_args: list[str]) -> dict:
    """The real component, run by TFX's LocalDagRunner; its execution time from MLMD."""
    from pipelines.config import build_config
    from pipelines.local_runner import run_pipeline

    config = build_config("tiny", data=data, output_root=out, beam_args=beam_args)
    summary = run_pipeline(config, to_component="ImageFolderExampleGen")
    seconds = summary["components"]["ImageFolderExampleGen"]["seconds"]
    return {"seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["plain", "examplegen"])
    parser.add_argument("--data")
    parser.add_argument("--out")
    parser.add_argument("--beam-arg", action="append", default=[])
    args = parser.parse_args()
    if args.child:
        result = (
            plain_loop(args.data)
            if args.child == "plain"
            else example_gen(args.data, args.out, args.beam_arg)
        )
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    run_all()


def run_all() -> None:
    from common import child, report

    from pipelines.demo_data import write_demo_dataset

    script = __file__
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    sets = {}
    for scale in (1, 10):
        sets[scale] = work / f"data{scale}x"
        write_demo_dataset(sets[scale], per_class=BASE_PER_CLASS * scale, seed=scale)
    images = {scale: 2 * BASE_PER_CLASS * scale for scale in sets}
    modes = {
        "in_memory": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
        "multi_processing_2": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    }
    details: dict = {"images": images, "modes": {}}
    plain = child(script, "--child", "plain", "--data", str(sets[10]))
    plain_rate = plain["images"] / plain["seconds"]
    details["plain_loop_images_per_second"] = plain_rate
    for mode, beam_args in modes.items():
        extra = [f"--beam-arg={arg}" for arg in beam_args]
        runs = {
            scale: child(
                script,
                "--child",
                "examplegen",
                "--data",
                str(sets[scale]),
                "--out",
                str(work / f"out-{mode}-{scale}"),
                *extra,
            )
            for scale in sets
        }
        details["modes"][mode] = {
            "images_per_second_1x": images[1] / runs[1]["seconds"],
            "images_per_second_10x": images[10] / runs[10]["seconds"],
            "peak_rss_mb_1x": runs[1]["peak_rss_mb"],
            "peak_rss_mb_10x": runs[10]["peak_rss_mb"],
        }
    default = details["modes"]["in_memory"]
    figures = {
        "throughput_ratio_vs_plain_loop": default["images_per_second_10x"] / plain_rate,
        "peak_rss_ratio_10x": default["peak_rss_mb_10x"] / default["peak_rss_mb_1x"],
        "throughput_ratio_multi_processing_2": (
            details["modes"]["multi_processing_2"]["images_per_second_10x"] / plain_rate
        ),
    }
    report("ingest", figures, details)


if __name__ == "__main__":
    main()

"""The Trainer's peak memory at 2,000 and 20,000 demo images (canonical 227x227 AlexNet).

For each size, the demo data is ingested and transformed by the real pipeline (up to
Transform); then a fresh process builds the Trainer's input pipeline with its real cache
plan (`trainer_memory_mb`), reads one full epoch of it (the decoded cache fills during the
first epoch, so a few steps alone would not show it) and trains a few steps. Its peak RSS
is the figure. The same is measured with the budget lifted, which is what the Trainer did
before the budget existed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import contract  # noqa: E402,F401 (selects Keras 2 before TensorFlow loads)

SIZES = (2_000, 20_000)
BUDGET_MB = 4096  # the config's default
UNBOUNDED_MB = 10**9
BATCH = 32
STEPS = 5


def prepare(images: int, work: Path) -> dict:
    from common import node_id

    from pipelines.config import build_config
    from pipelines.demo_data import write_demo_dataset
    from pipelines.local_runner import run_pipeline

    write_demo_dataset(work / "data", per_class=images // 2)
    config = build_config("demo", data=str(work / "data"), output_root=str(work / "out"))
    summary = run_pipeline(config, to_component=node_id(config, "transform_graph"))
    return {
        "examples": summary.lineage["examples"],
        "transform": summary.lineage["transform_graph"],
    }


def measure(examples: str, transform: str, memory_mb: int) -> dict:
    """One epoch through the Trainer's input pipeline, then STEPS training steps."""
    import tensorflow_transform as tft
    from tfx.components.trainer import fn_args_utils
    from tfx.types import artifact_utils, standard_artifacts

    from modules.dataset import make_dataset
    from modules.decoded_cache import count_records, plan_cache
    from modules.hyperparameters import Hyperparameters
    from modules.model import build_alexnet, compile_alexnet

    artifacts = {}
    for key, kind, uri in (
        ("examples", standard_artifacts.Examples, examples),
        ("transform_graph", standard_artifacts.TransformGraph, transform),
    ):
        artifacts[key] = [kind()]
        artifacts[key][0].uri = uri
    artifacts["examples"][0].split_names = artifact_utils.encode_split_names(["train", "eval"])
    fn_args = fn_args_utils.get_common_fn_args(
        artifacts, {"train_args": '{"num_steps": 1}', "eval_args": '{"num_steps": 1}'}
    )
    hp = Hyperparameters(batch_size=BATCH)
    cache = plan_cache(fn_args.train_files, hp.image_size, hp.cache_decoded, memory_mb)
    dataset = make_dataset(
        fn_args.train_files,
        fn_args.data_accessor,
        tft.TFTransformOutput(transform),
        hp,
        2,
        training=True,
        cache=cache.in_memory,
    )
    images = count_records(fn_args.train_files)
    for _ in dataset.take(images // BATCH + 1):
        pass
    model = compile_alexnet(build_alexnet(2), hp.learning_rate)
    model.fit(dataset, epochs=1, steps_per_epoch=STEPS, verbose=0)
    return {
        "train_images": images,
        "cache": cache.note,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=3, metavar=("EXAMPLES", "TRANSFORM", "MEMORY_MB"))
    args = parser.parse_args()
    if args.child:
        examples, transform, memory_mb = args.child
        print(json.dumps(measure(examples, transform, int(memory_mb))))
        return

    from common import child, report

    runs = {}
    for images in SIZES:
        prepared = prepare(images, Path(tempfile.mkdtemp(prefix=f"bench-memory-{images}-")))
        for name, budget in (("budget", BUDGET_MB), ("unbounded", UNBOUNDED_MB)):
            runs[f"{name}_{images}"] = child(
                __file__, "--child", prepared["examples"], prepared["transform"], str(budget)
            )
    small, large = (runs[f"budget_{images}"]["peak_rss_mb"] for images in SIZES)
    before_small, before_large = (runs[f"unbounded_{images}"]["peak_rss_mb"] for images in SIZES)
    report(
        "trainer_memory",
        {
            "peak_rss_ratio_20000_vs_2000": large / small,
            "peak_rss_mb_2000": small,
            "peak_rss_mb_20000": large,
            "unbounded_peak_rss_ratio_20000_vs_2000": before_large / before_small,
        },
        {"runs": runs, "budget_mb": BUDGET_MB, "batch_size": BATCH, "steps": STEPS},
    )


if __name__ == "__main__":
    main()

"""Training steps to reach min_accuracy on a new span: warm-started against from scratch.

The canonical AlexNet (227x227, the demo preset's batch, learning rate and augmentation).
A model is first trained on demo spans 1 and 2 until it reaches min_accuracy on span 2's
eval split. Then, on a new span, two runs are side by side, both seeded alike: one starts
from that model's weights (what the Trainer's warm start does), one from scratch. Each is
evaluated on the new span's eval split every EVAL_EVERY steps; the figure is the ratio of
steps each needed to reach min_accuracy (0.9). The new span is measured twice: the shifted
span `demo-data --spans` ends with (night colours, 320x240, PNG), and an unshifted one.
Preprocessing is the Transform's: centre crop and resize, then per-channel normalization
with the training images' mean and standard deviation.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import contract  # noqa: E402,F401 (selects Keras 2 before TensorFlow loads)

MIN_ACCURACY = 0.9
EVAL_EVERY = 5
MAX_STEPS = 600
PER_CLASS = 200


def load_split(folder: Path, eval_fraction: float = 0.2) -> dict:
    """A span's images, decoded and resized like Transform does, in its hash split."""
    import numpy as np

    from components.image_folder_example_gen.layout import ImageFile
    from components.image_folder_example_gen.splits import assign_splits
    from modules.transform import decode_and_resize

    splits = {"train": ([], []), "eval": ([], [])}
    for label, cls in enumerate(sorted(p.name for p in folder.iterdir())):
        files = [
            ImageFile(str(p), cls, digest=hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted((folder / cls).iterdir())
        ]
        for image in assign_splits(files, eval_fraction):
            pixels = decode_and_resize(Path(image.relative_path).read_bytes(), 227).numpy()
            splits[image.split][0].append(pixels)
            splits[image.split][1].append(label)
    return {split: (np.stack(x), np.array(y)) for split, (x, y) in splits.items()}


def normalized(images, reference):
    mean = reference.mean(axis=(0, 1, 2))
    std = reference.std(axis=(0, 1, 2))
    return (images - mean) / std


def train_until(model, train, evaluation, seed: int) -> tuple[int, list[float]]:
    """Steps until eval accuracy reaches MIN_ACCURACY (checked before training too)."""
    import tensorflow as tf
    import tf_keras as keras

    from modules.dataset import augment

    keras.utils.set_random_seed(seed)
    images, labels = train
    dataset = (
        tf.data.Dataset.from_tensor_slices((images, tf.one_hot(labels, 2)))
        .shuffle(len(labels), seed=seed)
        .repeat()
        .map(lambda image, label: augment(image, label, 227))
        .batch(32, drop_remainder=True)
    )
    eval_images, eval_labels = evaluation
    curve, steps = [], 0
    iterator = iter(dataset)
    while True:
        accuracy = float((model.predict(eval_images, verbose=0).argmax(1) == eval_labels).mean())
        curve.append(accuracy)
        if accuracy >= MIN_ACCURACY or steps >= MAX_STEPS:
            return steps, curve
        for _ in range(EVAL_EVERY):
            model.train_on_batch(*next(iterator))
        steps += EVAL_EVERY


def main() -> None:
    import numpy as np
    from common import report

    from modules.model import build_alexnet, compile_alexnet
    from pipelines.demo_data import write_demo_dataset, write_demo_spans

    work = Path(tempfile.mkdtemp(prefix="bench-continuous-"))
    write_demo_spans(work / "spans", 3, per_class=PER_CLASS, seed=21)
    write_demo_dataset(work / "unshifted", per_class=PER_CLASS, seed=21 * 1000 + 4)
    spans = {n: load_split(work / "spans" / f"span-{n}") for n in (1, 2, 3)}
    new_spans = {"shifted": spans[3], "unshifted": load_split(work / "unshifted")}

    def fresh():
        return compile_alexnet(build_alexnet(2), 1e-4)

    started = time.perf_counter()
    base = fresh()
    base_train = np.concatenate([spans[1]["train"][0], spans[2]["train"][0]])
    base_labels = np.concatenate([spans[1]["train"][1], spans[2]["train"][1]])
    base_steps, _ = train_until(
        base,
        (normalized(base_train, base_train), base_labels),
        (normalized(spans[2]["eval"][0], base_train), spans[2]["eval"][1]),
        seed=1,
    )
    weights = base.get_weights()

    results = {}
    for name, span in new_spans.items():
        train = (normalized(span["train"][0], span["train"][0]), span["train"][1])
        evaluation = (normalized(span["eval"][0], span["train"][0]), span["eval"][1])
        runs = {}
        for arm in ("scratch", "warm"):
            model = fresh()
            if arm == "warm":
                model.set_weights(weights)
            steps, curve = train_until(model, train, evaluation, seed=2)
            runs[arm] = {"steps": steps, "accuracy_every_5_steps": curve}
        results[name] = runs
    ratio = {
        name: runs["warm"]["steps"] / max(runs["scratch"]["steps"], EVAL_EVERY)
        for name, runs in results.items()
    }
    report(
        "continuous",
        {
            "warm_start_steps_ratio": ratio["shifted"],
            "warm_start_steps_ratio_unshifted": ratio["unshifted"],
            "scratch_steps_shifted": results["shifted"]["scratch"]["steps"],
            "warm_steps_shifted": results["shifted"]["warm"]["steps"],
        },
        {
            "runs": results,
            "base_model_steps": base_steps,
            "min_accuracy": MIN_ACCURACY,
            "eval_every_steps": EVAL_EVERY,
            "max_steps": MAX_STEPS,
            "images_per_class_per_span": PER_CLASS,
            "seconds": time.perf_counter() - started,
        },
    )


if __name__ == "__main__":
    main()

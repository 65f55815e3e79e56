"""How far the demo model's scores can be trusted, all measured on one model in one run.

Calibration: the expected calibration error (15 bins) of the eval split before and after
temperature scaling, as the pipeline's Evaluator reported it, and recomputed here from the
network's logits and the served probabilities; and the temperature fitted again here on the
held-out slice, with the prior on log T (the model's) and without it.

Unknown images: the demo eval split (in distribution) against real photos the model never
saw: the CIFAR-10 subset in ../shared/data/cifar10-subset less its ships (no bikes there),
and the real bike photos in ../shared/data/bikes-photos (drawn bikes are what it knows).
For four scores of one model, AUROC and the false-positive rate at 95% true-positive rate
(the share of foreign photos a threshold keeping 95% of eval images lets through):
max-softmax (Hendrycks and Gimpel, 2017) and energy (Liu et al., 2020) from the logits;
Mahalanobis on fc7 (the penultimate features), fitted here with the exported detector's code
on the same trained-on images; and the exported model's ood_score (Mahalanobis on conv1's
channel means). Then the share of foreign photos and of eval images the model's own
threshold (set on held-out train images) flags.

Latency: p50 of one-image predictions with the V1 body, through the exported signature,
against today's signature (softmax, class and score; no temperature, no distance) rebuilt
from the same weights, alternately in blocks.

The model is the demo preset's, from a `make demo` output root (--output-root), or pushed by
a demo run into a temporary folder (minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

# Beside the repository, as this workplace keeps them; --cifar and --photos name other copies.
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CIFAR, PHOTOS = SHARED / "cifar10-subset", SHARED / "bikes-photos"
IN_DISTRIBUTION_SHIP = "ship"  # a demo class: CIFAR's ships are not foreign


def demo_run(output_root: str | None) -> dict:
    """The summary of the newest run under `output_root` that pushed; else a new demo run's."""
    if output_root:
        summaries = sorted(Path(output_root, "runs").glob("*/summary.json"), reverse=True)
        for path in summaries:
            summary = json.loads(path.read_text())
            if summary.get("pushed"):
                return summary
        raise SystemExit(f"{output_root}: no run there pushed a model; run `make demo` first")
    from pipelines.config import build_config
    from pipelines.local_runner import run_pipeline

    root = tempfile.mkdtemp(prefix="trust-")
    summary = run_pipeline(build_config("demo", output_root=root))
    assert summary.pushed, "the demo run did not push a model"
    return json.loads(summary.model_dump_json())


def foreign_photos(folder: Path) -> list[bytes]:
    import tensorflow as tf

    if not folder.is_dir():
        raise SystemExit(f"{folder}: not found; pass --cifar with the CIFAR-10 subset's folder")
    names = (folder / "labels.txt").read_text().split()
    photos = []
    for name in ("train.tfrecord", "test.tfrecord"):
        for record in tf.data.TFRecordDataset(str(folder / name)).as_numpy_iterator():
            feature = tf.train.Example.FromString(record).features.feature
            if names[feature["label"].int64_list.value[0]] != IN_DISTRIBUTION_SHIP:
                photos.append(feature["image"].bytes_list.value[0])
    return photos


def bike_photos(folder: Path) -> list[bytes]:
    if not folder.is_dir():
        raise SystemExit(f"{folder}: not found; pass --photos with the bike photos' folder")
    return [path.read_bytes() for path in sorted(folder.glob("*/*/*")) if path.is_file()]


def network_outputs(
    model_dir: str, transform_dir: str, images: list[bytes], fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fc7's features and fc8's logits, the images prepared by the run's transform graph,
    and which of them the Trainer held out (for a train split)."""
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras as keras

    from contract.data import IMAGE_KEY
    from modules.dataset import is_held_out

    model = keras.models.load_model(model_dir, compile=False)
    network = keras.Model(model.inputs, [model.get_layer(n).output for n in ("fc7", "fc8")])
    transform = tft.TFTransformOutput(transform_dir)
    features, logits, held = [], [], []
    for start in range(0, len(images), 16):
        raw = {"image": tf.constant([[image] for image in images[start : start + 16]])}
        prepared = transform.transform_raw_features(raw, drop_unused_features=True)[IMAGE_KEY]
        fc7, fc8 = network(prepared, training=False)
        features.append(fc7.numpy())
        logits.append(fc8.numpy())
        held += [bool(is_held_out(image, fraction)) for image in prepared]
    return np.concatenate(features), np.concatenate(logits), np.array(held)


def served(model_dir: str, images: list[bytes]) -> list:
    from serving.served_model import ServedModel

    model = ServedModel(1, model_dir)
    return [
        answer
        for start in range(0, len(images), 16)
        for answer in model.predict(images[start : start + 16])
    ]


def fpr_at_95_tpr(known: np.ndarray, foreign: np.ndarray) -> float:
    """Scores: higher is stranger. The share of foreign images at or below the score that
    keeps 95% of known images."""
    return float(np.mean(foreign <= np.quantile(known, 0.95)))


def detectors(eval_set: dict, foreign_sets: dict[str, dict], train: dict) -> dict:
    """AUROC and FPR at 95% TPR of each score, eval images against each foreign set. Each set
    holds `fc7`, `logits` and the served `answers`."""
    from scipy.special import logsumexp, softmax
    from sklearn.metrics import roc_auc_score

    from modules.ood_detector import fit_detector

    fitted = ~train["held"]
    fc7 = fit_detector(train["fc7"][fitted], train["labels"][fitted], train["logits"].shape[1])
    scores = {  # higher is stranger for each
        "max_softmax": lambda s: 1 - softmax(s["logits"], axis=1).max(axis=1),
        "energy": lambda s: -logsumexp(s["logits"], axis=1),
        "mahalanobis_fc7": lambda s: fc7.scores(s["fc7"]).numpy(),
        "mahalanobis_conv1_means": lambda s: np.array([a.ood_score for a in s["answers"]]),
    }
    found = {}
    for name, score in scores.items():
        known = score(eval_set)
        for where, foreign_set in foreign_sets.items():
            foreign = score(foreign_set)
            labels = np.r_[np.zeros(len(known)), np.ones(len(foreign))]
            found[f"{name}_{where}_auroc"] = float(roc_auc_score(labels, np.r_[known, foreign]))
            found[f"{name}_{where}_fpr_at_95_tpr"] = fpr_at_95_tpr(known, foreign)
    return found


def todays_signature(model_dir: str, transform_dir: str, work: str) -> str:
    """The export as it was before calibration and unknown images, from the same weights:
    the network's softmax, its class and score."""
    import shutil

    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras as keras

    from contract import model_files, prediction
    from contract.data import IMAGE_KEY

    model = keras.models.load_model(model_dir, compile=False)
    model.tft_layer = tft.TFTransformOutput(transform_dir).transform_features_layer()
    names = tf.constant(Path(model_dir, model_files.CLASS_NAMES_FILE).read_text().split())

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=prediction.IMAGES_INPUT)])
    def serve(images):
        prepared = model.tft_layer({"image": tf.reshape(images, [-1, 1])})[IMAGE_KEY]
        probabilities = model(prepared, training=False)
        class_ids = tf.argmax(probabilities, axis=1)
        return {
            "probabilities": probabilities,
            "class_id": class_ids,
            "class_name": tf.gather(names, class_ids),
            "score": tf.reduce_max(probabilities, axis=1),
        }

    target = os.path.join(work, "today")
    model.save(target, save_format="tf", signatures={prediction.IMAGES_SIGNATURE: serve})
    labels = Path(target, model_files.CLASS_NAMES_FILE)
    labels.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(model_dir, model_files.CLASS_NAMES_FILE), labels)
    return target


def latency(model_dir: str, today_dir: str, image: bytes, blocks: int, calls: int) -> dict:
    """p50 of predict + V1 body for one image, each model in turn, `blocks` blocks each."""
    from contract.prediction import v1_body
    from serving.served_model import ServedModel

    models = {"with_trust": ServedModel(1, model_dir), "today": ServedModel(1, today_dir)}
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        for _ in range(20):
            json.dumps(v1_body(model.predict([image])))
    for _ in range(blocks):
        for name, model in models.items():
            for _ in range(calls):
                start = time.perf_counter()
                json.dumps(v1_body(model.predict([image])))
                times[name].append(time.perf_counter() - start)
    p50 = {name: statistics.median(values) * 1000 for name, values in times.items()}
    return {
        "p50_ms_with_trust": p50["with_trust"],
        "p50_ms_today": p50["today"],
        "p50_ms_difference": p50["with_trust"] - p50["today"],
        "calls_each": blocks * calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-root", help="a `make demo` output root (default: a new run)")
    parser.add_argument("--cifar", type=Path, default=CIFAR, help="the CIFAR-10 subset")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="the bike photos")
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()

    from common import report

    from contract.data import EVAL
    from modules.calibration import fit_temperature, reliability
    from modules.example_records import split_examples

    summary = demo_run(args.output_root)
    model_dir, transform_dir = summary["pushed_model_dir"], summary["lineage"]["transform_graph"]
    calibration = summary["training"]["calibration"]
    fraction = summary["training"]["hyperparameters"]["calibration_fraction"]

    def labelled(split: str) -> dict:
        found = list(split_examples(summary["lineage"]["examples"], split))
        images = [feature["image"].bytes_list.value[0] for feature in found]
        labels = np.array([feature["label"].int64_list.value[0] for feature in found])
        fc7, logits, held = network_outputs(model_dir, transform_dir, images, fraction)
        return {"images": images, "labels": labels, "fc7": fc7, "logits": logits, "held": held}

    def unlabelled(images: list[bytes]) -> dict:
        fc7, logits, _ = network_outputs(model_dir, transform_dir, images, fraction)
        return {
            "images": images,
            "fc7": fc7,
            "logits": logits,
            "answers": served(model_dir, images),
        }

    train, known = labelled("train"), labelled(EVAL)
    known["answers"] = served(model_dir, known["images"])
    foreign = {
        "cifar": unlabelled(foreign_photos(args.cifar)),
        "photos": unlabelled(bike_photos(args.photos)),
    }

    from scipy.special import softmax

    served_probabilities = np.array([answer.probabilities for answer in known["answers"]])
    held_logits, held_labels = train["logits"][train["held"]], train["labels"][train["held"]]
    with_prior = fit_temperature(held_logits, held_labels).value
    without_prior = fit_temperature(held_logits, held_labels, prior_sd=float("inf")).value
    metrics = summary["metrics"]
    with tempfile.TemporaryDirectory() as work:
        today = todays_signature(model_dir, transform_dir, work)
        timing = latency(model_dir, today, known["images"][0], args.blocks, args.calls)
    figures = {
        "ece_before_evaluator": metrics["calibration_error_uncalibrated"],
        "ece_after_evaluator": metrics["calibration_error"],
        "ece_after_over_before": metrics["calibration_error"]
        / metrics["calibration_error_uncalibrated"],
        "ece_before_here": reliability(
            softmax(known["logits"], axis=1), known["labels"]
        ).expected_calibration_error,
        "ece_after_here": reliability(
            served_probabilities, known["labels"]
        ).expected_calibration_error,
        "temperature": calibration["temperature"],
        "temperature_refitted_with_prior": with_prior,
        "temperature_without_prior": without_prior,
        **detectors(known, foreign, train),
        **{
            f"flagged_at_threshold_{where}": float(np.mean([a.unknown for a in s["answers"]]))
            for where, s in {"eval": known, **foreign}.items()
        },
        **timing,
    }
    details = {
        "eval_images": len(known["images"]),
        "held_out_images": int(train["held"].sum()),
        "held_out_accuracy": float((held_logits.argmax(axis=1) == held_labels).mean()),
        "eval_accuracy": metrics["accuracy"],
        "chance_accuracy": metrics["chance_accuracy"],
        "foreign_images": {where: len(s["images"]) for where, s in foreign.items()},
        "foreign_sources": {
            "cifar": f"{args.cifar} (every class but {IN_DISTRIBUTION_SHIP})",
            "photos": str(args.photos),
        },
        "calibration": calibration,
        "model_dir": model_dir,
        "run_id": summary["run_id"],
    }
    report("trust", figures, details)


if __name__ == "__main__":
    main()

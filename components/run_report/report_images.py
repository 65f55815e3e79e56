"""The report's pictures of eval images: the ones the model got wrong, and where it looked.

Both use the candidate model as the Trainer exported it. The gallery asks its
`serving_default` signature about each eval image's bytes, as a client would
(serving/served_model.py). The saliency pictures are Grad-CAM (modules/grad_cam.py).
"""

from __future__ import annotations

import base64
import dataclasses
import io

import numpy as np
from matplotlib import colormaps
from PIL import Image

from contract.data import EVAL, PATH_KEY
from modules.example_records import split_examples
from modules.grad_cam import grad_cam
from modules.transform import decode_and_resize
from serving.layout import read_class_names
from serving.served_model import ServedModel

GALLERY_LIMIT = 12
SALIENCY_IMAGES = 4
THUMBNAIL = 112
BATCH = 32


@dataclasses.dataclass(frozen=True)
class EvalImage:
    path: str
    true_class: str
    predicted_class: str
    score: float
    png_base64: str  # a thumbnail (gallery) or the saliency overlay


@dataclasses.dataclass(frozen=True)
class Features:
    """Where an example keeps its image and its label, and the class names in label order."""

    image: str
    label: str
    class_names: list[str]


def _eval_examples(examples_uri: str, features: Features) -> list[dict]:
    found = []
    for feature in split_examples(examples_uri, EVAL):
        path = feature[PATH_KEY].bytes_list.value if PATH_KEY in feature else []
        found.append(
            {
                "image": feature[features.image].bytes_list.value[0],
                "class": features.class_names[feature[features.label].int64_list.value[0]],
                "path": path[0].decode() if path else f"eval example {len(found) + 1}",
            }
        )
    return found


def _png(pixels: np.ndarray, size: int | None = None) -> str:
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if size:
        image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def misclassified(
    model_dir: str, examples_uri: str, features: Features, image_size: int
) -> tuple[list[EvalImage], int, int]:
    """Up to GALLERY_LIMIT wrongly classified eval images, the number wrong, and the total."""
    examples = _eval_examples(examples_uri, features)
    model = ServedModel(0, model_dir)
    images = [example["image"] for example in examples]
    predictions = [
        guess
        for start in range(0, len(images), BATCH)
        for guess in model.predict(images[start : start + BATCH])
    ]
    wrong = [
        (example, guess)
        for example, guess in zip(examples, predictions, strict=True)
        if guess.class_name != example["class"]
    ]
    gallery = [
        EvalImage(
            example["path"],
            example["class"],
            guess.class_name,
            guess.score,
            _png(decode_and_resize(example["image"], image_size).numpy(), THUMBNAIL),
        )
        for example, guess in sorted(wrong, key=lambda pair: -pair[1].score)[:GALLERY_LIMIT]
    ]
    return gallery, len(wrong), len(examples)


def saliency(
    model_dir: str, transform_dir: str, examples_uri: str, features: Features, image_size: int
) -> list[EvalImage]:
    """Grad-CAM overlays for a few eval images, taken from every class in turn."""
    examples = _eval_examples(examples_uri, features)
    by_class: dict[str, list[dict]] = {}
    for example in examples:
        by_class.setdefault(example["class"], []).append(example)
    chosen = [
        group[index]
        for index in range(SALIENCY_IMAGES)
        for group in by_class.values()
        if index < len(group)
    ][:SALIENCY_IMAGES]
    if not chosen:
        return []
    maps, predicted, scores = grad_cam(
        model_dir,
        transform_dir,
        features.image,
        [example["image"] for example in chosen],
        image_size,
    )
    names = read_class_names(model_dir)
    heat = colormaps["jet"]
    overlays = []
    for example, cam, label, score in zip(chosen, maps, predicted, scores, strict=True):
        picture = decode_and_resize(example["image"], image_size).numpy()
        blended = 0.55 * picture + 0.45 * 255 * heat(cam)[..., :3]
        overlays.append(
            EvalImage(example["path"], example["class"], names[label], float(score), _png(blended))
        )
    return overlays

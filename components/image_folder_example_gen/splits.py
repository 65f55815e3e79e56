"""Which split each accepted image goes to, and the interleaving of classes in the files."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from collections.abc import Iterable, Iterator

from apache_beam.metrics import Metrics

from components.image_folder_example_gen.layout import METRICS, ImageFile
from contract.data import EVAL, TRAIN

OLDER_EVAL_COUNTER = "older_eval_in_train"
# Positions in a class that share one grouping key: fewer keys, a cheaper shuffle.
_POSITIONS_PER_KEY = 16


def path_fraction(relative_path: str) -> float:
    """A deterministic value in [0, 1) from the relative path, stable across machines."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(images: Iterable[ImageFile], eval_fraction: float) -> list[ImageFile]:
    """Hash split of one class's images by path; a class with 2+ images gets both splits.
    Copies of one image (the same bytes) all take the split of the copy ranked first."""
    ranked = sorted(images, key=lambda image: path_fraction(image.relative_path))
    eval_count = sum(path_fraction(image.relative_path) < eval_fraction for image in ranked)
    if len(ranked) >= 2:
        eval_count = min(max(eval_count, 1), len(ranked) - 1)
    split_of: dict[str, str] = {}
    for index, image in enumerate(ranked):
        split_of.setdefault(
            image.digest or image.relative_path, EVAL if index < eval_count else TRAIN
        )
    return [
        dataclasses.replace(image, split=split_of[image.digest or image.relative_path])
        for image in ranked
    ]


def by_class(batch: list[ImageFile]) -> Iterator[tuple[tuple[int, str], list[ImageFile]]]:
    """The batch's images grouped by span (-1: no spans) and class."""
    classes: dict[tuple[int, str], list[ImageFile]] = collections.defaultdict(list)
    for image in batch:
        span = -1 if image.span is None else image.span
        classes[(span, image.class_name)].append(image)
    yield from classes.items()


def split_class(
    class_batches: tuple[tuple[int, str], Iterable[list[ImageFile]]],
    eval_fraction: float,
    eval_span: int | None,
) -> Iterator[tuple[tuple[str, int], list[ImageFile]]]:
    """Splits one class of one span, then keys its images by split and position.

    Split folders decide the split where the span has them, else a hash of the path. Only
    the eval span's eval images are kept for eval; older spans' eval images are trained on.
    Grouping by position puts the n-th images of every class together, so the classes
    are interleaved in the written files instead of following one another.
    """
    (span, _), batches = class_batches
    images = [image for batch in batches for image in batch]
    if all(image.split for image in images):
        images.sort(key=lambda image: path_fraction(image.relative_path))
    else:
        images = assign_splits(images, eval_fraction)
    if eval_span is not None and span != eval_span:
        older_eval = sum(image.split == EVAL for image in images)
        Metrics.counter(METRICS, OLDER_EVAL_COUNTER).inc(older_eval)
        images = [dataclasses.replace(image, split=TRAIN) for image in images]
    for split in sorted({image.split for image in images}):
        in_split = [image for image in images if image.split == split]
        for start in range(0, len(in_split), _POSITIONS_PER_KEY):
            key = (split, start // _POSITIONS_PER_KEY)
            yield key, in_split[start : start + _POSITIONS_PER_KEY]

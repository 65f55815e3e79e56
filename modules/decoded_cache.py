"""Whether the Trainer keeps the decoded images in memory after the first epoch.

A decoded, normalized 227x227 image is 227 * 227 * 3 float32 values, about 600 KB, so a
cache of 20,000 images would need 12 GB. The cache is kept only when the train and eval
splits fit the memory budget; otherwise each epoch decodes the images again, which costs
little next to training AlexNet on them.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from modules.example_records import record_dataset

BYTES_PER_VALUE = 4  # float32


@dataclasses.dataclass(frozen=True)
class CachePlan:
    in_memory: bool
    note: str


def count_records(file_patterns: list[str]) -> int:
    """Records in the TFRecord files, counted in TensorFlow's reader without parsing them."""
    files = [name for pattern in file_patterns for name in tf.io.gfile.glob(pattern)]
    dataset = record_dataset(files)
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def plan_cache(
    file_patterns: list[str], image_size: int, enabled: bool, memory_mb: int
) -> CachePlan:
    if not enabled:
        return CachePlan(False, "off (cache_decoded is false)")
    images = count_records(file_patterns)
    needed_mb = images * image_size * image_size * 3 * BYTES_PER_VALUE / 2**20
    if needed_mb > memory_mb:
        return CachePlan(
            False,
            f"off: {images} decoded images need {needed_mb:,.0f} MB, over trainer_memory_mb "
            f"{memory_mb:,}; each epoch decodes them again",
        )
    return CachePlan(True, f"in memory: {images} decoded images, {needed_mb:,.0f} MB")

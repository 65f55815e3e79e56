"""The records of an Examples artifact's split as TFX writes them: the files under
Split-<name>/, gzipped when they end in ".gz"."""

from __future__ import annotations

import os
from collections.abc import Iterator

import tensorflow as tf


def record_dataset(files: list[str]) -> tf.data.TFRecordDataset:
    """The files' records, with the compression their suffix says (TFX's readers do the same)."""
    compression = "GZIP" if files and all(name.endswith(".gz") for name in files) else None
    return tf.data.TFRecordDataset(files, compression_type=compression)


def split_examples(examples_uri: str, split: str) -> Iterator:
    """Each tf.Example of the split, as its feature map, in file order."""
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    for record in record_dataset(files).as_numpy_iterator():
        yield tf.train.Example.FromString(record).features.feature

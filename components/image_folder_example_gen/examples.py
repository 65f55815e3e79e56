"""The second pass: each accepted image's bytes, read again, as a tf.Example."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import tensorflow as tf
from apache_beam.metrics import Metrics

from components.image_folder_example_gen.checks import read_file
from components.image_folder_example_gen.layout import METRICS, NO_CLASS, ImageFile
from contract.data import CLASS_NAME_KEY, HEIGHT_KEY, IMAGE_KEY, LABEL_KEY, PATH_KEY, WIDTH_KEY


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def to_examples(
    position: tuple[tuple[str, int], Iterable[list[ImageFile]]], root: str, classes: list[str]
) -> Iterator[bytes]:
    """Serialized examples of one position's images, one image of each class in turn."""
    (split, _), runs = position
    runs = list(runs)
    for run in runs:
        Metrics.counter(METRICS, f"class_{run[0].class_name}").inc(len(run))
    Metrics.counter(METRICS, f"examples_{split}").inc(sum(len(run) for run in runs))
    for row in itertools.zip_longest(*runs):
        yield from (to_example(image, root, classes) for image in row if image)


def to_example(image: ImageFile, root: str, classes: list[str]) -> bytes:
    features = {
        IMAGE_KEY: _bytes_feature(read_file(root, image.relative_path)),
        PATH_KEY: _bytes_feature(image.relative_path.encode()),
        HEIGHT_KEY: _int_feature(image.height),
        WIDTH_KEY: _int_feature(image.width),
    }
    if image.class_name != NO_CLASS:
        features[LABEL_KEY] = _int_feature(classes.index(image.class_name))
        features[CLASS_NAME_KEY] = _bytes_feature(image.class_name.encode())
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()

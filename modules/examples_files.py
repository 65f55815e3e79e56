"""What our ExampleGens write beside the examples: labels, the input record, the spans."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from contract.data import INPUT_FILE, LABELS_FILE, SPANS_FILE


def _examples_file(train_files: list[str], name: str) -> str:
    # train_files look like <examples uri>/Split-train/*
    return os.path.join(os.path.dirname(os.path.dirname(train_files[0])), name)


def resolve_class_names(
    train_files: list[str], class_names: list[str] | None, num_classes: int | None
) -> list[str]:
    """Names from the config, else ImageFolderExampleGen's labels.txt, else label indices."""
    if class_names:
        return list(class_names)
    labels = _examples_file(train_files, LABELS_FILE)
    if tf.io.gfile.exists(labels):
        with tf.io.gfile.GFile(labels) as handle:
            return [line.strip() for line in handle if line.strip()]
    if num_classes:
        return [str(index) for index in range(num_classes)]
    raise ValueError(
        "The number of classes is unknown: the examples carry no labels.txt. Set class_names "
        "or num_classes in the pipeline config."
    )


def read_input_record(train_files: list[str]) -> dict[str, Any] | str:
    """What the examples were made from (our ExampleGens' INPUT_FILE); for others (TFX's
    ImportExampleGen, materialized examples), their URI."""
    path = _examples_file(train_files, INPUT_FILE)
    if not tf.io.gfile.exists(path):
        return _examples_file(train_files, "")
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)


def read_spans(train_files: list[str]) -> list[int] | None:
    """The spans the examples hold (ExampleGen's spans.json); None for data without spans."""
    path = _examples_file(train_files, SPANS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as handle:
        return json.load(handle)["spans"]

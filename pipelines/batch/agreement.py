"""A batch job's output read back, and how its predictions agree with the labels."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Sequence
from typing import Any

from apache_beam.io.filesystems import FileSystems


def read_lines(out: str) -> list[dict[str, Any]]:
    """The job's JSON lines (Beam's file systems: local, gs://, s3://; .gz decompressed)."""
    with FileSystems.open(out) as handle:
        return [json.loads(line) for line in io.TextIOWrapper(handle) if line.strip()]


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How the predictions of labelled images compare with their labels."""

    labelled: int
    accuracy: float
    classes: list[str]
    matrix: list[list[int]]  # rows: true class; columns: predicted class


def agreement(lines: list[dict[str, Any]], class_names: Sequence[str]) -> Agreement | None:
    """Accuracy and the confusion matrix over the lines with a label; None without any."""
    pairs = [(line["label"], line["class_name"]) for line in lines if "label" in line]
    if not pairs:
        return None
    classes = list(class_names) + sorted({label for label, _ in pairs} - set(class_names))
    matrix = [[0] * len(classes) for _ in classes]
    for label, predicted in pairs:
        matrix[classes.index(label)][classes.index(predicted)] += 1
    correct = sum(label == predicted for label, predicted in pairs)
    return Agreement(len(pairs), correct / len(pairs), classes, matrix)


def format_matrix(found: Agreement) -> str:
    width = max(8, *(len(name) + 1 for name in found.classes))
    header = " " * width + "".join(f"{name:>{width}}" for name in found.classes)
    rows = [
        f"{name:<{width}}" + "".join(f"{count:>{width}}" for count in counts)
        for name, counts in zip(found.classes, found.matrix, strict=True)
    ]
    return "\n".join(["rows: true class, columns: predicted", header, *rows])

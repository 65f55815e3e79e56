"""The report's charts, drawn with matplotlib as base64 PNGs."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402

from modules.architecture import alexnet_rows, draw_diagram  # noqa: E402
from modules.calibration import Reliability  # noqa: E402


def png(fig: plt.Figure) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def per_class_chart(per_class: dict[str, dict[str, float | None]]) -> str:
    names = list(per_class)
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(names) + 2), 3))
    positions = range(len(names))
    for offset, metric, colour in ((-0.2, "precision", "#4c72b0"), (0.2, "recall", "#dd8452")):
        values = [per_class[name][metric] or 0.0 for name in names]
        ax.bar([p + offset for p in positions], values, width=0.4, label=metric, color=colour)
    ax.set_xticks(list(positions), names, rotation=30 if len(names) > 4 else 0)
    ax.set_ylim(0, 1.05)
    ax.legend(loc="lower right")
    ax.set_title("Per-class precision and recall (eval split)")
    return png(fig)


def confusion_chart(matrix: list[list[int]], classes: list[str]) -> str:
    fig, ax = plt.subplots(figsize=(max(3.5, 0.6 * len(classes) + 2),) * 2)
    ax.imshow(matrix, cmap="Blues")
    for row, counts in enumerate(matrix):
        for column, count in enumerate(counts):
            ax.text(
                column,
                row,
                str(count),
                ha="center",
                va="center",
                color="white" if count > max(map(max, matrix)) / 2 else "black",
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 4 else 0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Confusion matrix (eval split)")
    return png(fig)


def training_chart(history: dict[str, Any]) -> str:
    epochs = range(1, len(history["loss"]) + 1)
    fig, (loss, accuracy) = plt.subplots(1, 2, figsize=(8, 3))
    for axis, metric in ((loss, "loss"), (accuracy, "accuracy")):
        axis.plot(epochs, history[metric], marker="o", label="train")
        if any(v is not None for v in history[f"val_{metric}"]):
            axis.plot(epochs, history[f"val_{metric}"], marker="o", label="eval")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    return png(fig)


def architecture_chart(num_classes: int, image_size: int, width_multiplier: float) -> str:
    rows = alexnet_rows(num_classes, image_size, width_multiplier)
    buffer = io.BytesIO()
    draw_diagram(rows, buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def reliability_chart(bins: dict[str, list[list[float]]]) -> str:
    """Accuracy against confidence per bin, before and after calibration: on the diagonal, a
    score means what it says."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", label="perfectly calibrated")
    for state, colour in (("uncalibrated", "#dd8452"), ("calibrated", "#4c72b0")):
        if state not in bins:
            continue
        reliability = Reliability.from_sums(bins[state])
        filled = reliability.counts > 0
        error = reliability.expected_calibration_error
        ax.plot(
            reliability.confidence[filled],
            reliability.accuracy[filled],
            marker="o",
            color=colour,
            label=f"{state} (ECE {error:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Reliability (eval split, 15 bins)")
    return png(fig)

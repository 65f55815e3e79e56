"""Layer table and diagram of an AlexNet built by modules.model."""

from __future__ import annotations

import dataclasses
import os
from typing import BinaryIO

import tf_keras as keras

from modules.model import LocalResponseNormalization, build_alexnet


@dataclasses.dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    kernel: str  # "11x11/4" for conv and pool, "" otherwise.
    output_shape: tuple[int, ...]
    params: int


def _kind(layer: keras.layers.Layer) -> str:
    if isinstance(layer, LocalResponseNormalization):
        return "LRN"
    if isinstance(layer, keras.layers.Conv2D):
        return "Conv2D+ReLU"
    if isinstance(layer, keras.layers.Dense):
        return "Dense+ReLU" if layer.activation is keras.activations.relu else "Dense"
    if isinstance(layer, keras.layers.Activation):
        return "Softmax"
    return type(layer).__name__.replace("MaxPooling2D", "MaxPool").replace("InputLayer", "Input")


def _kernel(layer: keras.layers.Layer) -> str:
    if isinstance(layer, keras.layers.Conv2D):
        return f"{layer.kernel_size[0]}x{layer.kernel_size[1]}/{layer.strides[0]}"
    if isinstance(layer, keras.layers.MaxPooling2D):
        return f"{layer.pool_size[0]}x{layer.pool_size[1]}/{layer.strides[0]}"
    return ""


def layer_rows(model: keras.Model) -> list[LayerRow]:
    rows = []
    for layer in model.layers:
        shape = (
            layer.output_shape[0] if isinstance(layer.output_shape, list) else layer.output_shape
        )
        rows.append(
            LayerRow(
                layer.name, _kind(layer), _kernel(layer), tuple(shape[1:]), layer.count_params()
            )
        )
    return rows


def alexnet_rows(num_classes: int, image_size: int, width_multiplier: float) -> list[LayerRow]:
    """The layers of the AlexNet these settings build (for the CLI and the run report)."""
    return layer_rows(build_alexnet(num_classes, image_size, width_multiplier))


def format_table(rows: list[LayerRow]) -> str:
    header = f"{'layer':<16}{'kind':<14}{'kernel/stride':<15}{'output shape':<18}{'params':>12}"
    lines = [header, "-" * len(header)]
    for row in rows:
        shape = "x".join(str(dim) for dim in row.output_shape)
        lines.append(f"{row.name:<16}{row.kind:<14}{row.kernel:<15}{shape:<18}{row.params:>12,}")
    lines.append("-" * len(header))
    lines.append(f"{'total parameters':<63}{sum(row.params for row in rows):>12,}")
    return "\n".join(lines)


_COLOURS = {
    "Conv2D+ReLU": "#4c72b0",
    "LRN": "#dd8452",
    "MaxPool": "#55a868",
    "Dense+ReLU": "#c44e52",
    "Dense": "#8172b3",
    "Softmax": "#8172b3",
}
_LIGHT = "#dddddd"


def draw_diagram(rows: list[LayerRow], path: str | BinaryIO) -> None:
    """Draws the layer stack, one box per layer, with output sizes and filter counts."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    shown = [row for row in rows if row.kind != "Flatten"]
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(shown) + 1.2))
    for position, row in enumerate(reversed(shown)):
        colour = _COLOURS.get(row.kind, _LIGHT)
        text_colour = "black" if colour == _LIGHT else "white"
        ax.barh(position, 1.0, left=0, color=colour, edgecolor="black", height=0.8)
        shape = "x".join(str(dim) for dim in row.output_shape)
        label = f"{row.name}  {row.kind} {row.kernel}".rstrip()
        ax.text(
            0.02,
            position,
            label,
            va="center",
            ha="left",
            fontsize=9,
            color=text_colour,
            weight="bold",
        )
        detail = shape + (f"   {row.params:,} params" if row.params else "")
        ax.text(0.98, position, detail, va="center", ha="right", fontsize=9, color=text_colour)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.axis("off")
    total = sum(row.params for row in rows)
    ax.set_title(f"AlexNet: input at top, output at bottom ({total:,} parameters)", fontsize=11)
    fig.tight_layout()
    if isinstance(path, str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)

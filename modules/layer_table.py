"""AlexNet's layers as data, and the input sizes they accept, without TensorFlow.

`modules/model.py` builds the network from this table; the config checks an image size
against it before TensorFlow is loaded.
"""

from __future__ import annotations

import dataclasses

CANONICAL_IMAGE_SIZE = 227


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    name: str
    filters: int
    kernel: int
    stride: int
    padding: str
    lrn: bool
    pool: bool


# The canonical widths; width_multiplier scales filters and FC units.
CONV_LAYERS = (
    ConvSpec("conv1", 96, 11, 4, "valid", lrn=True, pool=True),
    ConvSpec("conv2", 256, 5, 1, "same", lrn=True, pool=True),
    ConvSpec("conv3", 384, 3, 1, "same", lrn=False, pool=False),
    ConvSpec("conv4", 384, 3, 1, "same", lrn=False, pool=False),
    ConvSpec("conv5", 256, 3, 1, "same", lrn=False, pool=True),
)
FC_UNITS = (4096, 4096)
POOL_SIZE = 3
POOL_STRIDE = 2


def _valid_out(size: int, window: int, stride: int) -> int:
    return (size - window) // stride + 1


def feature_map_sizes(image_size: int) -> list[int]:
    """Spatial size after each conv and pool stage, in layer order."""
    sizes = []
    size = image_size
    for spec in CONV_LAYERS:
        size = _valid_out(size, spec.kernel, spec.stride) if spec.padding == "valid" else size
        sizes.append(size)
        if spec.pool:
            size = _valid_out(size, POOL_SIZE, POOL_STRIDE)
            sizes.append(size)
    return sizes


def min_image_size() -> int:
    """Smallest input whose conv/pool chain still leaves a 1x1 feature map."""
    size = 1
    while min(feature_map_sizes(size)) < 1:
        size += 1
    return size


def validate_arguments(
    num_classes: int, image_size: int, width_multiplier: float, dropout: float
) -> None:
    """Raises ValueError naming the bad argument, before any TensorFlow work."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    smallest = min_image_size()
    if image_size < smallest:
        raise ValueError(
            f"image_size {image_size} is too small for AlexNet's stride-4 conv1 and three "
            f"3x3/2 max pools: the smallest input that leaves a feature map is "
            f"{smallest}x{smallest} (canonical: {CANONICAL_IMAGE_SIZE})."
        )
    if not 0 < width_multiplier <= 4:
        raise ValueError(f"width_multiplier must be in (0, 4], got {width_multiplier}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")


def scaled(units: int, width_multiplier: float) -> int:
    return max(1, round(units * width_multiplier))

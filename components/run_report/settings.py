"""What the report needs of the pipeline config."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ReportSettings:
    image_feature: str
    label_feature: str
    image_size: int  # for the architecture diagram and the eval images
    width_multiplier: float

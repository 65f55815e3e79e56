"""The drift check's thresholds, a section of the pipeline config (`drift:` in YAML)."""

from __future__ import annotations

import dataclasses

from modules.hyperparameters import SettingError, check_known_keys


@dataclasses.dataclass(frozen=True)
class DriftThresholds:
    """Above these, a difference between the new data and the served model's is drift."""

    # The largest change in any one class's share of the examples.
    label_l_infinity: float = 0.2
    # Jensen-Shannon divergence of the image height and width distributions (0 to 1).
    size_js_divergence: float = 0.2
    # The largest change in any one image format's share (JPEG, PNG, ...).
    format_l_infinity: float = 0.2

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise SettingError(field.name, f"must be in (0, 1], got {value!r}.")

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> DriftThresholds:
        check_known_keys(cls, values, "drift threshold")
        return cls(**values)

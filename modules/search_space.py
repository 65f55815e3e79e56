"""The Tuner's search space, a section of the pipeline config (`search_space:` in YAML).

Each field lists the values a trial may take for the hyperparameter of the same name; a
field with one value is held fixed. The Tuner declares one KerasTuner choice per field
(modules/tuner.py), and the Trainer trains with the best trial's values.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from modules.hyperparameters import Hyperparameters, SettingError, check_known_keys


def _choices(*values: Any) -> Any:
    return dataclasses.field(default_factory=lambda: list(values))


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    learning_rate: list[float] = _choices(1e-4, 3e-4, 1e-3)
    dropout: list[float] = _choices(0.3, 0.5)
    batch_size: list[int] = _choices(16, 32)
    optimizer: list[str] = _choices("adam")  # add "sgd" to search the paper's optimizer too

    def __post_init__(self) -> None:
        for name, values in self.choices().items():
            if not isinstance(values, list) or not values:
                raise SettingError(
                    name, f"needs a list of one or more values to try, got {values!r}."
                )
            if len(set(values)) != len(values):
                raise SettingError(name, f"lists a value twice: {values!r}.")
            for value in values:
                try:  # each value must make valid Hyperparameters on its own
                    Hyperparameters(**{name: value})
                except SettingError as error:
                    raise SettingError(name, f"{value!r} cannot be tried: {error.reason}") from None

    def choices(self) -> dict[str, list[Any]]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @property
    def size(self) -> int:
        """How many distinct combinations the space holds."""
        return math.prod(len(values) for values in self.choices().values())

    def to_dict(self) -> dict[str, list[Any]]:
        return self.choices()

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchSpace:
        check_known_keys(cls, values, "search_space field")
        return cls(**values)

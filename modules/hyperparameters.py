"""The training hyperparameters, declared once.

The pipeline config holds them as its `training` section, the CLI makes one flag per field,
the pipeline passes them whole in the Trainer's `custom_config`, and the Trainer reads them
back here. A new hyperparameter is one field below.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modules.layer_table import validate_arguments

OPTIMIZERS = ("adam", "sgd")


class SettingError(ValueError):
    """A setting is wrong or unknown; `field` names it (None: an unknown key)."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def _field(default: Any, help_text: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    image_size: int = _field(227, "Square input size of the network (canonical: 227).")
    width_multiplier: float = _field(1.0, "Scales every conv filter count and FC width.")
    dropout: float = _field(0.5, "Dropout rate after fc6 and fc7.")
    batch_size: int = _field(32, "Images per training step.")
    epochs: int = _field(4, "Training epochs.")
    steps_per_epoch: int = _field(30, "Training steps per epoch.")
    eval_steps: int = _field(10, "Validation batches after each epoch.")
    learning_rate: float = _field(1e-4, "The optimizer's learning rate.")
    optimizer: str = _field(
        "adam", "adam (the seed's), or sgd: SGD with momentum 0.9 (the paper's)."
    )
    seed: int = _field(0, "Seed for weights, shuffling and augmentation.")
    materialize: bool = _field(
        False,
        "Transform writes normalized tensors (about 600 KB per 227x227 image); otherwise "
        "the Trainer applies the transform graph as it reads raw examples.",
    )
    cache_decoded: bool = _field(
        True, "Keep decoded, normalized images in memory after the first epoch."
    )
    calibration_fraction: float = _field(
        0.1,
        "Share of the train split held out from training, to fit the temperature of the "
        "probabilities and the unknown-image threshold.",
    )
    ood_keep: float = _field(
        0.95, "Share of held-out images the unknown-image threshold keeps as known."
    )

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, field.name, float(value))
            elif not isinstance(value, _TYPES[field.type]) or (
                field.type != "bool" and isinstance(value, bool)
            ):
                raise SettingError(field.name, f"expected {field.type}, got {value!r}.")
        for name in ("batch_size", "steps_per_epoch", "eval_steps"):
            if getattr(self, name) < 1:
                raise SettingError(name, f"must be a positive integer, got {getattr(self, name)}.")
        if self.epochs < 1:
            raise SettingError("epochs", f"must be 1 or more, got {self.epochs}.")
        if self.learning_rate <= 0:
            raise SettingError("learning_rate", f"must be positive, got {self.learning_rate}.")
        if not 0 <= self.calibration_fraction <= 0.5:
            raise SettingError(
                "calibration_fraction",
                f"must be between 0 and 0.5, got {self.calibration_fraction}.",
            )
        if not 0.5 <= self.ood_keep < 1:
            raise SettingError(
                "ood_keep", f"must be at least 0.5 and below 1, got {self.ood_keep}."
            )
        if self.optimizer not in OPTIMIZERS:
            raise SettingError(
                "optimizer", f"must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}."
            )
        try:
            validate_arguments(2, self.image_size, self.width_multiplier, self.dropout)
        except ValueError as error:
            # The architecture's messages begin with the argument's name.
            raise SettingError(str(error).split()[0], str(error)) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_values(self, values: dict[str, Any]) -> Hyperparameters:
        """These hyperparameters with some replaced (a Tuner trial's), checked again."""
        check_known_keys(type(self), values, "hyperparameter")
        return dataclasses.replace(self, **values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Hyperparameters:
        """Fails on a key that is not a hyperparameter, rather than dropping it."""
        check_known_keys(cls, values, "hyperparameter")
        return cls(**values)


def check_known_keys(cls: type, values: dict[str, Any], what: str) -> None:
    """Raises, naming them, if `values` has keys that are not fields of dataclass `cls`."""
    known = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SettingError(
            None, f"unknown {what}(s) {', '.join(unknown)}; known: {', '.join(known)}."
        )


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}

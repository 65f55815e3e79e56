"""What the Trainer (and each Tuner trial) needs beyond TFX's own arguments."""

from __future__ import annotations

import dataclasses
from typing import Any

from modules.hyperparameters import Hyperparameters, check_known_keys


@dataclasses.dataclass(frozen=True)
class TrainerInputs:
    """Passed whole in the Trainer's `custom_config`."""

    hyperparameters: Hyperparameters
    image_feature: str  # raw feature holding the encoded image
    class_names: list[str] | None = None  # None: ExampleGen's labels.txt
    num_classes: int | None = None
    warm_start: bool = True  # from the served model (fn_args.base_model), when it fits
    memory_mb: int = 4096  # for the decoded-image cache (modules/decoded_cache.py)
    # Replicas of a multi-worker training (components/multi_worker_trainer/); 1: in-process.
    train_workers: int = 1
    # On Kubeflow: the TFJob's settings (components/multi_worker_trainer/tfjob.py); None:
    # the replicas run as local processes.
    tfjob: dict[str, Any] | None = None

    def to_custom_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(cls, values: dict[str, Any]) -> TrainerInputs:
        """Fails on a key it does not know, rather than dropping it."""
        check_known_keys(cls, values, "Trainer custom_config key")
        hyperparameters = Hyperparameters.from_dict(values["hyperparameters"])
        return cls(**{**values, "hyperparameters": hyperparameters})

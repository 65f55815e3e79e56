"""One typed configuration for the local and the Kubeflow runners.

Precedence: preset defaults < YAML file < CLI flags.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Literal

import yaml

DataFormat = Literal["folder", "tfrecord"]
PRESETS = ("tiny", "demo", "imagenet")
DEFAULT_OUTPUT_ROOT = "outputs"


def _absolute(path: str) -> str:
    """Local paths become absolute (TFX records artifact URIs); URIs like gs:// stay."""
    return path if "://" in path else os.path.abspath(path)


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field."""


def _check_schema(path: str) -> None:
    """Fails now, naming the field, rather than when the schema import runs.

    The pipeline reads the file anyway when it is built (its digest is the import's cache
    key), so a URI is checked here too.
    """
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    try:
        with tf.io.gfile.GFile(path) as handle:
            text_format.Parse(handle.read(), schema_pb2.Schema())
    except tf.errors.OpError as error:
        raise ConfigError(f"schema_file: cannot read {path}: {error.message}.") from error
    except text_format.ParseError as error:
        raise ConfigError(
            f"schema_file: {path} is not a text-format TFMD Schema: {error}. Start from the "
            f"schema.pbtxt a run's SchemaGen wrote and edit it."
        ) from error


@dataclasses.dataclass
class PipelineConfig:
    preset: str = "demo"
    pipeline_name: str = "alexnet"
    model_name: str = "alexnet"

    # Data.
    data: str | None = None  # None: the demo dataset under the output root.
    data_format: DataFormat = "folder"
    image_feature: str = "image"  # TFRecord input: feature holding encoded image bytes.
    label_feature: str = "label"  # TFRecord input: int64 class index.
    eval_fraction: float = 0.2
    num_classes: int | None = None  # None: taken from the data.
    # TFRecord input: names in label order. Image folders carry their own (folder names).
    class_names: list[str] | None = None
    # A curated schema (schema.pbtxt) the data is validated against; None: inferred from it.
    schema_file: str | None = None

    # Model and training.
    image_size: int = 227
    width_multiplier: float = 1.0
    dropout: float = 0.5
    batch_size: int = 32
    epochs: int = 4
    steps_per_epoch: int = 50
    eval_steps: int = 10
    learning_rate: float = 1e-4
    seed: int = 0  # weights, shuffling and augmentation
    # Transform writes normalized float tensors (about 600 KB per 227x227 image) only if set;
    # by default the Trainer applies the transform graph to raw examples as it reads them.
    materialize: bool = False
    # Keep decoded, normalized images in memory after the first epoch (small datasets).
    cache_decoded: bool = True

    # Blessing.
    min_accuracy: float = 0.9
    regression_epsilon: float = 0.01

    # Locations. None: derived from output_root.
    output_root: str = DEFAULT_OUTPUT_ROOT
    pipeline_root: str | None = None
    serving_dir: str | None = None

    # Empty: Beam's in-process DirectRunner.
    beam_args: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def data_path(self) -> str:
        return _absolute(self.data or os.path.join(self.output_root, "data", "demo"))

    @property
    def schema_path(self) -> str | None:
        return _absolute(self.schema_file) if self.schema_file else None

    @property
    def pipeline_root_path(self) -> str:
        return _absolute(self.pipeline_root or os.path.join(self.output_root, "pipeline_root"))

    @property
    def metadata_path(self) -> str:
        # Always inside the pipeline root, so two roots never share cache entries.
        return os.path.join(self.pipeline_root_path, "metadata.sqlite")

    @property
    def serving_path(self) -> str:
        return _absolute(self.serving_dir or os.path.join(self.output_root, "serving_model"))

    @property
    def runs_path(self) -> str:
        return _absolute(os.path.join(self.output_root, "runs"))

    def validate(self) -> None:
        from modules.model import validate_arguments

        if self.preset not in PRESETS:
            raise ConfigError(f"preset: unknown preset {self.preset!r}; choose one of {PRESETS}.")
        if self.data_format not in ("folder", "tfrecord"):
            raise ConfigError(
                f"data_format: must be 'folder' or 'tfrecord', got {self.data_format!r}."
            )
        if self.class_names is not None and self.num_classes not in (None, len(self.class_names)):
            raise ConfigError(
                f"class_names: {len(self.class_names)} names but num_classes is {self.num_classes}."
            )
        if self.schema_file:
            _check_schema(self.schema_file)
        if not 0 < self.eval_fraction < 1:
            raise ConfigError(f"eval_fraction: must be between 0 and 1, got {self.eval_fraction}.")
        for name in ("batch_size", "epochs", "steps_per_epoch", "eval_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "epochs" else 1):
                raise ConfigError(f"{name}: must be a positive integer, got {value!r}.")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate: must be positive, got {self.learning_rate}.")
        if not 0 <= self.min_accuracy:
            raise ConfigError(f"min_accuracy: must be non-negative, got {self.min_accuracy}.")
        try:
            validate_arguments(
                self.num_classes or 2, self.image_size, self.width_multiplier, self.dropout
            )
        except ValueError as error:
            field = next(
                (
                    name
                    for name in ("num_classes", "image_size", "width_multiplier", "dropout")
                    if name in str(error)
                ),
                "model",
            )
            raise ConfigError(f"{field}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_PRESETS: dict[str, dict[str, Any]] = {
    # For tests: the smallest input AlexNet's stride/pool chain accepts, 1/8 widths.
    "tiny": dict(
        image_size=67,
        width_multiplier=0.125,
        batch_size=16,
        epochs=4,
        steps_per_epoch=25,
        eval_steps=2,
        learning_rate=1e-3,
        min_accuracy=0.0,
    ),
    # The canonical AlexNet, sized to finish on a 2-core CPU in minutes.
    "demo": dict(),
    # The paper's training length (90 epochs of 1.2M images at batch 128) with Adam.
    "imagenet": dict(
        num_classes=1000,
        cache_decoded=False,
        batch_size=128,
        epochs=90,
        steps_per_epoch=10_000,
        eval_steps=390,
        learning_rate=1e-4,
        min_accuracy=0.5,
    ),
}

_FIELDS = {field.name: field for field in dataclasses.fields(PipelineConfig)}


def _coerce(name: str, value: Any) -> Any:
    """Checks a YAML value's type against the field, so typos fail loudly."""
    default = _FIELDS[name].default
    if default is dataclasses.MISSING or value is None:
        return value
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{name}: expected true or false, got {value!r}.")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int | float | str) and not isinstance(value, type(default)):
        raise ConfigError(f"{name}: expected {type(default).__name__}, got {value!r}.")
    return value


def load_yaml(path: str) -> dict[str, Any]:
    try:
        content = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as error:
        raise ConfigError(f"config file {path} does not exist.") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
    if not isinstance(content, dict):
        raise ConfigError(f"config file {path} must hold a mapping of field: value.")
    return content


def build_config(
    preset: str | None = None, config_file: str | None = None, **overrides: Any
) -> PipelineConfig:
    """Preset defaults, then the YAML file, then explicit overrides (None means unset)."""
    from_file = load_yaml(config_file) if config_file else {}
    unknown = sorted(set(from_file) - set(_FIELDS))
    if unknown:
        raise ConfigError(
            f"config file {config_file}: unknown field(s) {', '.join(unknown)}; "
            f"known fields: {', '.join(sorted(_FIELDS))}."
        )
    chosen = preset or from_file.get("preset") or "demo"
    if chosen not in _PRESETS:
        raise ConfigError(f"preset: unknown preset {chosen!r}; choose one of {PRESETS}.")
    values: dict[str, Any] = {**_PRESETS[chosen]}
    values.update({name: _coerce(name, value) for name, value in from_file.items()})
    values.update({name: value for name, value in overrides.items() if value is not None})
    values["preset"] = chosen
    return PipelineConfig(**values)

"""One typed configuration for the local and the Kubeflow runners.

Precedence: preset < YAML file < CLI flags. Presets are applied by `build_config` only;
`PipelineConfig()` is the demo configuration.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path
from typing import Any, Literal

import yaml

from components.drift_thresholds import DriftThresholds
from components.run_report.settings import ReportSettings
from contract.data import IMAGE_KEY, LABEL_KEY, eval_buckets, is_remote
from modules.cli_flags import setting
from modules.hyperparameters import Hyperparameters, SettingError
from modules.search_space import SearchSpace

DataFormat = Literal["folder", "tfrecord"]
DEFAULT_OUTPUT_ROOT = "outputs"
# Kubeflow tasks reach s3:// and minio:// paths at KFP's own store with the secret its
# launcher reads, unless told otherwise (kubeflow/pipelines backend/src/v2/config/env.go).
KFP_S3_ENDPOINT = "http://seaweedfs.kubeflow:9000"
KFP_S3_SECRET = "mlpipeline-minio-artifact"
TRAINING = "training"  # the config section that holds the Hyperparameters
DRIFT = "drift"  # and the one that holds the DriftThresholds
SEARCH_SPACE = "search_space"  # and the Tuner's SearchSpace
SECTIONS = {TRAINING: Hyperparameters, DRIFT: DriftThresholds, SEARCH_SPACE: SearchSpace}


def new_run_id() -> str:
    """A run's id: its start time, to the microsecond (the MLMD run context, the run folder)."""
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field."""


def _absolute(path: str) -> str:
    """Local paths become absolute (TFX records artifact URIs); URIs like gs:// stay."""
    return path if is_remote(path) else os.path.abspath(path)


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
    pipeline_name: str = "alexnet"
    model_name: str = "alexnet"

    # Data.
    data: str | None = setting(None, "Image folder or TFRecord folder. Default: the demo dataset.")
    data_format: DataFormat = setting("folder")
    image_feature: str = IMAGE_KEY  # TFRecord input: feature holding encoded image bytes.
    label_feature: str = LABEL_KEY  # TFRecord input: int64 class index.
    eval_fraction: float = 0.2
    num_classes: int | None = None  # None: taken from the data.
    # TFRecord input: names in label order. Image folders carry their own (folder names).
    class_names: list[str] | None = None
    # A curated schema (schema.pbtxt) the data is validated against; None: inferred from it.
    schema_file: str | None = None
    # Data in span-<N> folders (TFX spans). None: detected, for local data; set it to true
    # for spans in a bucket, which compiling does not read.
    spans: bool | None = None
    # The eval split is the newest span's.
    window_spans: int = setting(
        0, "With span-<N> folders: train on the newest N spans (0: every span)."
    )

    # Model and training.
    training: Hyperparameters = dataclasses.field(default_factory=Hyperparameters)
    warm_start: bool = setting(
        True, "Start from the served model's weights when its classes and architecture match."
    )
    # The Trainer keeps decoded images in memory (cache_decoded) only within this budget.
    trainer_memory_mb: int = 4096
    train_workers: int = setting(
        1,
        "Train with this many replicas of TensorFlow's MultiWorkerMirroredStrategy: local "
        "processes, or a TFJob on Kubeflow (Training Operator).",
        low=1,
    )
    # Set by `compile`: on Kubeflow the replicas are a TFJob of these settings
    # (components/multi_worker_trainer/tfjob.py, TFJobSettings).
    tfjob: dict[str, Any] | None = None
    # The Tuner: tune_trials trials of tune_steps_per_trial steps each, drawn from
    # search_space; the Trainer then trains with the best trial's values.
    tune: bool = setting(
        False, "Search the config's search_space with TFX's Tuner; train with the best trial."
    )
    tune_trials: int = setting(4, "Trials the Tuner runs.")
    tune_steps_per_trial: int = setting(20, "Training steps of each trial.")
    search_space: SearchSpace = dataclasses.field(default_factory=SearchSpace)

    # Gates: data anomalies (and drift beyond these thresholds) stop the run before training;
    # the Evaluator blesses.
    drift: DriftThresholds = dataclasses.field(default_factory=DriftThresholds)
    fail_on_anomalies: bool = setting(
        False, "Stop the run, non-zero, before training if the data has anomalies."
    )
    min_accuracy: float = setting(0.9, "Bless only at or above this eval accuracy.")
    chance_margin: float = setting(
        0.0,
        "Bless only a model whose eval accuracy beats always answering the eval split's largest "
        "class by more than this (0: it must beat it; negative: no such check).",
    )
    regression_epsilon: float = 0.01
    # The serving check: the candidate in the model server before it is pushed.
    serving_latency_budget_ms: float = 1000.0  # p50 of single-image requests
    serving_ready_seconds: float = 120.0  # from start to ready, loading and warm-up included

    bulk_infer_data: str | None = setting(
        None, "Images the blessed model scores with TFX's BulkInferrer after the Evaluator."
    )

    # Locations. None: derived from output_root.
    output_root: str = setting(
        DEFAULT_OUTPUT_ROOT, "Where outputs go unless overridden (default: outputs)."
    )
    pipeline_root: str | None = setting(None, "Artifact root (a URI for Kubeflow).")
    serving_dir: str | None = setting(None, "Where blessed models are pushed.")

    # Empty: Beam's in-process DirectRunner.
    beam_args: list[str] = setting(
        list,
        "A Beam pipeline option, e.g. --beam-arg=--direct_num_workers=2.",
        flag="--beam-arg",
    )

    def __post_init__(self) -> None:
        self.validate()

    @property
    def data_path(self) -> str:
        return _absolute(self.data or os.path.join(self.output_root, "data", "demo"))

    @property
    def bulk_infer_path(self) -> str | None:
        return _absolute(self.bulk_infer_data) if self.bulk_infer_data else None

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
    def report(self) -> ReportSettings:
        training = self.training
        return ReportSettings(
            self.image_feature, self.label_feature, training.image_size, training.width_multiplier
        )

    @property
    def runs_path(self) -> str:
        return _absolute(os.path.join(self.output_root, "runs"))

    def validate(self) -> None:
        for section, kind in SECTIONS.items():
            if not isinstance(getattr(self, section), kind):
                raise ConfigError(
                    f"{section}: expected {kind.__name__}, got {getattr(self, section)!r}."
                )
        if self.data_format not in ("folder", "tfrecord"):
            raise ConfigError(
                f"data_format: must be 'folder' or 'tfrecord', got {self.data_format!r}."
            )
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"num_classes: must be at least 2, got {self.num_classes}.")
        if self.class_names is not None and self.num_classes not in (None, len(self.class_names)):
            raise ConfigError(
                f"class_names: {len(self.class_names)} names but num_classes is {self.num_classes}."
            )
        if self.schema_file:
            _check_schema(self.schema_file)
        try:
            eval_buckets(self.eval_fraction)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if self.spans not in (None, True, False):
            raise ConfigError(f"spans: expected true, false or null, got {self.spans!r}.")
        if not isinstance(self.window_spans, int) or self.window_spans < 0:
            raise ConfigError(
                f"window_spans: must be 0 (every span) or more, got {self.window_spans!r}."
            )
        if not isinstance(self.trainer_memory_mb, int) or self.trainer_memory_mb < 0:
            raise ConfigError(
                f"trainer_memory_mb: must be 0 or more, got {self.trainer_memory_mb!r}."
            )
        for name in ("tune_trials", "tune_steps_per_trial", "train_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: must be 1 or more, got {value!r}.")
        if self.tune and self.search_space.size < 2:
            raise ConfigError(
                f"{SEARCH_SPACE}: holds one combination only ({self.search_space.to_dict()}), "
                "so there is nothing to tune; list two or more values for at least one of "
                f"{', '.join(self.search_space.choices())}."
            )
        for name in ("serving_latency_budget_ms", "serving_ready_seconds"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be positive, got {getattr(self, name)!r}.")
        if not 0 <= self.min_accuracy <= 1:
            raise ConfigError(
                f"min_accuracy: an accuracy, between 0 and 1; got {self.min_accuracy}."
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # For tests: the smallest input AlexNet's stride/pool chain accepts, 1/8 widths.
    "tiny": {
        TRAINING: dict(
            image_size=67,
            width_multiplier=0.125,
            batch_size=16,
            epochs=4,
            steps_per_epoch=25,
            eval_steps=2,
            learning_rate=1e-3,
            # About 28 of the 96 train images: enough to fit a temperature.
            calibration_fraction=0.3,
        ),
        # No accuracy gates: a tiny model tests the plumbing, not the accuracy.
        "min_accuracy": 0.0,
        "chance_margin": -1.0,
    },
    # The canonical AlexNet, sized to finish on a 2-core CPU in minutes.
    "demo": {},
    # The paper's training length (90 epochs of 1.2M images at batch 128) with Adam.
    "imagenet": {
        "num_classes": 1000,
        TRAINING: dict(
            cache_decoded=False,
            batch_size=128,
            epochs=90,
            steps_per_epoch=10_000,
            eval_steps=390,
            learning_rate=1e-4,
            calibration_fraction=0.01,  # 12,800 images
        ),
        "min_accuracy": 0.5,
    },
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
    unknown = sorted(set(content) - set(_FIELDS) - {"preset"})
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown field(s) {', '.join(unknown)}; "
            f"known fields: preset, {', '.join(sorted(_FIELDS))}."
        )
    for section in SECTIONS:
        if not isinstance(content.get(section, {}), dict):
            raise ConfigError(f"{section}: must be a mapping of name: value.")
    return content


def build_config(
    preset: str | None = None,
    config_file: str | None = None,
    training: dict[str, Any] | None = None,
    **overrides: Any,
) -> PipelineConfig:
    """Preset, then the YAML file, then explicit overrides (None means unset).

    `training` holds hyperparameter overrides. A section (training, drift) is merged field
    by field: each level overrides single values, not the whole section.
    """
    from_file = load_yaml(config_file) if config_file else {}
    file_preset = from_file.pop("preset", None)
    chosen = preset or file_preset or "demo"
    if chosen not in PRESETS:
        raise ConfigError(f"preset: unknown preset {chosen!r}; choose one of {tuple(PRESETS)}.")
    levels = [PRESETS[chosen], from_file, {TRAINING: training or {}, **overrides}]
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for level in levels:
        for section, fields in sections.items():
            fields.update(
                (name, value)
                for name, value in (level.get(section) or {}).items()
                if value is not None
            )
        values.update(
            (name, _coerce(name, value))
            for name, value in level.items()
            if name not in SECTIONS and value is not None
        )
    for section, kind in SECTIONS.items():
        try:
            values[section] = kind.from_dict(sections[section])
        except SettingError as error:
            where = f"{section}.{error.field}" if error.field else section
            raise ConfigError(f"{where}: {error.reason}") from None
    return PipelineConfig(**values)

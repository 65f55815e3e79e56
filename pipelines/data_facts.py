"""What must be known about the data before the pipeline is built, and the one place that
reads the data to learn it. Building the pipeline itself reads nothing.

Remote data (gs://, s3://) is not read: the compiling machine may not reach it. Its facts
come from the config and from naming conventions.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os

from components.image_folder_example_gen.executor import discover_layout
from contract.data import LABELS_FILE, SPLIT_PREFIXES, is_remote
from pipelines.config import ConfigError, PipelineConfig

# ImportExampleGen input split for files that carry no split name; they are hashed.
SINGLE_SPLIT = "single_split"
TFRECORD_GLOB = "*.tfrecord*"


@dataclasses.dataclass(frozen=True)
class DataFacts:
    num_classes: int  # needed to compile per-class metrics
    # Known before the run, else None: the Trainer reads the labels.txt ExampleGen writes.
    class_names: list[str] | None = None
    # TFRecord input: ImportExampleGen's input split name -> file pattern.
    tfrecord_splits: dict[str, str] = dataclasses.field(default_factory=dict)


def inspect_data(config: PipelineConfig) -> DataFacts:
    names = _class_names(config)
    found = len(names) if names else config.num_classes
    if found is None:
        raise ConfigError(
            "num_classes: unknown before the run (remote data, or TFRecords without "
            "labels.txt); set num_classes or class_names in the config."
        )
    if config.num_classes not in (None, found):
        raise ConfigError(
            f"num_classes: the config says {config.num_classes}, the data has {found} classes."
        )
    splits = tfrecord_splits(config.data_path) if config.data_format == "tfrecord" else {}
    return DataFacts(num_classes=found, class_names=names, tfrecord_splits=splits)


def _class_names(config: PipelineConfig) -> list[str] | None:
    """The config's names, else the class folders, else a TFRecord folder's labels.txt."""
    if config.class_names or is_remote(config.data_path):
        return config.class_names
    if config.data_format == "folder":
        return discover_layout(config.data_path).classes
    labels = os.path.join(config.data_path, LABELS_FILE)
    if os.path.exists(labels):
        with open(labels) as handle:
            return [line.strip() for line in handle if line.strip()]
    return None


def tfrecord_splits(data: str) -> dict[str, str]:
    """train*/eval* (or test*) files as the splits when present, else one split to hash.

    Remote folders are not listed: their files must be named train* and eval*.
    """
    if is_remote(data):
        return {split: f"{prefixes[0]}*" for split, prefixes in SPLIT_PREFIXES.items()}
    names = {name for name in os.listdir(data) if not name.startswith(".")}
    patterns = {}
    for split, prefixes in SPLIT_PREFIXES.items():
        prefix = next((p for p in prefixes if any(n.startswith(p) for n in names)), None)
        if prefix:
            patterns[split] = f"{prefix}*"
    if len(patterns) < len(SPLIT_PREFIXES):
        return {SINGLE_SPLIT: _unsplit_pattern(data, names)}
    return patterns


def _unsplit_pattern(data: str, names: set[str]) -> str:
    # ImportExampleGen reads every file its pattern matches, so labels.txt must not match.
    if LABELS_FILE not in names:
        return "*"
    others = sorted(names - {LABELS_FILE})
    if not others or not all(fnmatch.fnmatch(name, TFRECORD_GLOB) for name in others):
        raise ConfigError(
            f"data: {data} holds {LABELS_FILE} next to files not named {TFRECORD_GLOB} "
            f"({', '.join(others[:3]) or 'none'}); name the TFRecord files *.tfrecord (or "
            f"train*/eval*), so {LABELS_FILE} is not read as data."
        )
    return TFRECORD_GLOB

"""What must be known about the data before the pipeline is built, and the one place that
reads the data to learn it. Building the pipeline itself reads nothing.

Remote data (gs://, s3://) is read only where the pipeline runs (the local runner): the
machine that compiles for Kubeflow may not reach it, so there its facts come from the config
and from naming conventions.
"""

from __future__ import annotations

import dataclasses

from components.image_folder_example_gen.layout import discover_layout
from components.spans import check_same_classes, has_spans, span_window
from components.tfrecord_layout import read_labels, tfrecord_splits
from contract.data import is_remote
from contract.images import IMAGE_EXTENSIONS
from modules import storage
from pipelines.config import ConfigError, PipelineConfig


@dataclasses.dataclass(frozen=True)
class DataFacts:
    num_classes: int  # needed to compile per-class metrics
    # Known before the run, else None: the Trainer reads the labels.txt ExampleGen writes.
    class_names: list[str] | None = None
    # TFRecord input without spans: ImportExampleGen's input split name -> file pattern.
    tfrecord_splits: dict[str, str] = dataclasses.field(default_factory=dict)
    # The data is in span-<N> folders; `spans` is the window, where it could be listed.
    spanned: bool = False
    spans: list[int] = dataclasses.field(default_factory=list)


def inspect_data(config: PipelineConfig, read_remote: bool = False) -> DataFacts:
    """The data's facts; remote data is read only with `read_remote`."""
    data = config.data_path
    readable = read_remote or not is_remote(data)
    spanned = config.spans if config.spans is not None else readable and has_spans(data)
    if spanned and readable:
        window = span_window(data, config.window_spans)
        classes = {span: _classes_in(config, folder) for span, folder in window.items()}
        if None not in classes.values():
            check_same_classes(classes, data)
        names, spans = config.class_names or classes[max(window)], list(window)
    elif not readable:
        names, spans = config.class_names, []
    else:
        names, spans = config.class_names or _classes_in(config, data), []
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
    if config.bulk_infer_path and (read_remote or not is_remote(config.bulk_infer_path)):
        _check_bulk_infer_data(config.bulk_infer_path)
    splits = {}
    if config.data_format == "tfrecord" and not spanned:
        if storage.is_bucket(data):
            # ImportExampleGen's driver reads through TensorFlow, which has no S3 filesystem.
            raise ConfigError(
                f"data: TFRecords in a bucket are read by span; move the files of {data} "
                f"into {data.rstrip('/')}/span-1/ (and set spans: true to compile)."
            )
        splits = tfrecord_splits(data, list_remote=readable)
    return DataFacts(
        num_classes=found,
        class_names=names,
        tfrecord_splits=splits,
        spanned=bool(spanned),
        spans=spans,
    )


def _check_bulk_infer_data(folder: str) -> None:
    """Fails before any component runs if the BulkInferrer would have no image to score."""
    if not storage.isdir(folder):
        raise ConfigError(f"bulk_infer_data: {folder} does not exist or is not a folder.")
    if not any(
        name.lower().endswith(IMAGE_EXTENSIONS)
        for _, _, names in storage.walk(folder)
        for name in names
    ):
        raise ConfigError(
            f"bulk_infer_data: {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})."
        )


def _classes_in(config: PipelineConfig, folder: str) -> list[str] | None:
    """A local folder's classes: its class folders, or a TFRecord folder's labels.txt."""
    if config.data_format == "folder":
        return discover_layout(folder).classes
    return read_labels(folder)

"""The span and the fingerprint of our ExampleGens' input folder, read through
modules.storage, so a bucket works like a folder.

TFX's FileBasedDriver resolves both with tf.io.gfile, which has no s3://. Our ExampleGens
use `Driver` here instead, which runs before the cache lookup on the local runners. Open-source
Kubeflow Pipelines runs no driver (it ignores `lifecycle.preCacheCheck`), so the executors
call `resolve_without_driver`, which does the same work and records the same properties.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.components.example_gen import driver as example_gen_driver
from tfx.components.example_gen import input_processor, utils
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_component_specs

from components.spans import span_folders
from contract.data import INPUT_FILE
from modules import storage


def folder_fingerprint(root: str) -> str:
    """Changes when any file under root is added, removed, resized or rewritten."""
    digest = hashlib.sha256()
    files = total = 0
    for relative, size, stamp in storage.file_details(root):
        digest.update(f"{relative}\0{size}\0{stamp}\n".encode("utf-8", "surrogateescape"))
        files, total = files + 1, total + size
    return f"files:{files},bytes:{total},sha256:{digest.hexdigest()}"


class FolderInputProcessor(input_processor.InputProcessor):
    """Span: the newest span-<N> folder when the split pattern holds {SPAN}, else 0.
    Fingerprint: every file under the input base, so a change in any span re-runs."""

    def __init__(
        self,
        input_base: str,
        splits: Iterable[example_gen_pb2.Input.Split],
        range_config: range_config_pb2.RangeConfig | None = None,
    ) -> None:
        splits = list(splits)
        super().__init__(splits, range_config)
        self._base = input_base
        self._spanned = any(utils.SPAN_SPEC in split.pattern for split in splits)

    def get_latest_span(self) -> int:
        return max(span_folders(self._base))

    def resolve_span_and_version(self) -> tuple[int, int | None]:
        return (self.get_latest_span() if self._spanned else 0), None

    def get_pattern_for_span_version(self, pattern: str, span: int, version: int | None) -> str:
        return pattern.replace(utils.SPAN_SPEC, str(span))

    def get_input_fingerprint(self, span: int, version: int | None) -> str:
        return folder_fingerprint(self._base)


class Driver(example_gen_driver.Driver):
    def get_input_processor(
        self,
        splits: Iterable[example_gen_pb2.Input.Split],
        range_config: range_config_pb2.RangeConfig | None = None,
        input_base_uri: str | None = None,
    ) -> input_processor.InputProcessor:
        return FolderInputProcessor(input_base_uri or "", splits, range_config)


def write_input_record(exec_properties: dict[str, Any], examples: types.Artifact) -> None:
    """INPUT_FILE in the Examples artifact: what its examples were made from."""
    record = {
        "input_fingerprint": exec_properties[utils.FINGERPRINT_PROPERTY_NAME],
        "options": {
            key: exec_properties.get(key)
            for key in (
                standard_component_specs.INPUT_BASE_KEY,
                standard_component_specs.OUTPUT_CONFIG_KEY,
                standard_component_specs.CUSTOM_CONFIG_KEY,
            )
        },
    }
    with tf.io.gfile.GFile(os.path.join(examples.uri, INPUT_FILE), "w") as handle:
        json.dump(record, handle, sort_keys=True)


def resolve_without_driver(
    exec_properties: dict[str, Any], examples: types.Artifact
) -> dict[str, Any]:
    """The exec properties as the driver would have resolved them, and the driver's span and
    fingerprint on the Examples artifact; unchanged where a driver ran."""
    if exec_properties.get(utils.FINGERPRINT_PROPERTY_NAME):
        return exec_properties
    # The driver's own code, minus the metadata store it never uses for this.
    resolved = Driver(None).resolve_exec_properties(dict(exec_properties), None, None)
    example_gen_driver.update_output_artifact(resolved, examples.mlmd_artifact)
    return resolved


def examples_and_properties(
    output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]
) -> tuple[types.Artifact, dict[str, Any]]:
    """An ExampleGen executor's Examples artifact and its exec properties, resolved."""
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY]
    )
    return examples, resolve_without_driver(exec_properties, examples)

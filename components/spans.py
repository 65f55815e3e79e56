"""Numbered span folders under a data root: DATA/span-1/, DATA/span-2/, ...

Used before a run (to fail before any component starts) and by the ExampleGens at run time
(on Kubeflow the data may only be reachable there). modules.storage lists local folders and
buckets alike.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
from google.protobuf import struct_pb2
from tfx import types
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from contract.artifact_properties import EVAL_SPAN, SPANS
from contract.data import SPAN_PREFIX, SPANS_FILE, span_number, window
from modules import storage

WINDOW_SPANS_KEY = "window_spans"


class SpanLayoutError(ValueError):
    """The span folders cannot be used; the message names the folder and what to do."""


def _entries(root: str) -> list[tuple[str, bool]]:
    """(name, is a folder) of each visible entry of root."""
    return [(name, is_dir) for name, is_dir in storage.entries(root) if not name.startswith(".")]


def has_spans(root: str) -> bool:
    if not storage.isdir(root):
        return False  # the ExampleGen's layout check names the missing folder
    return any(is_dir and name.startswith(SPAN_PREFIX) for name, is_dir in _entries(root))


def span_folders(root: str) -> dict[int, str]:
    """{span: folder} of the span folders under root.

    Fails on a span-* folder that is not numbered, an empty span, and a folder that is not a
    span next to span folders. Files next to them are left to the ExampleGen's rejects.
    """
    spans = {}
    for name, is_dir in _entries(root):
        folder = os.path.join(root, name)
        if not is_dir:
            continue
        span = span_number(name)
        if span is None:
            what = "is not numbered" if name.startswith(SPAN_PREFIX) else "is not a span folder"
            raise SpanLayoutError(
                f"data: {folder} {what}; next to span folders every folder must be "
                f"{SPAN_PREFIX}<integer> (e.g. {SPAN_PREFIX}1). Rename it or move it out."
            )
        if not any(files for _, _, files in storage.walk(folder)):
            raise SpanLayoutError(
                f"data: span folder {folder} is empty. Add its images or remove it."
            )
        spans[span] = folder
    if not spans:
        raise SpanLayoutError(f"data: {root} holds no {SPAN_PREFIX}<integer> folder.")
    return spans


def span_window(root: str, window_spans: int, newest: int | None = None) -> dict[int, str]:
    """The window's spans and folders: the newest `window_spans` up to `newest` (0: all)."""
    spans = span_folders(root)
    known = [span for span in spans if newest is None or span <= newest]
    return {span: spans[span] for span in window(known, window_spans)}


def check_same_classes(classes: dict[int, list[str]], root: str) -> None:
    """Every span of the window must hold the newest span's classes, no more, no fewer."""
    newest = max(classes)
    expected = set(classes[newest])
    for span, names in sorted(classes.items()):
        missing, extra = sorted(expected - set(names)), sorted(set(names) - expected)
        newest_name = f"{SPAN_PREFIX}{newest} (the newest span)"
        problems = []
        if missing:
            problems.append(f"lacks class(es) {', '.join(missing)}, which {newest_name} has")
        if extra:
            problems.append(f"has class(es) {', '.join(extra)}, which {newest_name} lacks")
        if problems:
            raise SpanLayoutError(
                f"data: {os.path.join(root, f'{SPAN_PREFIX}{span}')} {' and '.join(problems)}; "
                "every span of the window must hold the same classes."
            )


def options_config(options: dict[str, Any]) -> example_gen_pb2.CustomConfig:
    """Options for our ExampleGens, as their standard custom_config: a Struct packed in its
    Any."""
    struct = struct_pb2.Struct()
    struct.update(options)
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def options_from(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The options an ExampleGen was given (options_config); empty without any."""
    text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not text:
        return {}
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(text, config)
    struct = struct_pb2.Struct()
    if not config.custom_config.Unpack(struct):
        return {}
    return dict(struct.items())


def window_config(window_spans: int) -> example_gen_pb2.CustomConfig:
    return options_config({WINDOW_SPANS_KEY: window_spans})


def window_from(exec_properties: dict[str, Any]) -> int | None:
    """The window an ExampleGen was given; None when its data has no span folders."""
    window = options_from(exec_properties).get(WINDOW_SPANS_KEY)
    return None if window is None else int(window)


def write_spans(examples: types.Artifact, spans: list[int]) -> None:
    """Records the spans an Examples artifact holds, in SPANS_FILE and its properties."""
    record = {"spans": sorted(spans), "eval_span": max(spans)}
    with tf.io.gfile.GFile(os.path.join(examples.uri, SPANS_FILE), "w") as handle:
        json.dump(record, handle)
    examples.set_string_custom_property(SPANS, json.dumps(record["spans"]))
    examples.set_int_custom_property(EVAL_SPAN, record["eval_span"])

"""Beam executor: the window's TFRecords, split per span, as one Examples artifact."""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any

import apache_beam as beam
import tensorflow as tf
from apache_beam.metrics import Metrics
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.beam_counters import committed_counters
from components.example_gen_input import examples_and_properties, write_input_record
from components.spans import check_same_classes, span_window, window_from, write_spans
from components.tfrecord_layout import SINGLE_SPLIT, read_labels, tfrecord_splits
from contract.artifact_properties import OLDER_EVAL_IN_TRAIN
from contract.data import EVAL, LABELS_FILE, SPLITS, TRAIN
from modules import storage

_METRICS = "TFRecordSpansExampleGen"


def hashed_split(record: bytes, eval_fraction: float) -> str:
    """A record's split from a hash of its bytes, stable across machines and runs."""
    digest = hashlib.sha256(record).digest()
    return EVAL if int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction else TRAIN


def _sources(folder: str) -> list[tuple[str, str | None]]:
    """(file pattern, split or None to hash) of one span's files."""
    patterns = tfrecord_splits(folder)
    if SINGLE_SPLIT in patterns:
        return [(os.path.join(folder, patterns[SINGLE_SPLIT]), None)]
    return [(os.path.join(folder, pattern), split) for split, pattern in patterns.items()]


def _split_record(
    record: bytes, split: str | None, eval_fraction: float, keep_eval: bool
) -> tuple[str, bytes]:
    """(split, record); an eval record of an older span is trained on, as eval is the
    newest span's."""
    split = split or hashed_split(record, eval_fraction)
    if not keep_eval and split == EVAL:
        Metrics.counter(_METRICS, OLDER_EVAL_IN_TRAIN).inc()
        return TRAIN, record
    return split, record


class Executor(base_beam_executor.BaseBeamExecutor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        examples, exec_properties = examples_and_properties(output_dict, exec_properties)
        root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        window = span_window(
            root,
            window_from(exec_properties),
            exec_properties[example_gen_utils.SPAN_PROPERTY_NAME],
        )
        labels = {span: read_labels(folder) for span, folder in window.items()}
        if None not in labels.values():
            check_same_classes(labels, root)
        newest = max(window)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
        )
        buckets = {split.name: split.hash_buckets for split in output_config.split_config.splits}
        eval_fraction = buckets[EVAL] / sum(buckets.values())
        examples.split_names = artifact_utils.encode_split_names(list(SPLITS))

        pipeline = self._make_beam_pipeline()
        records = []
        for span, folder in window.items():
            for index, (pattern, split) in enumerate(_sources(folder)):
                records.append(
                    pipeline
                    | f"Read[{span},{index}]"
                    >> beam.io.ReadFromTFRecord(storage.beam_path(pattern))
                    | f"Split[{span},{index}]"
                    >> beam.Map(_split_record, split, eval_fraction, span == newest)
                )
        by_split = (
            records
            | "AllSpans" >> beam.Flatten()
            | "BySplit" >> beam.Partition(lambda pair, _: SPLITS.index(pair[0]), len(SPLITS))
        )
        for split, pairs in zip(SPLITS, by_split, strict=True):
            (
                pairs
                | f"Count[{split}]" >> beam.Map(_counted, split)
                | f"Write[{split}]"
                >> beam.io.WriteToTFRecord(
                    os.path.join(artifact_utils.get_split_uri([examples], split), "data_tfrecord"),
                    file_name_suffix=".gz",
                )
            )
        result = pipeline.run()
        result.wait_until_finish()
        counts = committed_counters(result, _METRICS)
        if labels[newest]:
            with tf.io.gfile.GFile(os.path.join(examples.uri, LABELS_FILE), "w") as handle:
                handle.write("".join(f"{name}\n" for name in labels[newest]))
        write_spans(examples, list(window))
        examples.set_int_custom_property(OLDER_EVAL_IN_TRAIN, counts.get(OLDER_EVAL_IN_TRAIN, 0))
        write_input_record(exec_properties, examples)
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        logging.info("TFRecordSpansExampleGen: spans %s, examples %s", list(window), counts)


def _counted(pair: tuple[str, bytes], split: str) -> bytes:
    Metrics.counter(_METRICS, split).inc()
    return pair[1]

"""Beam executor that turns a folder of class sub-folders into tf.Example splits.

Layouts:
  root/<class>/**/<image>                        split train/eval by a hash of the path
  root/{train,eval|test}/<class>/**/<image>      the folders are the splits
  root/span-<N>/<either of the above>            numbered spans: the window's newest spans
                                                 are read; eval is the newest span's eval
                                                 split, train all the rest

Every entry is an image, a reject with its reason in rejects.jsonl, or ignored: hidden files
and folders (names starting with "."). Links to files are read; links to folders, broken
links, link loops, names that are not UTF-8 and anything but a regular file are rejects.
Byte-identical copies take the split of the copy ranked first, so a copy never sits on the
other side of the split; they are counted as duplicates.

Two passes over the files keep memory flat whatever the dataset size: the first decodes
the images in batches (with the decoder Transform uses) and keeps only their metadata; the
split assignment and the interleaving of classes group that metadata; the second reads the
bytes again and writes them straight to the split's TFRecords. Image bytes never pass
through a shuffle, which the DirectRunner would hold in memory.
"""

from __future__ import annotations

import json
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
from components.image_folder_example_gen.checks import route_checked
from components.image_folder_example_gen.examples import to_examples
from components.image_folder_example_gen.layout import (
    METRICS,
    REJECTED,
    ImageFile,
    ImageFolderError,
    Layout,
    discover_layout,
    discover_span_layout,
    list_class_folder,
    unlabelled_layout,
)
from components.image_folder_example_gen.splits import OLDER_EVAL_COUNTER, by_class, split_class
from components.spans import options_from, window_from, write_spans
from contract.artifact_properties import (
    CLASS_NAMES,
    DUPLICATE_COUNT,
    OLDER_EVAL_IN_TRAIN,
    REJECTED_COUNT,
    REJECTS_PATH,
    SPLIT_COUNTS,
)
from contract.data import EVAL, LABELS_FILE, SPLITS

REJECTS_FILE = "rejects.jsonl"
# The ExampleGen option for images without labels; their ClassFolder is the root itself.
UNLABELLED_KEY = "unlabelled"


def _count_duplicates(copies: tuple[str, int]) -> None:
    """Counts each copy of one image's bytes after the first."""
    Metrics.counter(METRICS, "duplicates").inc(copies[1] - 1)


def _reject_line(image: ImageFile) -> str:
    Metrics.counter(METRICS, "rejected").inc()
    return json.dumps({"path": image.relative_path, "reason": image.reject_reason})


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads a class-folder image dataset into train and eval tf.Example splits."""

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        examples, exec_properties = examples_and_properties(output_dict, exec_properties)
        root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        window_spans = window_from(exec_properties)
        if options_from(exec_properties).get(UNLABELLED_KEY):
            layout = unlabelled_layout(root)
        elif window_spans is None:
            layout = discover_layout(root)
        else:  # {SPAN} resolved to the newest span
            layout = discover_span_layout(
                root, window_spans, exec_properties[example_gen_utils.SPAN_PROPERTY_NAME]
            )

        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
        )
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
        )
        split_names = example_gen_utils.generate_output_split_names(input_config, output_config)
        if sorted(split_names) != sorted(SPLITS):
            raise ImageFolderError(
                f"ImageFolderExampleGen writes {' and '.join(SPLITS)} splits, not {split_names}."
            )
        examples.split_names = artifact_utils.encode_split_names(split_names)
        buckets = {split.name: split.hash_buckets for split in output_config.split_config.splits}
        eval_fraction = buckets[EVAL] / sum(buckets.values())
        rejects_path = os.path.join(examples.uri, REJECTS_FILE)

        pipeline = self._make_beam_pipeline()
        listed = (
            pipeline
            | "ClassFolders" >> beam.Create(layout.class_folders)
            | "ListFiles" >> beam.FlatMap(list_class_folder, root)
        )
        strays = pipeline | "StrayFiles" >> beam.Create(
            [[ImageFile(path, None) for path in layout.stray_files]]
        )
        # Batches of files (metadata only) from here to the split's examples.
        checked = (
            (listed, strays)
            | "AllFiles" >> beam.Flatten()
            | "Decode" >> beam.FlatMap(route_checked, root).with_outputs(REJECTED, main="accepted")
        )
        (
            checked[REJECTED]
            | "RejectLines" >> beam.Map(_reject_line)
            | "WriteRejects" >> beam.io.WriteToText(rejects_path, shard_name_template="")
        )
        (
            checked.accepted
            | "Digests" >> beam.FlatMap(lambda batch: [image.digest for image in batch])
            | "CountCopies" >> beam.combiners.Count.PerElement()
            | "CountDuplicates" >> beam.Map(_count_duplicates)
        )
        by_split = (
            checked.accepted
            | "ByClass" >> beam.FlatMap(by_class)
            | "GroupByClass" >> beam.GroupByKey()
            | "SplitClasses" >> beam.FlatMap(split_class, eval_fraction, layout.eval_span)
            | "GroupByPosition" >> beam.GroupByKey()
            | "BySplit"
            >> beam.Partition(
                lambda position, _: split_names.index(position[0][0]), len(split_names)
            )
        )
        for split, positions in zip(split_names, by_split, strict=True):
            (
                positions
                | f"ToExamples[{split}]" >> beam.FlatMap(to_examples, root, layout.classes)
                # Uncompressed: image bytes are already compressed, and gzip costs more CPU
                # than decoding them. TFX's readers pick the compression from the suffix.
                | f"Write[{split}]"
                >> beam.io.WriteToTFRecord(
                    os.path.join(artifact_utils.get_split_uri([examples], split), "data_tfrecord"),
                    file_name_suffix=".tfrecord",
                )
            )
        result = pipeline.run()
        result.wait_until_finish()

        counts = committed_counters(result, METRICS)
        self._record(examples, layout, counts, rejects_path, split_names)
        write_input_record(exec_properties, examples)

    def _record(
        self,
        examples: types.Artifact,
        layout: Layout,
        counts: dict[str, int],
        rejects_path: str,
        split_names: list[str],
    ) -> None:
        """Writes the class vocabulary and the counts; fails if a class lost every image."""
        with tf.io.gfile.GFile(os.path.join(examples.uri, LABELS_FILE), "w") as handle:
            handle.write("".join(f"{name}\n" for name in layout.classes))
        if not tf.io.gfile.exists(rejects_path):  # Beam writes no file for no rejects.
            tf.io.gfile.GFile(rejects_path, "w").close()
        rejected = counts.get("rejected", 0)
        split_counts = {split: counts.get(f"examples_{split}", 0) for split in split_names}
        examples.set_string_custom_property(CLASS_NAMES, json.dumps(layout.classes))
        examples.set_string_custom_property(SPLIT_COUNTS, json.dumps(split_counts))
        examples.set_int_custom_property(REJECTED_COUNT, rejected)
        if layout.spans:
            examples.set_int_custom_property(OLDER_EVAL_IN_TRAIN, counts.get(OLDER_EVAL_COUNTER, 0))
        examples.set_int_custom_property(DUPLICATE_COUNT, counts.get("duplicates", 0))
        examples.set_string_custom_property(REJECTS_PATH, rejects_path)
        if layout.spans:
            write_spans(examples, layout.spans)
        examples_utils.set_payload_format(examples, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(examples, "tfrecords_gzip")
        logging.info(
            "ImageFolderExampleGen: %s accepted (%s), %d rejected; rejects listed in %s",
            sum(split_counts.values()),
            split_counts,
            rejected,
            rejects_path,
        )
        lost = [name for name in layout.classes if not counts.get(f"class_{name}")]
        if lost:
            raise ImageFolderError(
                f"Class folder(s) {', '.join(lost)} under {layout.root} have no image that "
                f"decodes; see {rejects_path} for why each file was rejected."
            )

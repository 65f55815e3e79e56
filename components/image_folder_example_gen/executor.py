"""Beam executor that turns a folder of class sub-folders into tf.Example splits.

Layouts:
  root/<class>/**/<image>                        split train/eval by a hash of the path
  root/{train,eval|test}/<class>/**/<image>      the folders are the splits

Two passes over the files keep memory flat whatever the dataset size: the first decodes
each image (with the decoder Transform uses) and keeps only its metadata; the split
assignment groups that metadata per class; the second reads the bytes again and writes
them straight to the split's TFRecords. Image bytes never pass through a shuffle, which the
DirectRunner would hold in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import tensorflow as tf
from apache_beam.metrics import Metrics, MetricsFilter
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from modules.image_check import UndecodableImage, decoded_size

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLIT_FOLDERS = {"train": ("train",), "eval": ("eval", "test")}
LABELS_FILE = "labels.txt"
REJECTS_FILE = "rejects.jsonl"

# Feature names of the examples this component writes.
IMAGE_KEY = "image"
LABEL_KEY = "label"
CLASS_NAME_KEY = "class_name"
PATH_KEY = "path"
HEIGHT_KEY = "height"
WIDTH_KEY = "width"

_METRICS = "ImageFolderExampleGen"


class ImageFolderError(ValueError):
    """The input folder's layout cannot produce a dataset."""


@dataclasses.dataclass(frozen=True)
class ImageFile:
    relative_path: str
    class_name: str | None  # None: the file is not inside a class folder.
    split: str | None = None  # Set by a train/eval folder layout, else by hashing.
    height: int = 0
    width: int = 0
    reject_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Layout:
    root: str
    classes: list[str]
    # (split or None, class name, folder) for each class folder to walk.
    class_folders: list[tuple[str | None, str, str]]
    stray_files: list[str]  # relative paths outside any class folder.


def _subdirectories(path: str) -> list[str]:
    return sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(path)
        if tf.io.gfile.isdir(os.path.join(path, name))
    )


def _files(path: str) -> list[str]:
    return sorted(
        name
        for name in tf.io.gfile.listdir(path)
        if not tf.io.gfile.isdir(os.path.join(path, name))
    )


def _has_any_file(folder: str) -> bool:
    return any(files for _, _, files in tf.io.gfile.walk(folder))


def discover_layout(root: str) -> Layout:
    """Finds the classes and the folders to walk; fails clearly on unusable layouts."""
    if not tf.io.gfile.isdir(root):
        raise ImageFolderError(
            f"Image folder {root} does not exist or is not a directory. Point --data at a "
            f"folder with one sub-folder per class."
        )
    top = _subdirectories(root)
    split_dirs = {
        split: next((name for name in names if name in top), None)
        for split, names in SPLIT_FOLDERS.items()
    }
    stray = list(_files(root))
    folders: list[tuple[str | None, str, str]] = []
    if all(split_dirs.values()):
        for split, name in split_dirs.items():
            base = os.path.join(root, name)
            stray += [f"{name}/{file}" for file in _files(base)]
            folders += [(split, cls, os.path.join(base, cls)) for cls in _subdirectories(base)]
        # Any other top-level folder is outside the split layout: its files are rejects.
        for other in sorted(set(top) - set(split_dirs.values())):
            stray += [
                os.path.relpath(os.path.join(dirpath, file), root)
                for dirpath, _, files in tf.io.gfile.walk(os.path.join(root, other))
                for file in files
            ]
    else:
        folders = [(None, cls, os.path.join(root, cls)) for cls in top]
    for _, _, folder in folders:
        if not _has_any_file(folder):
            raise ImageFolderError(
                f"Class folder {folder} is empty. Add images to it or remove it."
            )
    classes = sorted({cls for _, cls, _ in folders})
    if len(classes) < 2:
        found = ", ".join(classes) or "none"
        raise ImageFolderError(
            f"Image folder {root} has {len(classes)} class folder(s) ({found}); a classifier "
            f"needs at least 2. Put each class's images in its own sub-folder: "
            f"{root}/<class name>/<image>."
        )
    return Layout(root, classes, folders, stray)


def _walk_class_folder(entry: tuple[str | None, str, str], root: str) -> Iterator[ImageFile]:
    split, class_name, folder = entry
    for dirpath, _, files in tf.io.gfile.walk(folder):
        for file in sorted(files):
            path = os.path.join(dirpath, file)
            yield ImageFile(os.path.relpath(path, root), class_name, split)


def _read(root: str, relative_path: str) -> bytes:
    with tf.io.gfile.GFile(os.path.join(root, relative_path), "rb") as handle:
        return handle.read()


def validate_image(root: str, image: ImageFile) -> ImageFile:
    """Decodes the file exactly as Transform will; records why it is rejected if it fails."""
    if image.class_name is None:
        return dataclasses.replace(image, reject_reason="outside any class folder")
    if not image.relative_path.lower().endswith(IMAGE_EXTENSIONS):
        return dataclasses.replace(
            image, reject_reason=f"unsupported format (accepted: {', '.join(IMAGE_EXTENSIONS)})"
        )
    try:
        height, width = decoded_size(_read(root, image.relative_path))
    except UndecodableImage as error:
        return dataclasses.replace(image, reject_reason=str(error))
    return dataclasses.replace(image, height=height, width=width)


def path_fraction(relative_path: str) -> float:
    """A deterministic value in [0, 1) from the relative path, stable across machines."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    class_images: tuple[str, Iterable[ImageFile]], eval_fraction: float
) -> Iterator[ImageFile]:
    """Hash split per class, then make sure a class with 2+ images is in both splits."""
    _, images = class_images
    ranked = sorted(images, key=lambda image: path_fraction(image.relative_path))
    eval_count = sum(path_fraction(image.relative_path) < eval_fraction for image in ranked)
    if len(ranked) >= 2:
        eval_count = min(max(eval_count, 1), len(ranked) - 1)
    for index, image in enumerate(ranked):
        yield dataclasses.replace(image, split="eval" if index < eval_count else "train")


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def to_example(image: ImageFile, root: str, classes: list[str]) -> bytes:
    Metrics.counter(_METRICS, f"examples_{image.split}").inc()
    Metrics.counter(_METRICS, f"class_{image.class_name}").inc()
    features = {
        IMAGE_KEY: _bytes_feature(_read(root, image.relative_path)),
        LABEL_KEY: _int_feature(classes.index(image.class_name)),
        CLASS_NAME_KEY: _bytes_feature(image.class_name.encode()),
        PATH_KEY: _bytes_feature(image.relative_path.encode()),
        HEIGHT_KEY: _int_feature(image.height),
        WIDTH_KEY: _int_feature(image.width),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _reject_line(image: ImageFile) -> str:
    Metrics.counter(_METRICS, "rejected").inc()
    return json.dumps({"path": image.relative_path, "reason": image.reject_reason})


class Executor(base_beam_executor.BaseBeamExecutor):
    """Reads a class-folder image dataset into train and eval tf.Example splits."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],  # noqa: N802 (TFX API)
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        root = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        layout = discover_layout(root)

        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
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
        if sorted(split_names) != ["eval", "train"]:
            raise ImageFolderError(
                f"ImageFolderExampleGen writes train and eval splits, not {split_names}."
            )
        examples.split_names = artifact_utils.encode_split_names(split_names)
        buckets = {split.name: split.hash_buckets for split in output_config.split_config.splits}
        eval_fraction = buckets["eval"] / sum(buckets.values())
        rejects_path = os.path.join(examples.uri, REJECTS_FILE)

        pipeline = self._make_beam_pipeline()
        listed = (
            pipeline
            | "ClassFolders" >> beam.Create(layout.class_folders)
            | "ListFiles" >> beam.FlatMap(_walk_class_folder, root)
        )
        strays = pipeline | "StrayFiles" >> beam.Create(
            [ImageFile(path, None) for path in layout.stray_files]
        )
        checked = (
            (listed, strays)
            | "AllFiles" >> beam.Flatten()
            | "Decode" >> beam.Map(lambda image: validate_image(root, image))
        )
        accepted = checked | "Accepted" >> beam.Filter(lambda image: image.reject_reason is None)
        (
            checked
            | "Rejected" >> beam.Filter(lambda image: image.reject_reason is not None)
            | "RejectLines" >> beam.Map(_reject_line)
            | "WriteRejects" >> beam.io.WriteToText(rejects_path, shard_name_template="")
        )
        folder_split = accepted | "GivenSplit" >> beam.Filter(lambda image: image.split)
        hashed_split = (
            accepted
            | "ToHash" >> beam.Filter(lambda image: not image.split)
            | "ByClass" >> beam.Map(lambda image: (image.class_name, image))
            | "GroupByClass" >> beam.GroupByKey()
            | "AssignSplits" >> beam.FlatMap(assign_splits, eval_fraction)
        )
        split_images = (
            (folder_split, hashed_split)
            | "Splits" >> beam.Flatten()
            # Shuffles paths, not bytes, so classes are mixed in the written files.
            | "ShufflePaths" >> beam.Reshuffle()
        )
        for split in split_names:
            (
                split_images
                | f"Select[{split}]" >> beam.Filter(lambda image, s=split: image.split == s)
                | f"ToExample[{split}]" >> beam.Map(to_example, root, layout.classes)
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

        counts = {
            metric.key.metric.name: metric.committed
            for metric in result.metrics().query(MetricsFilter().with_namespace(_METRICS))[
                "counters"
            ]
        }
        self._record(examples, layout, counts, rejects_path, split_names)

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
        examples.set_string_custom_property("class_names", json.dumps(layout.classes))
        examples.set_string_custom_property("split_counts", json.dumps(split_counts))
        examples.set_int_custom_property("rejected_count", rejected)
        examples.set_string_custom_property("rejects_path", rejects_path)
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

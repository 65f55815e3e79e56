"""Beam executor that turns a folder of class sub-folders into tf.Example splits.

Layouts:
  root/<class>/**/<image>                        split train/eval by a hash of the path
  root/{train,eval|test}/<class>/**/<image>      the folders are the splits
  root/span-<N>/<either of the above>            numbered spans: the window's newest spans
                                                 are read; train takes every span's train
                                                 split, eval only the newest span's

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

import collections
import dataclasses
import errno
import hashlib
import itertools
import json
import logging
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import tensorflow as tf
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.util import examples_utils
from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.beam_counters import committed_counters
from components.example_gen_input import resolve_without_driver, write_input_record
from components.spans import (
    check_same_classes,
    options_from,
    span_window,
    window_from,
    write_spans,
)
from contract.artifact_properties import (
    CLASS_NAMES,
    DUPLICATE_COUNT,
    REJECTED_COUNT,
    REJECTS_PATH,
    SPLIT_COUNTS,
)
from contract.data import (
    CLASS_NAME_KEY,
    EVAL,
    HEIGHT_KEY,
    IMAGE_KEY,
    LABEL_KEY,
    LABELS_FILE,
    PATH_KEY,
    SPLIT_PREFIXES,
    SPLITS,
    TRAIN,
    WIDTH_KEY,
    is_remote,
)
from contract.images import IMAGE_EXTENSIONS
from modules import storage
from modules.image_check import UndecodableImage, decoded_sizes

REJECTS_FILE = "rejects.jsonl"
# The ExampleGen option for images without labels; their ClassFolder is the root itself.
UNLABELLED_KEY = "unlabelled"
_NO_CLASS = ""

_METRICS = "image_folder_example_gen"  # the Beam counters' namespace
_REJECTED = "rejected"
# Files decoded per call: batches let the decoder use every core.
_DECODE_BATCH = 64
# Positions in a class that share one grouping key: fewer keys, a cheaper shuffle.
_POSITIONS_PER_KEY = 16


class ImageFolderError(ValueError):
    """The input folder's layout cannot produce a dataset."""


@dataclasses.dataclass(frozen=True)
class ImageFile:
    relative_path: str
    class_name: str | None  # None: the file is not inside a class folder.
    split: str | None = None  # Set by a train/eval folder layout, else by hashing.
    span: int | None = None  # None: the data has no span folders.
    height: int = 0
    width: int = 0
    reject_reason: str | None = None
    digest: str = ""  # sha256 of the bytes: copies share a split


@dataclasses.dataclass(frozen=True)
class ClassFolder:
    split: str | None  # set by a train/eval folder layout
    class_name: str
    folder: str
    span: int | None = None


@dataclasses.dataclass(frozen=True)
class Layout:
    root: str
    classes: list[str]
    class_folders: list[ClassFolder]  # each class folder to walk
    stray_files: list[str]  # relative paths outside any class folder.
    spans: list[int] = dataclasses.field(default_factory=list)  # empty: no span folders

    @property
    def eval_span(self) -> int | None:
        """The span whose eval split is the eval split: the newest."""
        return max(self.spans) if self.spans else None


def _subdirectories(path: str) -> list[str]:
    return [name for name, is_dir in storage.entries(path) if is_dir and name[0] != "."]


def _files(path: str) -> list[str]:
    return [name for name, is_dir in storage.entries(path) if not is_dir and name[0] != "."]


def _walk(folder: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """Like os.walk, without hidden files and folders."""
    # storage reaches gs:// and buckets, but tf.io.gfile stats every local entry: 30x slower.
    for dirpath, folders, files in storage.walk(folder) if is_remote(folder) else os.walk(folder):
        folders[:] = [name for name in folders if name[0] != "."]
        yield dirpath, folders, [name for name in files if name[0] != "."]


def _has_any_file(folder: str) -> bool:
    return any(files for _, _, files in _walk(folder))


def discover_layout(root: str) -> Layout:
    """Finds the classes and the folders to walk; fails clearly on unusable layouts."""
    if not storage.isdir(root):
        raise ImageFolderError(
            f"Image folder {root} does not exist or is not a directory. Point --data at a "
            f"folder with one sub-folder per class."
        )
    top = _subdirectories(root)
    split_dirs = {
        split: next((name for name in names if name in top), None)
        for split, names in SPLIT_PREFIXES.items()
    }
    stray = list(_files(root))
    folders: list[ClassFolder] = []
    if all(split_dirs.values()):
        for split, name in split_dirs.items():
            base = os.path.join(root, name)
            stray += [f"{name}/{file}" for file in _files(base)]
            folders += [
                ClassFolder(split, cls, os.path.join(base, cls)) for cls in _subdirectories(base)
            ]
        # Any other top-level folder is outside the split layout: its files are rejects.
        for other in sorted(set(top) - set(split_dirs.values())):
            stray += [
                os.path.relpath(os.path.join(dirpath, file), root)
                for dirpath, _, files in _walk(os.path.join(root, other))
                for file in files
            ]
    else:
        folders = [ClassFolder(None, cls, os.path.join(root, cls)) for cls in top]
    for entry in folders:
        if not _has_any_file(entry.folder):
            raise ImageFolderError(
                f"Class folder {entry.folder} is empty. Add images to it or remove it."
            )
    classes = sorted({entry.class_name for entry in folders})
    if len(classes) < 2:
        found = ", ".join(classes) or "none"
        raise ImageFolderError(
            f"Image folder {root} has {len(classes)} class folder(s) ({found}); a classifier "
            f"needs at least 2. Put each class's images in its own sub-folder: "
            f"{root}/<class name>/<image>."
        )
    return Layout(root, classes, folders, stray)


def unlabelled_layout(root: str) -> Layout:
    """Every file under root, with no class: images to score, not to train on."""
    if not storage.isdir(root):
        raise ImageFolderError(f"Image folder {root} does not exist or is not a directory.")
    return Layout(root, [], [ClassFolder(None, _NO_CLASS, root)], [])


def discover_span_layout(root: str, window_spans: int, newest: int | None = None) -> Layout:
    """The window's spans as one layout: each span may have either folder layout, and all
    must hold the same classes. Paths stay relative to root, so they name their span."""
    spans = span_window(root, window_spans, newest)
    layouts = {span: discover_layout(folder) for span, folder in spans.items()}
    check_same_classes({span: layout.classes for span, layout in layouts.items()}, root)
    folders, stray = [], list(_files(root))
    for span, layout in layouts.items():
        folders += [dataclasses.replace(entry, span=span) for entry in layout.class_folders]
        prefix = os.path.relpath(layout.root, root)
        stray += [os.path.join(prefix, path) for path in layout.stray_files]
    return Layout(root, layouts[max(layouts)].classes, folders, stray, spans=sorted(spans))


def _odd_entry(entry: os.DirEntry) -> str | None:
    """Why a local entry is neither a file to read nor a folder to walk; None if it is one."""
    try:
        entry.name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8; rename it"
    try:
        found = os.stat(entry.path)  # follows a link
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop; remove the link"
        if entry.is_symlink():
            target = os.readlink(entry.path)
            return f"a broken symbolic link (to {target}); remove it or restore its target"
        return f"cannot be read ({error.strerror})"
    if stat.S_ISDIR(found.st_mode):
        if entry.is_symlink():
            return "a symbolic link to a folder, not followed; copy the folder in instead"
        return None
    return None if stat.S_ISREG(found.st_mode) else "not a regular file"


def _local_entries(folder: str) -> Iterator[tuple[str, str | None]]:
    """(path, reject reason or None) of every file below the folder, hidden ones left out."""
    pending = [folder]
    while pending:
        current = pending.pop()
        with os.scandir(current) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            reason = _odd_entry(entry)
            if reason is None and entry.is_dir():
                pending.append(entry.path)
            else:
                yield entry.path, reason


def _relative_paths(folder: str, root: str) -> Iterator[tuple[str, str | None]]:
    """(path relative to root, reject reason or None) of each file below the folder."""
    if is_remote(folder):
        found = (
            (os.path.join(dirpath, name), None)
            for dirpath, _, names in _walk(folder)
            for name in sorted(names)
        )
    else:
        found = _local_entries(folder)
    for path, reason in found:
        # normpath: files directly under the root (unlabelled) get "a.jpg", not "./a.jpg".
        relative = os.path.normpath(os.path.relpath(path, root))
        # A name that is not UTF-8 is shown with its bytes escaped.
        yield os.fsencode(relative).decode("utf-8", "backslashreplace"), reason


def _list_class_folder(entry: ClassFolder, root: str) -> Iterator[list[ImageFile]]:
    """The folder's files, in batches of the size the decoder takes."""
    files = (
        ImageFile(path, entry.class_name, entry.split, entry.span, reject_reason=reason)
        for path, reason in _relative_paths(entry.folder, root)
    )
    while batch := list(itertools.islice(files, _DECODE_BATCH)):
        yield batch


def _read(root: str, relative_path: str) -> bytes:
    path = os.path.join(root, relative_path)
    if is_remote(path):
        return storage.read_bytes(path)
    # tf.io.gfile stats a local file three times before it reads it: 1.5x the read's cost.
    with open(path, "rb") as handle:
        return handle.read()


def _check_placement(image: ImageFile) -> ImageFile:
    if image.reject_reason:
        return image
    if image.class_name is None:
        return dataclasses.replace(image, reject_reason="outside any class folder")
    if not image.relative_path.lower().endswith(IMAGE_EXTENSIONS):
        return dataclasses.replace(
            image, reject_reason=f"unsupported format (accepted: {', '.join(IMAGE_EXTENSIONS)})"
        )
    return image


def validate_images(root: str, images: Sequence[ImageFile]) -> list[ImageFile]:
    """Decodes the files exactly as Transform will; records why each rejected one failed.
    An image over the pixel limit is refused from its header, before it is decoded."""
    read = []
    for image in map(_check_placement, images):
        if image.reject_reason:
            read.append((image, b""))
            continue
        data = _read(root, image.relative_path)
        read.append((dataclasses.replace(image, digest=hashlib.sha256(data).hexdigest()), data))
    to_decode = [(image, data) for image, data in read if not image.reject_reason]
    sizes = iter(decoded_sizes([data for _, data in to_decode]))
    return [image if image.reject_reason else _with_size(image, next(sizes)) for image, _ in read]


def _with_size(image: ImageFile, size: tuple[int, int] | UndecodableImage) -> ImageFile:
    if isinstance(size, UndecodableImage):
        return dataclasses.replace(image, reject_reason=str(size))
    height, width = size
    return dataclasses.replace(image, height=height, width=width)


def _route_checked(batch: list[ImageFile], root: str) -> Iterator[list[ImageFile] | TaggedOutput]:
    """The batch's accepted images as one list (metadata only), each rejected file alone."""
    checked = validate_images(root, batch)
    for image in checked:
        if image.reject_reason:
            yield TaggedOutput(_REJECTED, image)
    yield [image for image in checked if not image.reject_reason]


def path_fraction(relative_path: str) -> float:
    """A deterministic value in [0, 1) from the relative path, stable across machines."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(images: Iterable[ImageFile], eval_fraction: float) -> list[ImageFile]:
    """Hash split of one class's images by path; a class with 2+ images gets both splits.
    Copies of one image (the same bytes) all take the split of the copy ranked first."""
    ranked = sorted(images, key=lambda image: path_fraction(image.relative_path))
    eval_count = sum(path_fraction(image.relative_path) < eval_fraction for image in ranked)
    if len(ranked) >= 2:
        eval_count = min(max(eval_count, 1), len(ranked) - 1)
    split_of: dict[str, str] = {}
    for index, image in enumerate(ranked):
        split_of.setdefault(
            image.digest or image.relative_path, EVAL if index < eval_count else TRAIN
        )
    return [
        dataclasses.replace(image, split=split_of[image.digest or image.relative_path])
        for image in ranked
    ]


def _by_class(batch: list[ImageFile]) -> Iterator[tuple[tuple[int, str], list[ImageFile]]]:
    """The batch's images grouped by span (-1: no spans) and class."""
    classes: dict[tuple[int, str], list[ImageFile]] = collections.defaultdict(list)
    for image in batch:
        span = -1 if image.span is None else image.span
        classes[(span, image.class_name)].append(image)
    yield from classes.items()


def split_class(
    class_batches: tuple[tuple[int, str], Iterable[list[ImageFile]]],
    eval_fraction: float,
    eval_span: int | None,
) -> Iterator[tuple[tuple[str, int], list[ImageFile]]]:
    """Splits one class of one span, then keys its images by split and position.

    Split folders decide the split where the span has them, else a hash of the path. Only
    the eval span's eval images are kept for eval; older spans give their train images.
    Grouping by position puts the n-th images of every class together, so the classes
    are interleaved in the written files instead of following one another.
    """
    (span, _), batches = class_batches
    images = [image for batch in batches for image in batch]
    if all(image.split for image in images):
        images.sort(key=lambda image: path_fraction(image.relative_path))
    else:
        images = assign_splits(images, eval_fraction)
    if eval_span is not None and span != eval_span:
        images = [image for image in images if image.split == TRAIN]
    for split in sorted({image.split for image in images}):
        in_split = [image for image in images if image.split == split]
        for start in range(0, len(in_split), _POSITIONS_PER_KEY):
            key = (split, start // _POSITIONS_PER_KEY)
            yield key, in_split[start : start + _POSITIONS_PER_KEY]


def _bytes_feature(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def to_examples(
    position: tuple[tuple[str, int], Iterable[list[ImageFile]]], root: str, classes: list[str]
) -> Iterator[bytes]:
    """Serialized examples of one position's images, one image of each class in turn."""
    (split, _), runs = position
    runs = list(runs)
    for run in runs:
        Metrics.counter(_METRICS, f"class_{run[0].class_name}").inc(len(run))
    Metrics.counter(_METRICS, f"examples_{split}").inc(sum(len(run) for run in runs))
    for row in itertools.zip_longest(*runs):
        yield from (to_example(image, root, classes) for image in row if image)


def to_example(image: ImageFile, root: str, classes: list[str]) -> bytes:
    features = {
        IMAGE_KEY: _bytes_feature(_read(root, image.relative_path)),
        PATH_KEY: _bytes_feature(image.relative_path.encode()),
        HEIGHT_KEY: _int_feature(image.height),
        WIDTH_KEY: _int_feature(image.width),
    }
    if image.class_name != _NO_CLASS:
        features[LABEL_KEY] = _int_feature(classes.index(image.class_name))
        features[CLASS_NAME_KEY] = _bytes_feature(image.class_name.encode())
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _count_duplicates(copies: tuple[str, int]) -> None:
    """Counts each copy of one image's bytes after the first."""
    Metrics.counter(_METRICS, "duplicates").inc(copies[1] - 1)


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
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
        )
        exec_properties = resolve_without_driver(exec_properties, examples)
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
            | "ListFiles" >> beam.FlatMap(_list_class_folder, root)
        )
        strays = pipeline | "StrayFiles" >> beam.Create(
            [[ImageFile(path, None) for path in layout.stray_files]]
        )
        # Batches of files (metadata only) from here to the split's examples.
        checked = (
            (listed, strays)
            | "AllFiles" >> beam.Flatten()
            | "Decode"
            >> beam.FlatMap(_route_checked, root).with_outputs(_REJECTED, main="accepted")
        )
        (
            checked[_REJECTED]
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
            | "ByClass" >> beam.FlatMap(_by_class)
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

        counts = committed_counters(result, _METRICS)
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

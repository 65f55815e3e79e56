"""What `alexnet-tfx predict-batch` scores, found before any work starts.

An image folder in any layout the pipeline accepts (class folders, train/eval class
folders, span folders), or images without class folders; or a TFRecord folder (its
train*/eval* files, or every file, as the pipeline reads them) with `labels.txt` optional.
Class folders, or labels in the records, make the images labelled, so the batch job can
report accuracy.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from components.image_folder_example_gen.layout import (
    ImageFolderError,
    Layout,
    discover_layout,
    discover_span_layout,
)
from components.spans import has_spans
from components.tfrecord_layout import read_labels, tfrecord_splits
from contract.data import LABELS_FILE
from contract.images import IMAGE_EXTENSIONS


class BatchInputError(ValueError):
    """The data holds nothing to score; the message names the folder."""


@dataclasses.dataclass(frozen=True)
class ImageFolderInput:
    root: str
    files: list[tuple[str, str | None]]  # (path relative to root, its class folder or None)
    labelled: bool

    @property
    def size_text(self) -> str:
        """How much there is to score, for the console."""
        return f"{len(self.files)} files"


@dataclasses.dataclass(frozen=True)
class TFRecordInput:
    root: str
    files: list[str]  # absolute paths of the TFRecord files
    class_names: list[str] | None  # from labels.txt: the label feature's names

    @property
    def labelled(self) -> bool:
        return self.class_names is not None

    @property
    def size_text(self) -> str:
        return f"{len(self.files)} TFRecord files"


BatchInput = ImageFolderInput | TFRecordInput


def _all_files(root: str) -> list[str]:
    """Every visible file under root, relative to it, sorted."""
    found = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        prefix = os.path.relpath(dirpath, root)
        found += [
            os.path.normpath(os.path.join(prefix, name))
            for name in names
            if not name.startswith(".")
        ]
    return sorted(found)


def _class_layout(root: str) -> Layout | None:
    """The class-folder layout, or None for images that are not in class folders."""
    try:
        return discover_span_layout(root, 0) if has_spans(root) else discover_layout(root)
    except ImageFolderError:
        return None


def _class_of(relative_path: str, root: str, layout: Layout | None) -> str | None:
    if layout is None:
        return None
    path = os.path.join(root, relative_path)
    return next(
        (
            entry.class_name
            for entry in layout.class_folders
            if path.startswith(entry.folder.rstrip("/") + "/")
        ),
        None,
    )


def find_inputs(data: str) -> BatchInput:
    """The images or records under `data`; fails, naming the folder, when there are none."""
    root = os.path.abspath(data)
    if not os.path.isdir(root):
        raise BatchInputError(f"--data: {data} does not exist or is not a folder.")
    files = _all_files(root)
    if any(path.lower().endswith(IMAGE_EXTENSIONS) for path in files):
        layout = _class_layout(root)
        return ImageFolderInput(
            root,
            [(path, _class_of(path, root, layout)) for path in files],
            labelled=layout is not None,
        )
    records = [path for path in files if os.path.basename(path) != LABELS_FILE]
    if not records:
        raise BatchInputError(
            f"--data: {data} holds no images ({', '.join(IMAGE_EXTENSIONS)}) and no TFRecord "
            "files; point it at a folder of images or of TFRecords."
        )
    patterns = tfrecord_splits(root).values()
    return TFRecordInput(
        root,
        sorted({match for pattern in patterns for match in tf.io.gfile.glob(f"{root}/{pattern}")}),
        read_labels(root),
    )

"""The image folder's layout (classes, split folders, spans) and the files in it, as
ImageFile records; every odd entry becomes a reject with its reason."""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import stat
from collections.abc import Iterator

from components.spans import check_same_classes, span_window
from contract.data import SPLIT_PREFIXES, is_remote
from modules import storage

REJECTED = "rejected"  # the tag of rejected files
METRICS = "image_folder_example_gen"  # the Beam counters' namespace
# Files decoded per call: batches let the decoder use every core.
DECODE_BATCH = 64
NO_CLASS = ""


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
    return Layout(root, [], [ClassFolder(None, NO_CLASS, root)], [])


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


def list_class_folder(entry: ClassFolder, root: str) -> Iterator[list[ImageFile]]:
    """The folder's files, in batches of the size the decoder takes."""
    files = (
        ImageFile(path, entry.class_name, entry.split, entry.span, reject_reason=reason)
        for path, reason in _relative_paths(entry.folder, root)
    )
    while batch := list(itertools.islice(files, DECODE_BATCH)):
        yield batch

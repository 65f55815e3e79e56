"""Which TFRecord files of a folder are which split: train*/eval* (or test*), else one split
that the ExampleGen hashes. A remote folder that is not listed (compiling for Kubeflow) must
name its files train* and eval*."""

from __future__ import annotations

import fnmatch
import os

from contract.data import LABELS_FILE, SPLIT_PREFIXES, is_remote
from modules import storage

# ImportExampleGen's input split for files that carry no split name; they are hashed.
SINGLE_SPLIT = "single_split"
TFRECORD_GLOB = "*.tfrecord*"


class TFRecordLayoutError(ValueError):
    """The folder's files cannot be told apart; the message names the folder."""


def tfrecord_splits(folder: str, list_remote: bool = True) -> dict[str, str]:
    """{split: file pattern}: train and eval when the file names say so, else SINGLE_SPLIT."""
    if is_remote(folder) and not list_remote:
        return {split: f"{prefixes[0]}*" for split, prefixes in SPLIT_PREFIXES.items()}
    names = {name for name in storage.listdir(folder) if name[0] != "."}
    patterns = {}
    for split, prefixes in SPLIT_PREFIXES.items():
        prefix = next((p for p in prefixes if any(n.startswith(p) for n in names)), None)
        if prefix:
            patterns[split] = f"{prefix}*"
    if len(patterns) < len(SPLIT_PREFIXES):
        return {SINGLE_SPLIT: _unsplit_pattern(folder, names)}
    return patterns


def _unsplit_pattern(folder: str, names: set[str]) -> str:
    # The ExampleGen reads every file its pattern matches, so labels.txt must not match.
    if LABELS_FILE not in names:
        return "*"
    others = sorted(names - {LABELS_FILE})
    if not others or not all(fnmatch.fnmatch(name, TFRECORD_GLOB) for name in others):
        raise TFRecordLayoutError(
            f"data: {folder} holds {LABELS_FILE} next to files not named {TFRECORD_GLOB} "
            f"({', '.join(others[:3]) or 'none'}); name the TFRecord files *.tfrecord (or "
            f"train*/eval*), so {LABELS_FILE} is not read as data."
        )
    return TFRECORD_GLOB


def read_labels(folder: str) -> list[str] | None:
    """The class names of a folder's labels.txt, in label order; None if it has none."""
    path = os.path.join(folder, LABELS_FILE)
    if not storage.exists(path):
        return None
    with storage.open_file(path) as handle:
        return [line.strip() for line in handle if line.strip()]

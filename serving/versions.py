"""The pushed versions of a model, what each one is, and rolling back to one of them."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from contract.model_files import PUSH_RECORD_FILE, TRAINING_RECORD_FILE
from modules import storage
from serving import layout


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    version: int
    pushed_at: str | None
    run_id: str | None
    eval_accuracy: float | None
    spans: list[int] | None  # None: not trained on span folders, or not recorded


class RollbackError(ValueError):
    """The rollback cannot happen; nothing was changed."""


def _record(version_dir: str, name: str) -> dict[str, Any]:
    path = os.path.join(version_dir, name)
    if not storage.exists(path):
        return {}
    return json.loads(storage.read_bytes(path))


def list_versions(serving_dir: str, model_name: str) -> list[VersionInfo]:
    """The complete versions, oldest first; the last is the one served."""
    base = layout.model_base(serving_dir, model_name)
    found = []
    for version in layout.complete_versions(base):
        version_dir = os.path.join(base, str(version))
        push, training = (
            _record(version_dir, PUSH_RECORD_FILE),
            _record(version_dir, TRAINING_RECORD_FILE),
        )
        found.append(
            VersionInfo(
                version=version,
                pushed_at=push.get("pushed_at"),
                run_id=push.get("run_id"),
                eval_accuracy=push.get("eval_accuracy"),
                spans=training.get("spans"),
            )
        )
    return found


def rollback(serving_dir: str, model_name: str, to_version: int | None = None) -> list[int]:
    """Retires every version newer than `to_version` (default: the one before the served
    one) into `<model>/.retired/`; returns the retired versions. Checks everything first, so
    a refused rollback changes nothing."""
    base = layout.model_base(serving_dir, model_name)
    versions = layout.complete_versions(base)
    if not versions:
        raise RollbackError(f"nothing to roll back: no version is pushed under {base}")
    if to_version is None:
        if len(versions) < 2:
            raise RollbackError(
                f"nothing to roll back to: version {versions[0]} is the only one under {base}"
            )
        to_version = versions[-2]
    if to_version not in versions:
        raise RollbackError(
            f"--to-version {to_version}: no such version under {base}; pushed versions: "
            + ", ".join(map(str, versions))
        )
    if to_version == versions[-1]:
        raise RollbackError(f"--to-version {to_version}: that version is already served")
    newer = [version for version in versions if version > to_version]
    retired = os.path.join(base, layout.RETIRED_DIR)
    storage.makedirs(retired)
    # Oldest first: the served (highest) version goes last, so servers switch once, from it
    # straight to `to_version`. Each move is atomic for readers (a rename on a filesystem;
    # in a bucket saved_model.pb leaves first); nothing is deleted.
    for version in newer:
        storage.move_tree(
            os.path.join(base, str(version)),
            os.path.join(retired, str(version)),
            marker=layout.SAVED_MODEL_FILE,
        )
    return newer

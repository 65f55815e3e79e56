"""The TF Serving directory layout: <serving_dir>/<model_name>/<integer version>/, in a
folder or a bucket (modules/storage.py)."""

from __future__ import annotations

import os
import socket
import time

from contract.model_files import CLASS_NAMES_FILE
from modules import storage

SAVED_MODEL_FILE = "saved_model.pb"


def model_base(serving_dir: str, model_name: str) -> str:
    return os.path.join(serving_dir, model_name)


def complete_versions(base: str) -> list[int]:
    """Integer-named version folders that hold a SavedModel, oldest first.

    Temporary folders of a push in progress are hidden (".tmp-..."), and a SavedModel is
    complete once its saved_model.pb exists, which a push writes last.
    """
    if not storage.isdir(base):
        return []
    return sorted(
        int(name)
        for name in storage.listdir(base)
        if name.isdigit() and storage.exists(os.path.join(base, name, SAVED_MODEL_FILE))
    )


# A push copies into <base>/.tmp-<host>-<pid>-<random> and renames it to its version.
STAGING_PREFIX = ".tmp-"
# A staging folder from another host is left alone this long: its pusher may still run.
STAGING_MAX_AGE_SECONDS = 24 * 3600


def staging_name(token: str) -> str:
    return f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-{token}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def abandoned_staging(base: str, now: float | None = None) -> list[str]:
    """Staging folders whose push died: from a process on this host that has ended, or
    older than STAGING_MAX_AGE_SECONDS (another host's, say a Kubeflow pod's)."""
    if not storage.isdir(base):
        return []
    now = time.time() if now is None else now
    found = []
    for name in storage.listdir(base):
        if not name.startswith(STAGING_PREFIX):
            continue
        host, _, pid = name[len(STAGING_PREFIX) :].rpartition("-")[0].rpartition("-")
        path = os.path.join(base, name)
        if host == socket.gethostname() and pid.isdigit():
            if not _process_alive(int(pid)):
                found.append(path)
            continue
        try:
            modified = storage.modified_seconds(path)
        except FileNotFoundError:
            continue  # its push finished meanwhile
        if modified is None or now - modified > STAGING_MAX_AGE_SECONDS:
            found.append(path)  # None: a bucket prefix left empty
    return found


# Rolled-back versions move here, hidden from TF Serving and KServe, never deleted.
RETIRED_DIR = ".retired"


def retired_versions(base: str) -> list[int]:
    """Versions a rollback retired, oldest first."""
    retired = os.path.join(base, RETIRED_DIR)
    if not storage.isdir(retired):
        return []
    return sorted(int(name) for name in storage.listdir(retired) if name.isdigit())


def next_version(base: str) -> int:
    """One past every version ever pushed, retired ones included: a number is never reused,
    so a version number in a log or a cache always means one model."""
    return max([0, *complete_versions(base), *retired_versions(base)]) + 1


def latest_version_dir(serving_dir: str, model_name: str) -> tuple[int, str] | None:
    base = model_base(serving_dir, model_name)
    versions = complete_versions(base)
    return (versions[-1], os.path.join(base, str(versions[-1]))) if versions else None


def fingerprint(saved_model_dir: str) -> bytes | None:
    """The SavedModel's fingerprint.pb, which TensorFlow writes from the graph and weights."""
    path = os.path.join(saved_model_dir, "fingerprint.pb")
    return storage.read_bytes(path) if storage.exists(path) else None


def read_class_names(saved_model_dir: str) -> list[str]:
    path = os.path.join(saved_model_dir, CLASS_NAMES_FILE)
    if not storage.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: this model was exported before class names were saved with it; "
            "re-run the pipeline to push a new version."
        )
    with storage.open_file(path) as handle:
        return handle.read().splitlines()

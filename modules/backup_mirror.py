"""The Trainer's backup, mirrored to the store when it lives on a Kubeflow pod's disk.

On Kubeflow Pipelines a task's artifacts are local copies (/minio/..., /s3/..., /gcs/...,
contract/launcher_paths.py) that the launcher uploads only after the command exits, and a
retried pod starts on an empty disk. So after each epoch the backup goes to the store too,
and a new pod starts from it. Each epoch's copy goes to a folder of its own and then
`latest.json` names it, so a pod killed mid-upload leaves the previous epoch's copy in
force, never a half-written one.

The last epoch's copy stays after the training: the launcher uploads the model only after
the command exits, and a pod killed during that upload then resumes at the export instead
of training again. It is the size of the weights and the optimizer's state, one per run.
"""

from __future__ import annotations

import json
import logging

import tf_keras as keras

from contract.launcher_paths import remote_uri
from modules import storage

LATEST_FILE = "latest.json"


def mirror_of(backup: str) -> str | None:
    """Where a backup folder on a pod's disk is mirrored; None for any other folder."""
    return remote_uri(backup)


def restore(backup: str) -> int | None:
    """Copies the mirror's latest complete epoch into the (empty) local backup; returns the
    epoch, or None when there is no mirror or nothing in it."""
    remote = mirror_of(backup)
    if remote is None or not storage.exists(f"{remote}/{LATEST_FILE}"):
        return None
    epoch = json.loads(storage.read_bytes(f"{remote}/{LATEST_FILE}"))["epoch"]
    storage.download_tree(f"{remote}/epoch-{epoch}", backup)
    logging.info("Trainer: backup of epoch %d restored from %s", epoch, remote)
    return epoch


class MirrorBackup(keras.callbacks.Callback):
    """After BackupAndRestore has saved an epoch, copies the backup folder to its mirror."""

    def __init__(self, backup: str) -> None:
        super().__init__()
        self.backup = backup
        self.remote = mirror_of(backup)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.remote is None:
            return
        storage.upload_tree(self.backup, f"{self.remote}/epoch-{epoch}")
        storage.write_bytes(f"{self.remote}/{LATEST_FILE}", json.dumps({"epoch": epoch}).encode())
        for name in storage.listdir(self.remote):
            if name.startswith("epoch-") and name != f"epoch-{epoch}":
                storage.remove_tree(f"{self.remote}/{name}")
        logging.info("Trainer: backup of epoch %d mirrored to %s", epoch, self.remote)

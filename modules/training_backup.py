"""Where a training keeps its backup, so that a later execution of it resumes there.

The backup is keyed by a fingerprint of the Trainer's inputs and settings, not by the
execution's output URIs, which differ between a killed local run and its re-run, and between
attempts of a retried Kubeflow pod.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator

import tensorflow as tf
from tfx import v1 as tfx

from contract.data import is_remote
from contract.training_job import BACKUP_ENV

# <Trainer's output folder>/backup/<fingerprint>/: Keras' checkpoint and the epoch log.
BACKUP_DIR = "backup"


def training_fingerprint(fn_args: tfx.components.FnArgs) -> str:
    """Identifies a training by its input artifacts and exec properties: a later execution
    with the same fingerprint may resume its backup; any change starts afresh."""
    identity = {
        "train_files": sorted(fn_args.train_files),
        "eval_files": sorted(fn_args.eval_files),
        "transform_graph": fn_args.transform_graph_path,
        "schema": fn_args.schema_path,
        "base_model": fn_args.base_model,
        "custom_config": fn_args.custom_config,
        "tuned": fn_args.hyperparameters,
        "train_steps": fn_args.train_steps,
        "eval_steps": fn_args.eval_steps,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def backup_dir(fn_args: tfx.components.FnArgs) -> str:
    """Beside the executions' output folders, so every execution of this Trainer finds it:
    locally <root>/Trainer/model_run/<execution> -> <root>/Trainer/backup/<fingerprint>; on
    Kubeflow .../<run>/Trainer/<attempt>/model_run -> .../<run>/Trainer/backup/<fingerprint>."""
    node_dir = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip("/")))
    return os.path.join(node_dir, BACKUP_DIR, training_fingerprint(fn_args))


@contextlib.contextmanager
def claim_backup(fn_args: tfx.components.FnArgs) -> Iterator[str]:
    """The training's backup folder, locked for this process. When another live process
    holds it (the same training in a concurrent run), this execution keeps a backup of its
    own in its model_run folder instead. The lock dies with its process, even on SIGKILL.
    A replica of a multi-worker training gets the folder its launcher claimed."""
    if os.environ.get(BACKUP_ENV):
        yield os.environ[BACKUP_ENV]
        return
    shared = backup_dir(fn_args)
    tf.io.gfile.makedirs(shared)
    if is_remote(shared):  # no file locks there; Kubeflow runs each have their own folder
        yield shared
        return
    with open(os.path.join(shared, "lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            private = os.path.join(fn_args.model_run_dir, BACKUP_DIR)
            logging.info(
                "Trainer: %s is in use by a concurrent run; backing up to %s", shared, private
            )
            tf.io.gfile.makedirs(private)
            yield private
            return
        yield shared

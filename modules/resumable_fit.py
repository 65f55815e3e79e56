"""model.fit that a killed execution, started again, continues after its last epoch."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import tensorflow as tf
import tf_keras as keras
from tfx import v1 as tfx
from tfx.utils import io_utils

from modules import backup_mirror
from modules.epoch_log import EPOCH_LOG, EpochLog, read_epoch_log
from modules.hyperparameters import Hyperparameters
from modules.progress import ProgressReport


@dataclasses.dataclass(frozen=True)
class FitRecord:
    epochs: list[dict[str, Any]]  # every epoch's record, those before a resume included
    images_per_second: float  # training, after this execution's first epoch
    resumed_from_epoch: int = 0  # the first epoch this execution trained
    # A multi-worker training's: the images of one step each replica got (None: one process).
    replica_batch: int | None = None


def steps_per_epoch(fn_args: tfx.components.FnArgs, hp: Hyperparameters) -> int:
    return max(1, fn_args.train_steps // max(1, hp.epochs))


def fit_resumably(
    model: keras.Model,
    train: tf.data.Dataset,
    evaluation: tf.data.Dataset,
    hp: Hyperparameters,
    fn_args: tfx.components.FnArgs,
    backup: str,
    chief: bool = True,
) -> int:
    """model.fit with a checkpoint and an epoch log in `backup`, continuing after the last
    epoch they hold; returns the first epoch this call trained (hp.epochs: none left). In a
    multi-worker training every replica restores and saves with Keras' BackupAndRestore
    (which gives the others folders of their own), and the `chief` alone keeps the epoch
    log, the mirror and the progress."""
    checkpoint = os.path.join(backup, "checkpoint")
    epoch_log = os.path.join(backup, EPOCH_LOG)
    if chief and not tf.io.gfile.exists(checkpoint):
        backup_mirror.restore(backup)  # a retried Kubeflow pod starts on an empty disk
    if chief and not tf.io.gfile.exists(checkpoint) and tf.io.gfile.exists(epoch_log):
        tf.io.gfile.remove(epoch_log)  # records of epochs no checkpoint kept
    logging.info("Trainer: backup in %s", backup)
    epoch_logger = EpochLog(epoch_log)
    # A backup of this training (a re-run, a retried pod) wins over the warm start. Kept
    # after fit(): a kill during the export then resumes at the export.
    backup_and_restore = keras.callbacks.BackupAndRestore(checkpoint, delete_checkpoint=False)
    tensorboard = keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir, update_freq="epoch")
    if chief:
        # The epoch log before the backup: a kill between the two retrains an epoch, never
        # loses one; the mirror after the save it copies.
        callbacks = [
            epoch_logger,
            backup_and_restore,
            backup_mirror.MirrorBackup(backup),
            tensorboard,
            ProgressReport(hp.batch_size),
        ]
    else:
        callbacks = [backup_and_restore, tensorboard]
    model.fit(
        train,
        epochs=hp.epochs,
        steps_per_epoch=steps_per_epoch(fn_args, hp),
        validation_data=evaluation,
        validation_steps=max(1, fn_args.eval_steps),
        callbacks=callbacks,
        verbose=0,  # ProgressReport and EpochLog report instead
    )
    return hp.epochs if epoch_logger.first_epoch is None else epoch_logger.first_epoch


def close_backup(
    backup: str, first_epoch: int, fn_args: tfx.components.FnArgs, hp: Hyperparameters
) -> FitRecord:
    """Once the model is exported: keeps the epoch log with the execution's outputs,
    removes the backup and measures the training rate."""
    epoch_log = os.path.join(backup, EPOCH_LOG)
    epochs = read_epoch_log(epoch_log)
    io_utils.copy_file(epoch_log, os.path.join(fn_args.model_run_dir, EPOCH_LOG), overwrite=True)
    tf.io.gfile.rmtree(backup)  # its mirror on Kubeflow stays (backup_mirror.py)
    # This execution's epochs after its first, which includes tracing and cache filling.
    timed = [record for record in epochs if record["epoch"] > first_epoch] or epochs[first_epoch:]
    images = steps_per_epoch(fn_args, hp) * hp.batch_size * len(timed)
    seconds = sum(record["train_seconds"] for record in timed)
    return FitRecord(epochs, images / max(1e-9, seconds), first_epoch)

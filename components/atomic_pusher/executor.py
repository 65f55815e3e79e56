"""AtomicPusher's executor: atomic pushes into integer versions, no duplicate of the served model.

Differences from TFX's filesystem push:
- versions are 1, 2, 3, ... (TF Serving picks the highest), not Unix timestamps;
- the model is copied to a hidden temporary folder and renamed into place, so a reader
  never sees a half-copied version (rename is atomic on POSIX filesystems; in a bucket the
  folder is copied on the server with saved_model.pb last, which readers wait for);
- a candidate whose SavedModel fingerprint equals the served version's is not pushed again;
- no second archive copy: the Model artifact in the pipeline root already keeps it;
- each version keeps the statistics of its training data and a push record
  (`contract/model_files.py`).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import uuid
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.evaluation_metrics import candidate_accuracy
from contract.artifact_properties import DUPLICATE_OF_VERSION, EVAL_CONFIG_DIGEST, UNCHANGED_VERSION
from contract.data import TRAIN, is_remote
from contract.model_files import PUSH_RECORD_FILE, TRAINING_STATISTICS_FILE
from modules import storage
from serving import layout as serving_layout

STATISTICS_KEY = "statistics"
EVALUATION_KEY = "evaluation"


RETRY_HINT = (
    "The model stays in the pipeline root: run the same command again once this is fixed, "
    "and that run pushes it."
)


def open_staging(base: str) -> str:
    """Makes <serving_dir>/<model_name> with a new staging folder in it, after removing
    those of interrupted pushes; returns the staging folder. A missing parent, or a target
    that cannot be written, is an error naming the path."""
    serving_dir = os.path.dirname(base.rstrip("/"))
    parent = os.path.dirname(serving_dir)
    # A missing parent is often an unmounted volume: do not fill the disk beneath it.
    if not is_remote(base) and not os.path.isdir(parent):
        raise FileNotFoundError(
            f"Cannot push to {base}: the serving directory's parent {parent} does not exist. "
            f"Create it or mount its volume, or pass another --serving-dir. {RETRY_HINT}"
        )
    staging = os.path.join(base, serving_layout.staging_name(uuid.uuid4().hex[:12]))
    try:
        storage.check_bucket(base)
        storage.makedirs(base)
        for abandoned in serving_layout.abandoned_staging(base):
            logging.info("Removing %s, left by an interrupted push.", abandoned)
            with contextlib.suppress(tf.errors.NotFoundError):  # another pusher's cleanup
                storage.remove_tree(abandoned)
        storage.makedirs(staging)
    except storage.StorageError as error:
        raise storage.StorageError(f"Cannot push: {error} {RETRY_HINT}") from error
    except (OSError, tf.errors.OpError) as error:
        reason = error.message if isinstance(error, tf.errors.OpError) else error.strerror
        raise PermissionError(
            f"Cannot push to {base}: {reason}. Make it writable, or pass another "
            f"--serving-dir. {RETRY_HINT}"
        ) from error
    return staging


def _write_extras(staging: str, extras: dict[str, bytes]) -> None:
    for relative, content in extras.items():
        path = os.path.join(staging, relative)
        storage.makedirs(os.path.dirname(path))
        storage.write_bytes(path, content)


def _stage(model_path: str, staging: str, extras: dict[str, bytes]) -> None:
    """The SavedModel and extras into the staging folder, saved_model.pb last."""
    marker = serving_layout.SAVED_MODEL_FILE
    if storage.is_bucket(staging):
        _write_extras(staging, extras)
        storage.upload_tree(model_path, staging, last=(marker,))
        return
    # copy_dir empties its target first, so the extras come after it.
    io_utils.copy_dir(model_path, staging, deny_regex_patterns=[r"saved_model\.pb"])
    _write_extras(staging, extras)
    io_utils.copy_file(os.path.join(model_path, marker), os.path.join(staging, marker))


def push_atomically(model_path: str, base: str, extras: dict[str, bytes]) -> tuple[int, str]:
    """Copies a SavedModel and `extras` ({relative path: content}) to base/<next version>;
    returns (version, path)."""
    staging = open_staging(base)
    try:
        _stage(model_path, staging, extras)
    except BaseException:
        storage.remove_tree(staging)  # a failed copy (a full disk, say) leaves nothing
        raise
    if storage.is_bucket(base):
        # Buckets have no rename. One pusher at a time (Kubeflow's schedules run one run at a
        # time); what a killed push left under the number was never complete, so it goes.
        version = serving_layout.next_version(base)
        target = os.path.join(base, str(version))
        storage.remove_tree(target)
        storage.move_tree(staging, target, marker=serving_layout.SAVED_MODEL_FILE)
        return version, target
    while True:
        version = serving_layout.next_version(base)
        target = os.path.join(base, str(version))
        try:
            tf.io.gfile.rename(staging, target, overwrite=False)
            return version, target
        except tf.errors.OpError:
            if not tf.io.gfile.exists(target):
                raise  # not a race with another pusher


class Executor(pusher_executor.Executor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        blessing = input_dict.get(standard_component_specs.MODEL_BLESSING_KEY)
        unchanged = blessing[0].get_int_custom_property(UNCHANGED_VERSION) if blessing else 0
        if unchanged:
            logging.info("The candidate is served version %d; nothing to push.", unchanged)
            self._MarkNotPushed(model_push)
            model_push.set_int_custom_property(UNCHANGED_VERSION, unchanged)
            return
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        base = destination.filesystem.base_directory
        served = serving_layout.latest_version_dir(*os.path.split(base.rstrip("/")))
        candidate = serving_layout.fingerprint(model_path)
        if served and candidate is not None and candidate == serving_layout.fingerprint(served[1]):
            logging.info("Candidate equals served version %d; not pushed again.", served[0])
            self._MarkNotPushed(model_push)
            model_push.set_int_custom_property(DUPLICATE_OF_VERSION, served[0])
            return
        version, target = push_atomically(model_path, base, self._extras(input_dict))
        self._MarkPushed(model_push, pushed_destination=target, pushed_version=str(version))
        logging.info("Model pushed to %s (version %d).", target, version)

    def _extras(self, input_dict: dict[str, list[types.Artifact]]) -> dict[str, bytes]:
        """The push record (with the eval accuracy and config), and the training data's
        statistics, when the pipeline gave them."""
        record = {
            "pushed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "run_id": self._context.pipeline_run_id if self._context else None,
        }
        if input_dict.get(EVALUATION_KEY):
            evaluation = artifact_utils.get_single_instance(input_dict[EVALUATION_KEY])
            record["eval_accuracy"] = candidate_accuracy(evaluation.uri)
        for blessing in input_dict.get(standard_component_specs.MODEL_BLESSING_KEY, []):
            record[EVAL_CONFIG_DIGEST] = blessing.get_string_custom_property(EVAL_CONFIG_DIGEST)
        extras = {PUSH_RECORD_FILE: json.dumps(record).encode()}
        if input_dict.get(STATISTICS_KEY):
            statistics = os.path.join(
                artifact_utils.get_split_uri(input_dict[STATISTICS_KEY], TRAIN), "FeatureStats.pb"
            )
            with tf.io.gfile.GFile(statistics, "rb") as handle:
                extras[TRAINING_STATISTICS_FILE] = handle.read()
        return extras

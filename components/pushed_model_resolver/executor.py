"""Emits the model now in the serving directory, and its training statistics.

Open-source Kubeflow Pipelines runs no TFX resolver queries, so the served model comes from
the serving directory itself, which both orchestrators can read. With nothing served, the
model artifact stays empty and says so (`baseline_version` 0): the Trainer then starts
from scratch and the Evaluator judges the candidate on its own, as on a first run.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from contract.artifact_properties import AVAILABLE, BASELINE_SOURCE, BASELINE_VERSION
from contract.data import TRAIN
from contract.model_files import SERVED_RECORD_FILE, TRAINING_STATISTICS_FILE
from modules import storage
from serving import layout as serving_layout

MODEL_KEY = "model"
STATISTICS_KEY = "statistics"
SERVING_DIR_KEY = "serving_dir"
MODEL_NAME_KEY = "model_name"


def is_served(model: types.Artifact) -> bool:
    """Whether a resolved model artifact holds a served version."""
    return model.get_int_custom_property(BASELINE_VERSION) > 0


class Executor(base_executor.BaseExecutor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        statistics = artifact_utils.get_single_instance(output_dict[STATISTICS_KEY])
        statistics.split_names = artifact_utils.encode_split_names([TRAIN])
        statistics.set_int_custom_property(AVAILABLE, 0)
        served = serving_layout.latest_version_dir(
            exec_properties[SERVING_DIR_KEY], exec_properties[MODEL_NAME_KEY]
        )
        if served is None:
            logging.info("No model is served yet.")
            model.set_int_custom_property(BASELINE_VERSION, 0)
            return
        version, source = served
        # A snapshot, so the lineage keeps what was compared even if the version is removed.
        snapshot = path_utils.serving_model_dir(model.uri)
        if storage.is_bucket(source):
            storage.download_tree(source, snapshot)
        else:
            io_utils.copy_dir(source, snapshot)
        model.set_int_custom_property(BASELINE_VERSION, version)
        model.set_string_custom_property(BASELINE_SOURCE, source)
        # For the Trainer, which sees the snapshot's path but not these properties.
        with tf.io.gfile.GFile(os.path.join(model.uri, SERVED_RECORD_FILE), "w") as handle:
            json.dump({"version": version, "source": source}, handle)
        logging.info("Served: version %d from %s", version, source)
        kept = os.path.join(snapshot, TRAINING_STATISTICS_FILE)
        if tf.io.gfile.exists(kept):
            target = os.path.join(
                artifact_utils.get_split_uri([statistics], TRAIN), "FeatureStats.pb"
            )
            tf.io.gfile.makedirs(os.path.dirname(target))
            tf.io.gfile.copy(kept, target, overwrite=True)
            statistics.set_int_custom_property(AVAILABLE, 1)


def serving_state(serving_dir: str, model_name: str) -> str:
    """Changes whenever a version is pushed or removed; the driver puts it in the cache key."""
    base = serving_layout.model_base(serving_dir, model_name)
    return ",".join(str(v) for v in serving_layout.complete_versions(base)) or "empty"

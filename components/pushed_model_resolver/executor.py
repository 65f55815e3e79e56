"""Emits the model now in the serving directory as the Evaluator's baseline Model artifact.

Open-source Kubeflow Pipelines runs no TFX resolver queries, so the baseline comes from the
serving directory itself, which both orchestrators can read. With nothing served yet, the
candidate stands in as its own baseline: the change threshold then compares a model with
itself and passes, so only the absolute threshold decides, as on a first run it should.
"""

from __future__ import annotations

import logging
from typing import Any

from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components import serving_layout

CANDIDATE_KEY = "candidate"
MODEL_KEY = "model"
SERVING_DIR_KEY = "serving_dir"
MODEL_NAME_KEY = "model_name"
BASELINE_VERSION_PROPERTY = "baseline_version"  # 0: nothing was served
BASELINE_SOURCE_PROPERTY = "baseline_source"


class Executor(base_executor.BaseExecutor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        candidate = artifact_utils.get_single_instance(input_dict[CANDIDATE_KEY])
        baseline = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
        served = serving_layout.latest_version_dir(
            exec_properties[SERVING_DIR_KEY], exec_properties[MODEL_NAME_KEY]
        )
        if served is None:
            logging.info("No model is served yet; the candidate is its own baseline.")
            baseline.uri = candidate.uri
            baseline.set_int_custom_property(BASELINE_VERSION_PROPERTY, 0)
            baseline.set_string_custom_property(BASELINE_SOURCE_PROPERTY, candidate.uri)
            return
        version, source = served
        # A snapshot, so the lineage keeps what was compared even if the version is removed.
        io_utils.copy_dir(source, path_utils.serving_model_dir(baseline.uri))
        baseline.set_int_custom_property(BASELINE_VERSION_PROPERTY, version)
        baseline.set_string_custom_property(BASELINE_SOURCE_PROPERTY, source)
        logging.info("Baseline: served version %d from %s", version, source)


def serving_state(serving_dir: str, model_name: str) -> str:
    """Changes whenever a version is pushed or removed; the driver puts it in the cache key."""
    base = serving_layout.model_base(serving_dir, model_name)
    return ",".join(str(v) for v in serving_layout.complete_versions(base)) or "empty"

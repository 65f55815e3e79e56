"""ServedBaselineEvaluator: TFX's Evaluator, judging the candidate alone when nothing is served.

PushedModelResolver always emits a baseline artifact (a container step has fixed outputs),
empty when nothing is served. This executor drops an empty one, so TFX's own first-run rule
applies: without a baseline, change thresholds are ignored and value thresholds decide.

A candidate that is the served version itself (the Trainer reused it, as nothing changed),
judged under the same eval config, is not evaluated again: its blessing says so
(`UNCHANGED_VERSION`), is not blessed, and so nothing downstream checks or pushes it. Under
another eval config (new thresholds, say) it is evaluated as any candidate is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any

from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types.standard_component_specs import (
    BASELINE_MODEL_KEY,
    BLESSING_KEY,
    EVAL_CONFIG_KEY,
    MODEL_KEY,
)
from tfx.utils import io_utils, path_utils

from components.pushed_model_resolver.executor import is_served
from contract.artifact_properties import BASELINE_VERSION, EVAL_CONFIG_DIGEST, UNCHANGED_VERSION
from contract.model_files import PUSH_RECORD_FILE
from modules import storage
from serving.layout import fingerprint


def eval_config_digest(exec_properties: dict[str, Any]) -> str:
    return hashlib.sha256(exec_properties[EVAL_CONFIG_KEY].encode()).hexdigest()


def _judged_under(served_model: str) -> str | None:
    """The eval config digest in the served version's push record, if it has one."""
    record = os.path.join(served_model, PUSH_RECORD_FILE)
    if not storage.exists(record):
        return None
    return json.loads(storage.read_bytes(record)).get(EVAL_CONFIG_DIGEST)


def served_version_of(
    candidate: types.Artifact, baseline: types.Artifact, digest: str
) -> int | None:
    """The served version the candidate is, by SavedModel fingerprint, if that version was
    judged under this eval config; None otherwise."""
    if not is_served(baseline):
        return None
    served_model = path_utils.serving_model_path(baseline.uri)
    ours = fingerprint(path_utils.serving_model_path(candidate.uri))
    if ours is None or ours != fingerprint(served_model) or _judged_under(served_model) != digest:
        return None
    return baseline.get_int_custom_property(BASELINE_VERSION)


class Executor(evaluator_executor.Executor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        digest = eval_config_digest(exec_properties)
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        blessing.set_string_custom_property(EVAL_CONFIG_DIGEST, digest)
        baseline = input_dict.get(BASELINE_MODEL_KEY)
        if baseline:
            candidate = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
            version = served_version_of(candidate, baseline[0], digest)
            if version is not None:
                self._unchanged(blessing, version)
                return
        if baseline and not is_served(baseline[0]):
            input_dict = {
                key: value for key, value in input_dict.items() if key != BASELINE_MODEL_KEY
            }
        super().Do(input_dict, output_dict, exec_properties)

    def _unchanged(self, blessing: types.Artifact, version: int) -> None:
        io_utils.write_string_file(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME), "")
        blessing.set_int_custom_property(
            constants.ARTIFACT_PROPERTY_BLESSED_KEY, constants.NOT_BLESSED_VALUE
        )
        blessing.set_int_custom_property(UNCHANGED_VERSION, version)
        logging.info("Evaluator: the candidate is served version %d; not evaluated again", version)


class ServedBaselineEvaluator(evaluator_component.Evaluator):
    """TFX's Evaluator, with the served model (if any) as its baseline."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

"""ServedBaselineEvaluator: TFX's Evaluator, judging the candidate alone when nothing is served.

PushedModelResolver always emits a baseline artifact (a container step has fixed outputs),
empty when nothing is served. This executor drops an empty one, so TFX's own first-run rule
applies: without a baseline, change thresholds are ignored and value thresholds decide.

A candidate that is the served version itself (the Trainer reused it, as nothing changed)
is not evaluated again: its blessing says so (`UNCHANGED_VERSION`), is not blessed, and so
nothing downstream checks or pushes it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tfx import types
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils
from tfx.types.standard_component_specs import BASELINE_MODEL_KEY, BLESSING_KEY, MODEL_KEY
from tfx.utils import io_utils, path_utils

from components.pushed_model_resolver.executor import BASELINE_VERSION_PROPERTY, is_served
from contract.artifact_properties import UNCHANGED_VERSION
from serving.layout import fingerprint


def served_version_of(candidate: types.Artifact, baseline: types.Artifact) -> int | None:
    """The served version the candidate is, by SavedModel fingerprint; None if it is new."""
    if not is_served(baseline):
        return None
    ours = fingerprint(path_utils.serving_model_path(candidate.uri))
    served = fingerprint(path_utils.serving_model_path(baseline.uri))
    if ours is None or ours != served:
        return None
    return baseline.get_int_custom_property(BASELINE_VERSION_PROPERTY)


class Executor(evaluator_executor.Executor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        baseline = input_dict.get(BASELINE_MODEL_KEY)
        if baseline:
            candidate = artifact_utils.get_single_instance(input_dict[MODEL_KEY])
            version = served_version_of(candidate, baseline[0])
            if version is not None:
                self._unchanged(output_dict, version)
                return
        if baseline and not is_served(baseline[0]):
            input_dict = {
                key: value for key, value in input_dict.items() if key != BASELINE_MODEL_KEY
            }
        super().Do(input_dict, output_dict, exec_properties)

    def _unchanged(self, output_dict: dict[str, list[types.Artifact]], version: int) -> None:
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        io_utils.write_string_file(os.path.join(blessing.uri, constants.NOT_BLESSED_FILE_NAME), "")
        blessing.set_int_custom_property(
            constants.ARTIFACT_PROPERTY_BLESSED_KEY, constants.NOT_BLESSED_VALUE
        )
        blessing.set_int_custom_property(UNCHANGED_VERSION, version)
        logging.info("Evaluator: the candidate is served version %d; not evaluated again", version)


class ServedBaselineEvaluator(evaluator_component.Evaluator):
    """TFX's Evaluator, with the served model (if any) as its baseline."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

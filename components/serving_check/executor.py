"""ServingCheck's executor: the candidate with warm-up records, run in the model server.

The blessing follows TFX's InfraValidator: the `blessed` property and an INFRA_BLESSED or
INFRA_NOT_BLESSED file; a blessed candidate is copied, with its warm-up records, to the
blessing's `stamped_model/` and `has_model` is set, which is where TFX's Pusher takes the
model from. `serving_check.json` holds the figures and the reason; `serving_check.log` holds
the server's output.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import logging
import os
import tempfile
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components.serving_check.probe import ProbeResult, ProbeSettings, probe
from contract.artifact_properties import BLESSED, HAS_MODEL, UNCHANGED_VERSION
from contract.data import EVAL, is_remote
from contract.prediction import IMAGES_INPUT, IMAGES_SIGNATURE, PROBABILITIES
from modules.example_records import split_examples
from serving.warmup import write_warmup_records

RESULT_FILE = "serving_check.json"
LOG_FILE = "serving_check.log"


def eval_images(examples: types.Artifact, image_feature: str, count: int) -> list[bytes]:
    """The first `count` encoded images of the eval split (the newest span's)."""
    features = itertools.islice(split_examples(examples.uri, EVAL), count)
    return [image for feature in features for image in feature[image_feature].bytes_list.value[:1]]


def signature_reference(model_dir: str) -> Callable[[bytes], list[float]]:
    """The candidate's own answer for one image, computed in this process; loaded at the
    first call, so that a candidate without the signature fails as a check."""

    @functools.cache
    def signature():
        return tf.saved_model.load(model_dir).signatures[IMAGES_SIGNATURE]

    def probabilities(image: bytes) -> list[float]:
        outputs = signature()(**{IMAGES_INPUT: tf.constant([image])})
        return outputs[PROBABILITIES.name].numpy()[0].tolist()

    return probabilities


def run_check(
    model_dir: str, images: list[bytes], settings: ProbeSettings, log_path: str
) -> ProbeResult:
    """The candidate, as version 1 of a serving directory of its own, through `probe`."""
    if not images:
        return ProbeResult(blessed=False, reason="the eval split has no images to send")
    with tempfile.TemporaryDirectory(prefix="serving-check-") as serving_dir:
        version_dir = os.path.join(serving_dir, settings.model_name, "1")
        if is_remote(model_dir):
            io_utils.copy_dir(model_dir, version_dir)
        else:
            os.makedirs(os.path.dirname(version_dir))
            os.symlink(os.path.abspath(model_dir), version_dir)
        return probe(serving_dir, images, signature_reference(model_dir), settings, log_path)


class Executor(base_executor.BaseExecutor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        model = artifact_utils.get_single_instance(input_dict["model"])
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        settings = ProbeSettings(
            model_name=exec_properties["model_name"],
            latency_budget_ms=exec_properties["latency_budget_ms"],
            ready_deadline_seconds=exec_properties["ready_deadline_seconds"],
        )
        stamped = path_utils.stamped_model_path(blessing.uri)
        evaluated = input_dict.get("model_blessing")
        unchanged = evaluated[0].get_int_custom_property(UNCHANGED_VERSION) if evaluated else 0
        if unchanged:
            reason = f"the candidate is served version {unchanged}, checked when it was pushed"
            result = ProbeResult(blessed=False, reason=reason, checked=False)
            blessing.set_int_custom_property(UNCHANGED_VERSION, unchanged)
        elif evaluated and not model_utils.is_model_blessed(evaluated[0]):
            result = ProbeResult(
                blessed=False, reason="the Evaluator did not bless the candidate", checked=False
            )
        else:
            images = eval_images(
                examples, exec_properties["image_feature"], exec_properties["num_images"]
            )
            # The candidate as it would be pushed: its SavedModel plus TF Serving's warm-up
            # records, which the server replays on load, so the check covers them too.
            io_utils.copy_dir(path_utils.serving_model_path(model.uri), stamped)
            write_warmup_records(stamped, settings.model_name, images)
            with tempfile.NamedTemporaryFile(suffix=".log") as log:
                result = run_check(stamped, images, settings, log.name)
                io_utils.copy_file(log.name, os.path.join(blessing.uri, LOG_FILE), overwrite=True)
        logging.info("ServingCheck: %s", result.reason)
        io_utils.write_string_file(
            os.path.join(blessing.uri, RESULT_FILE), json.dumps(dataclasses.asdict(result))
        )
        io_utils.write_string_file(
            os.path.join(blessing.uri, "INFRA_BLESSED" if result.blessed else "INFRA_NOT_BLESSED"),
            "",
        )
        blessing.set_int_custom_property(BLESSED, int(result.blessed))
        blessing.set_int_custom_property(HAS_MODEL, int(result.blessed))
        if not result.blessed and tf.io.gfile.exists(stamped):  # a SavedModel is hundreds of MB
            tf.io.gfile.rmtree(stamped)

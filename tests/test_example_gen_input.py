"""Our ExampleGens' input without TFX's driver, as open-source Kubeflow Pipelines runs them,
and from a bucket: the executor resolves the span and the fingerprint itself, through
modules.storage, and records what the driver would."""

import json
import uuid

import pytest
import tensorflow as tf
from conftest import encode, write_files
from tfx.components.example_gen import utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts

from components.example_gen_input import Driver, folder_fingerprint
from components.image_folder_example_gen import ImageFolderExampleGen
from components.image_folder_example_gen.executor import Executor
from contract.artifact_properties import OLDER_EVAL_IN_TRAIN
from pipelines.stages import _hash_split

SPANS = {
    f"span-{span}/{cls}/{index}.png": encode("PNG", colour=(span * 40, index * 20, 90))
    for span in (1, 2)
    for cls in ("circle", "square")
    for index in range(4)
}


def _upload(s3, folder, files):
    bucket = s3.make_bucket(f"data-{uuid.uuid4().hex[:8]}")
    filesystem = s3.filesystem()
    for relative, data in files.items():
        filesystem.pipe(f"{bucket}/{folder}/{relative}", data)
    return f"s3://{bucket}/{folder}"


def _exec_properties(root):
    component = ImageFolderExampleGen(root, _hash_split(0.25), window_spans=0)
    properties = dict(component.exec_properties)
    properties["input_base"] = root
    for key in ("input_config", "output_config", "custom_config"):
        value = properties[key]
        if not isinstance(value, str):
            from tfx.utils import proto_utils

            properties[key] = proto_utils.proto_to_json(value)
    return properties


def _run_executor(root, output):
    examples = standard_artifacts.Examples()
    examples.uri = str(output)
    Executor().Do({}, {"examples": [examples]}, _exec_properties(root))
    return examples


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path, s3_env):
    if request.param == "local":
        return str(write_files(tmp_path / "data", SPANS))
    return _upload(s3_env, "images", SPANS)


def test_without_a_driver_the_executor_records_the_span_and_fingerprint(root, tmp_path):
    examples = _run_executor(root, tmp_path / "out")
    assert examples.get_int_custom_property(utils.SPAN_PROPERTY_NAME) == 2
    fingerprint = examples.get_string_custom_property(utils.FINGERPRINT_PROPERTY_NAME)
    assert fingerprint == folder_fingerprint(root) and fingerprint.startswith("files:16,")
    assert json.loads(examples.get_string_custom_property("spans")) == [1, 2]
    counts = json.loads(examples.get_string_custom_property("split_counts"))
    # Span 1 all 8 to train, those its hash split set aside for eval (1 of 4 a class) too,
    # as eval is span 2's; span 2 all 8.
    assert sum(counts.values()) == 8 + 8
    assert examples.get_int_custom_property(OLDER_EVAL_IN_TRAIN) == 2
    written = tf.io.gfile.glob(str(tmp_path / "out" / "Split-*" / "*"))
    assert written, "no examples written"


def test_the_driver_resolves_what_the_executor_would(root):
    resolved = Driver(None).resolve_exec_properties(_exec_properties(root), None, None)
    assert resolved[utils.SPAN_PROPERTY_NAME] == 2
    assert resolved[utils.FINGERPRINT_PROPERTY_NAME] == folder_fingerprint(root)
    input_config = example_gen_pb2.Input()
    from tfx.utils import proto_utils

    proto_utils.json_to_proto(resolved["input_config"], input_config)
    assert input_config.splits[0].pattern == "span-2/*/*"


def test_the_fingerprint_follows_every_file(tmp_path):
    root = write_files(tmp_path / "data", SPANS)
    before = folder_fingerprint(str(root))
    (root / "span-1" / "circle" / "0.png").write_bytes(encode("PNG", colour=(1, 2, 3)) + b"x")
    changed = folder_fingerprint(str(root))
    (root / "span-1" / "circle" / "0.png").unlink()
    removed = folder_fingerprint(str(root))
    assert len({before, changed, removed}) == 3

"""The serving check: the candidate in the real model server before the push, the warm-up
records every pushed version carries, and a candidate TFMA blesses but the server cannot
serve, which is never pushed."""

import hashlib
import os
import shutil

import pytest

EVAL_IMAGES = 16  # ServingCheck's default num_images


def _tree_digest(root) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_candidate_is_checked_in_the_server_before_the_push(first_run):
    summary, result = first_run
    check = summary["serving_check"]
    assert check["blessed"], check["reason"]
    # Each eval image over V1 and over V2, then four malformed requests.
    assert check["requests"] == 2 * EVAL_IMAGES + 4
    assert 0 < check["ready_seconds"] <= 120
    assert 0 < check["p50_ms"] <= check["p99_ms"]
    assert "equal the signature's answers" in check["reason"]
    assert summary["pushed"]
    assert "Serving check: passed" in result.stdout


def test_pushed_version_carries_warmup_records_that_replay(first_run):
    """TF Serving's format, parsed with tensorflow-serving-api and replayed through the
    pushed SavedModel; the requests hold eval images as raw bytes, the responses what the
    model answers them, every contract field included."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    from contract.prediction import OUTPUTS
    from modules.example_records import record_dataset, split_examples

    summary, _ = first_run
    version_dir = summary["pushed_model_dir"]
    path = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    records = record_dataset([path]).as_numpy_iterator()
    logs = [prediction_log_pb2.PredictionLog.FromString(record) for record in records]
    assert len(logs) == EVAL_IMAGES
    eval_images = {
        feature["image"].bytes_list.value[0]
        for feature in split_examples(summary["lineage"]["examples"], "eval")
    }
    signature = tf.saved_model.load(version_dir).signatures["serving_default"]
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "alexnet"
        assert request.model_spec.signature_name == "serving_default"
        images = tf.make_ndarray(request.inputs["images"])
        assert images.shape == (1,) and images[0] in eval_images
        answer = signature(images=tf.constant(images))
        probabilities = answer["probabilities"].numpy()
        assert probabilities.shape == (1, 2)
        assert abs(probabilities.sum() - 1) < 1e-5
        recorded = log.predict_log.response.outputs
        assert set(recorded) == {field.name for field in OUTPUTS}
        for name in ("probabilities", "ood_score", "unknown", "class_id"):
            assert (tf.make_ndarray(recorded[name]) == answer[name].numpy()).all(), name


@pytest.fixture(scope="module")
def broken_candidate(first_run, tmp_path_factory):
    """The first run's model re-saved with a `serving_default` that takes `x` instead of
    `images`: TFMA, which reads `serving_examples`, still blesses it; the server cannot warm
    it up."""
    import tensorflow as tf

    summary, _ = first_run
    source = os.path.join(summary["lineage"]["model"], "Format-Serving")
    root = tmp_path_factory.mktemp("broken")
    target = root / "Format-Serving"
    loaded = tf.saved_model.load(source)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def not_images(x):
        return {"probabilities": tf.zeros([tf.shape(x)[0], 2])}

    signatures = {
        "serving_default": not_images,
        "serving_examples": loaded.signatures["serving_examples"],
    }
    tf.saved_model.save(loaded, str(target), signatures=signatures)
    shutil.copytree(os.path.join(source, "assets.extra"), target / "assets.extra")
    return root


def test_candidate_tfma_blesses_but_the_server_cannot_serve_is_never_pushed(
    first_run, broken_candidate, tmp_path
):
    from ml_metadata.metadata_store import metadata_store
    from tfx import v1 as tfx
    from tfx.orchestration import metadata

    from components.atomic_pusher import AtomicPusher
    from components.serving_check import ServingCheck
    from pipelines.eval_config import eval_config

    summary, _ = first_run
    serving = tmp_path / "serving"
    shutil.copytree(os.path.dirname(summary["pushed_model_dir"]), serving / "alexnet")
    before = _tree_digest(serving)

    model = tfx.dsl.Importer(
        source_uri=str(broken_candidate), artifact_type=tfx.types.standard_artifacts.Model
    ).with_id("broken_model")
    examples = tfx.dsl.Importer(
        source_uri=summary["lineage"]["examples"],
        artifact_type=tfx.types.standard_artifacts.Examples,
        properties={"split_names": '["train", "eval"]'},
    ).with_id("examples")
    evaluator = tfx.components.Evaluator(
        examples=examples.outputs["result"],
        model=model.outputs["result"],
        eval_config=eval_config(
            label_key="label",
            signature_name="serving_examples",
            prediction_key="probabilities",
            num_classes=2,
            min_accuracy=0.0,
            regression_epsilon=0.01,
            chance_margin=-1.0,
        ),
    )
    check = ServingCheck(
        model=model.outputs["result"],
        examples=examples.outputs["result"],
        model_name="alexnet",
        image_feature="image",
        ready_deadline_seconds=90,
    )
    pusher = AtomicPusher(
        infra_blessing=check.outputs["blessing"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(serving / "alexnet"))
        ),
    )
    root = tmp_path / "root"
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name="broken",
            pipeline_root=str(root),
            components=[model, examples, evaluator, check, pusher],
            metadata_connection_config=metadata.sqlite_metadata_connection_config(
                str(tmp_path / "metadata.sqlite")
            ),
        )
    )

    store = metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(str(tmp_path / "metadata.sqlite"))
    )
    by_type = {}
    for artifact in store.get_artifacts():
        kind = store.get_artifact_types_by_id([artifact.type_id])[0].name
        by_type[kind] = artifact
    assert by_type["ModelBlessing"].custom_properties["blessed"].int_value == 1  # TFMA: yes
    infra = by_type["InfraBlessing"]
    assert infra.custom_properties["blessed"].int_value == 0
    result = (root / "ServingCheck" / "blessing").rglob("serving_check.json")
    reason = next(result).read_text()
    assert "server exited" in reason or "signature failed" in reason
    assert not list((root / "ServingCheck" / "blessing").rglob("stamped_model"))
    assert by_type["PushedModel"].custom_properties["pushed"].int_value == 0
    assert _tree_digest(serving) == before

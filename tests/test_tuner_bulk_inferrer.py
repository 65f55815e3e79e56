"""TFX's Tuner and BulkInferrer in the pipeline: one real tiny run with both, up to the
BulkInferrer, then the same command again."""

import json
from pathlib import Path

import pytest
import tensorflow as tf
from conftest import run_cli, wiring_for
from tensorflow_serving.apis import prediction_log_pb2

from contract.model_files import TRAINING_RECORD_FILE
from pipelines.config import build_config
from pipelines.demo_data import write_demo_dataset

TUNED = ("--tune", "--tune-trials", "2", "--tune-steps-per-trial", "4")


@pytest.fixture(scope="module")
def bulk_images(tmp_path_factory):
    """20 new images, unlabelled: in one folder and a sub-folder; and a corrupt file."""
    bulk = tmp_path_factory.mktemp("new_images")
    for path in write_demo_dataset(bulk / "drawn", per_class=10, seed=11):
        path.rename(bulk / path.name if "bike" in path.name else path)
    (bulk / "drawn" / "bike").rmdir()
    (bulk / "broken.jpg").write_bytes(b"not an image")
    return bulk


@pytest.fixture(scope="module")
def node_id(demo_dir, bulk_images):
    """The node that makes an artifact role, in the pipeline with both stages on."""
    config = build_config("tiny", data=str(demo_dir), tune=True, bulk_infer_data=str(bulk_images))
    sources = wiring_for(config).sources()
    return lambda role: sources[role].node_id


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, demo_dir, bulk_images, node_id):
    """A 2-trial tune and bulk inference on the new images, run twice."""
    root = tmp_path_factory.mktemp("tuned")
    bulk = bulk_images
    summaries = []
    for attempt in range(2):
        path = root / f"summary-{attempt}.json"
        result = run_cli(
            "run", "--data", demo_dir, "--preset", "tiny", "--output-root", root / "out",
            "--epochs", "1", "--steps-per-epoch", "5", *TUNED, "--bulk-infer-data", bulk,
            "--to", node_id("inference_result"), "--summary-json", path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-4000:]
        summaries.append((json.loads(path.read_text()), result.stdout))
    return summaries


def test_the_trainer_uses_the_best_trials_values(tuned):
    summary, stdout = tuned[0]
    tuning = summary["tuning"]
    assert len(tuning["trials"]) == 2
    scores = [trial["score"] for trial in tuning["trials"]]
    assert scores == sorted(scores, reverse=True)  # best first
    best = tuning["trials"][0]["values"]
    assert tuning["best"] == best
    assert set(best) == {"learning_rate", "dropout", "batch_size", "optimizer"}
    training = summary["training"]
    assert training["tuned"] is True
    assert {name: training["hyperparameters"][name] for name in best} == best
    # The model records them too, beside the SavedModel.
    record = Path(summary["lineage"]["model"]) / "Format-Serving" / TRAINING_RECORD_FILE
    recorded = json.loads(record.read_text())
    assert recorded["tuned"] is True
    assert {name: recorded["hyperparameters"][name] for name in best} == best
    assert "Tuning: 2 trials; the best (val_accuracy" in stdout


def test_the_trials_differ_and_each_trained(tuned):
    summary, _ = tuned[0]
    trials = summary["tuning"]["trials"]
    assert trials[0]["values"] != trials[1]["values"]
    assert all(0.0 <= trial["score"] <= 1.0 for trial in trials)


def test_rerun_with_the_same_search_space_is_cached(tuned, node_id):
    first, _ = tuned[0]
    again, _ = tuned[1]
    for role in ("hyperparameters", "model", "inference_result"):
        assert again["components"][node_id(role)]["status"] == "cached", role
    assert again["tuning"] == first["tuning"]


def test_bulk_inferrer_scores_every_new_image_with_the_blessed_model(tuned):
    """Unlabelled images anywhere under bulk_infer_data; the corrupt one is rejected."""
    summary, stdout = tuned[0]
    assert summary["blessed"] is True
    bulk = summary["bulk_inference"]
    assert bulk["predictions"] == 20 and sum(bulk["by_class"].values()) == 20
    assert set(bulk["by_class"]) == set(summary["classes"])
    logs = [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(bulk["prediction_logs"], compression_type="GZIP")
    ]
    assert len(logs) == 20
    examples = [
        tf.train.Example.FromString(log.predict_log.request.inputs["examples"].string_val[0])
        for log in logs
    ]
    paths = sorted(example.features.feature["path"].bytes_list.value[0] for example in examples)
    assert paths[0] == b"bike_0000.jpg" and paths[-1] == b"drawn/ship/ship_0009.jpg"
    assert not any("label" in example.features.feature for example in examples)
    outputs = logs[0].predict_log.response.outputs
    assert set(outputs) == {"class_id", "score", "probabilities", "ood_score", "unknown"}
    probabilities = tf.make_ndarray(outputs["probabilities"])
    assert probabilities.shape == (1, 2) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert "Bulk inference: 20 images scored" in stdout


def test_report_links_the_bulk_inference_output(tuned):
    summary, _ = tuned[0]
    report = Path(summary["report_path"]).read_text()
    assert "<h2>Bulk inference</h2>" in report and "<h2>Tuning</h2>" in report
    for path in summary["bulk_inference"]["prediction_logs"]:
        assert f'href="file://{path}"' in report

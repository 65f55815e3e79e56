"""Calibrated scores and "I don't know" as the model server answers them: the fields over
both protocols, `--answer-unknown`, and a rollback to a version pushed before either existed.
"""

import json
import time

import pytest
from model_server import MODEL, Server, b64, resave


@pytest.fixture(scope="module")
def images(demo_dir):
    return [path.read_bytes() for path in sorted(demo_dir.glob("*/*.jpg"))[::11]]


def without_trust(outputs):
    """A version as exported before calibration: no ood_score, no unknown."""
    return {
        name: tensor for name, tensor in outputs.items() if name not in ("ood_score", "unknown")
    }


def flagging_everything(outputs):
    """A version whose threshold every image passes, so each answer is flagged."""
    import tensorflow as tf

    return {**outputs, "unknown": tf.ones_like(outputs["unknown"])}


@pytest.fixture(scope="module")
def versions(first_run, workspace, tmp_path_factory):
    """Version 1 from before calibration (its training record has no calibration either),
    version 2 flagging every image; served with --answer-unknown."""
    root = tmp_path_factory.mktemp("trust-serving")
    base = root / MODEL
    base.mkdir()
    pushed = workspace.serving / "1"
    older = resave(pushed, base / "1", without_trust)
    record = older / "assets.extra" / "training.json"
    record.write_text(
        json.dumps({k: v for k, v in json.loads(record.read_text()).items() if k != "calibration"})
    )
    resave(pushed, base / "2", flagging_everything)
    server = Server(root, root / "server.log", "--answer-unknown")
    yield root, server
    server.stop()


def test_both_protocols_carry_the_score_and_flag_the_model_answers(first_run, workspace, images):
    """The served version as pushed: ood_score and unknown per image, equal to the
    signature's own, and the probabilities calibrated (they sum to 1)."""
    from serving.served_model import ServedModel

    summary, _ = first_run
    model = ServedModel.latest(str(workspace.serving.parent), MODEL)
    answers = model.predict(images)
    threshold = summary["training"]["calibration"]["ood_threshold"]
    for answer in answers:
        assert answer.ood_score >= 0 and answer.unknown == (answer.ood_score > threshold)
        assert sum(answer.probabilities) == pytest.approx(1, abs=1e-5)


def test_answer_unknown_replaces_the_class_of_a_flagged_image(versions, images):
    _, server = versions
    body = server.v1(images[:2]).json()
    assert body["model_version"] == "2"
    for row in body["predictions"]:
        assert (row["class_name"], row["class_id"], row["unknown"]) == ("unknown", -1, True)
        assert row["score"] == pytest.approx(max(row["probabilities"]), abs=1e-6)


def test_rollback_to_a_version_from_before_calibration_serves_it(versions, images):
    """Its answers carry ood_score and unknown as null in V1 and not at all in V2, and
    --answer-unknown, with no flag to go by, answers its class."""
    from conftest import run_cli

    root, server = versions
    rolled = run_cli("rollback", "--serving-dir", root)
    assert rolled.returncode == 0, rolled.stderr
    assert "Rolled back alexnet to version 1; retired version 2" in rolled.stdout
    deadline = time.time() + 60
    while server.v1(images[:1]).json()["model_version"] != "1":
        assert time.time() < deadline, server.log_text()[-3000:]
        time.sleep(0.5)
    for row in server.v1(images).json()["predictions"]:
        assert row["class_name"] in ("bike", "ship") and row["class_id"] in (0, 1)
        assert row["ood_score"] is None and row["unknown"] is None
    tensor = {"name": "images", "shape": [1], "datatype": "BYTES", "data": [b64(images[0])]}
    v2 = server.client.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor]}).json()
    assert {output["name"] for output in v2["outputs"]} == {
        "class_name",
        "class_id",
        "score",
        "probabilities",
        "class_names",
    }
    listed = run_cli("versions", "--serving-dir", root)
    assert listed.returncode == 0 and "(served)" in listed.stdout

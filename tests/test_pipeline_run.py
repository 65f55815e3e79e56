"""The whole tiny pipeline, run for real through the CLI, and re-run to check caching and
gating. The runs share one output root and build on each other, in file order."""

import json
import re

import pytest
from conftest import partial_run_nodes


def test_first_run_completes_every_component(first_run, tiny_wiring):
    summary, _ = first_run
    assert list(summary["components"]) == tiny_wiring.node_ids()
    assert len(summary["components"]) == 11
    assert {c["status"] for c in summary["components"].values()} == {"complete"}


def test_first_run_summary_facts(first_run):
    summary, _ = first_run
    assert summary["classes"] == ["bike", "ship"]
    assert sum(summary["examples"].values()) == 120
    assert summary["rejected_files"] == 0
    assert summary["anomalies"] == []
    training = summary["training"]
    assert training["epochs"] == 4 and training["device"] == "CPU"
    # mixed_bfloat16 where the CPU has bfloat16 arithmetic, float32 elsewhere.
    from modules.device_plan import cpu_has_bfloat16

    assert training["precision_policy"] == ("mixed_bfloat16" if cpu_has_bfloat16() else "float32")
    assert training["images_per_second"] > 0
    metrics = summary["metrics"]
    assert metrics["example_count"] == summary["examples"]["eval"]
    assert set(metrics["per_class"]) == {"bike", "ship"}
    assert sum(map(sum, summary["confusion_matrix"])) == metrics["example_count"]
    assert summary["baseline_accuracy"] is None  # nothing was served yet


def test_first_run_blesses_and_pushes_version_1(first_run, workspace):
    summary, result = first_run
    assert summary["blessed"] is True and summary["pushed"] is True
    assert summary["pushed_version"] == 1
    assert summary["pushed_model_dir"] == str(workspace.serving / "1")
    assert (workspace.serving / "1" / "saved_model.pb").exists()
    assert not [p for p in workspace.serving.iterdir() if p.name.startswith(".")]
    assert f"Serve it: alexnet-tfx serve --serving-dir {workspace.serving.parent}" in result.stdout


def test_training_leaves_history_and_tensorboard_logs(first_run, node_id):
    summary, _ = first_run
    history = json.loads(open(summary["training"]["history_path"]).read())
    assert len(history["loss"]) == 4 and len(history["val_accuracy"]) == 4
    trainer = node_id("model")
    model_run = summary["lineage"]["model"].replace(f"/{trainer}/model/", f"/{trainer}/model_run/")
    import glob

    assert glob.glob(f"{model_run}/train/events.out.tfevents.*")
    assert glob.glob(f"{model_run}/validation/events.out.tfevents.*")


def test_report_is_self_contained(first_run):
    summary, result = first_run
    assert f"Report: {summary['report_path']}" in result.stdout
    page = open(summary["report_path"]).read()
    matrix = summary["confusion_matrix"]
    total = sum(map(sum, matrix))
    wrong = total - sum(matrix[i][i] for i in range(len(matrix)))
    # The gallery's count, from the model's own signature, agrees with TFMA's matrix.
    assert f"{wrong} of {total} eval images" in page
    assert "Where the model looks (Grad-CAM on conv5)" in page
    pictures = min(wrong, 12) + 4  # the gallery, then four saliency overlays
    assert page.count("<figure>") == pictures
    # per-class, confusion, reliability, curves and layers, then the pictures
    assert page.count("data:image/png;base64,") == 5 + pictures
    assert not re.search(r"""src=["'](?!data:)""", page)
    for uri in (
        summary["lineage"]["examples"],
        summary["lineage"]["transform_graph"],
        summary["lineage"]["model"],
    ):
        assert uri in page


def test_the_served_probabilities_are_calibrated_on_held_out_train_images(first_run):
    """The temperature was fitted on a held-out slice of the train split; the signatures
    divide the logits by it; the Evaluator reports the calibration error before and after,
    over every eval image; the console and the report show them."""
    import numpy as np
    import tensorflow as tf

    from modules.example_records import split_examples

    summary, result = first_run
    calibration, metrics = summary["training"]["calibration"], summary["metrics"]
    held_out = calibration["held_out_images"]
    assert 0.2 * summary["examples"]["train"] < held_out < 0.4 * summary["examples"]["train"]
    assert calibration["note"] == (
        f"temperature {calibration['temperature']:.3f} fitted on {held_out} held-out images"
    )
    assert calibration["temperature"] != 1.0
    for key in ("calibration_error", "calibration_error_uncalibrated"):
        assert 0 <= metrics[key] <= 1
    for bins in metrics["reliability_bins"].values():
        assert sum(bins[0]) == metrics["example_count"]
    assert (
        f"Calibration: ECE {metrics['calibration_error_uncalibrated']:.3f} -> "
        f"{metrics['calibration_error']:.3f}; {calibration['note']}" in result.stdout
    )
    assert f"Unknown images: ood_score above {calibration['ood_threshold']:.3f}" in result.stdout
    assert "reliability diagram" in open(summary["report_path"]).read()
    examples = [
        feature["image"].bytes_list.value[0]
        for feature in split_examples(summary["lineage"]["examples"], "eval")
    ][:4]
    serialized = [
        tf.train.Example(
            features=tf.train.Features(
                feature={"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
            )
        ).SerializeToString()
        for image in examples
    ]
    loaded = tf.saved_model.load(summary["pushed_model_dir"])
    answer = loaded.signatures["serving_examples"](examples=tf.constant(serialized))
    network = answer["uncalibrated_probabilities"].numpy()
    expected = tf.nn.softmax(np.log(network) / calibration["temperature"]).numpy()
    assert answer["probabilities"].numpy() == pytest.approx(expected, abs=1e-4)
    assert (network.argmax(axis=1) == answer["class_id"].numpy()).all()
    images = loaded.signatures["serving_default"](images=tf.constant(examples))
    assert images["probabilities"].numpy() == pytest.approx(answer["probabilities"].numpy())
    assert "uncalibrated_probabilities" not in images


@pytest.fixture(scope="session")
def identical_rerun(first_run, workspace):
    before = workspace.served()
    summary, _ = workspace.run()
    return summary, before


def test_identical_rerun_reuses_cache(identical_rerun, tiny_wiring, node_id):
    summary, _ = identical_rerun
    statuses = {name: c["status"] for name, c in summary["components"].items()}
    data_nodes = partial_run_nodes(tiny_wiring, node_id("transform_graph"))
    data_nodes.append(node_id("anomalies"))
    assert all(statuses[name] == "cached" for name in data_nodes), statuses
    assert len(data_nodes) == 5
    # The served model changed since the first run, so what reads it runs again...
    for role in ("baseline_model", "drift", "model", "evaluation"):
        assert statuses[node_id(role)] == "complete", role
    # ... but the Trainer finds the served model trained on these very inputs: it trains
    # nothing, and the candidate is the served model itself.
    assert summary["training"]["epochs"] == 0
    assert "reused as it is, nothing trained" in summary["training"]["warm_start_note"]


def test_identical_rerun_does_no_work_and_pushes_nothing(identical_rerun, workspace, node_id):
    summary, before = identical_rerun
    assert summary["baseline_version"] == 1
    assert summary["unchanged_version"] == 1
    roles = ("model", "blessing", "infra_blessing", "pushed_model")
    assert summary["did_no_work"] == [node_id(role) for role in roles]
    assert summary["pushed"] is False
    assert workspace.served() == before


@pytest.fixture(scope="session")
def unreachable_threshold(identical_rerun, workspace, first_run):
    # Perfect accuracy, which the served model's evaluation fell short of.
    assert first_run[0]["metrics"]["accuracy"] < 1
    before = workspace.served()
    # And a chance margin no model can clear: accuracy 1 beats chance by less than 1.
    summary, result = workspace.run("--min-accuracy", "1", "--chance-margin", "1")
    return summary, result, before


def test_unmet_threshold_is_not_blessed_nor_pushed(unreachable_threshold, workspace, node_id):
    """The served model itself, judged again: its eval config changed."""
    summary, result, before = unreachable_threshold
    assert summary["blessed"] is False and summary["pushed"] is False
    assert workspace.served() == before
    assert "Blessed: NO" in result.stdout
    assert "below the minimum 1.0000 (min_accuracy)" in result.stdout
    # Nothing would push it, so the server is not started for it.
    assert summary["serving_check"]["checked"] is False
    assert "Serving check: not run: the Evaluator did not bless the candidate" in result.stdout
    assert summary["components"][node_id("model")]["status"] == "cached"


def test_the_chance_line_is_reported_and_gates_when_asked(first_run, unreachable_threshold):
    """The chance line is the eval split's largest class share, which the confusion matrix's
    rows (true classes) give independently; the tiny preset reports it without gating."""
    summary, result = first_run
    rows = [sum(row) for row in summary["confusion_matrix"]]
    assert summary["metrics"]["chance_accuracy"] == pytest.approx(max(rows) / sum(rows))
    assert f"(chance: {max(rows) / sum(rows):.4f}, always the largest class)" in result.stdout
    assert not any("chance" in failure for failure in summary["failed_thresholds"])
    gated, output, _ = unreachable_threshold
    (line,) = [failure for failure in gated["failed_thresholds"] if "chance" in failure]
    assert "not by more than 1.0000 (chance_margin)" in line
    assert line in output.stdout and gated["blessed"] is False


@pytest.fixture(scope="session")
def second_good_run(unreachable_threshold, workspace, tmp_path_factory):
    # A new hyperparameter (more steps) makes a new model, trained long enough to be a good
    # baseline. The tiny model's eval accuracy on ~25 images moves by several points
    # between trainings, so this run allows that.
    config = tmp_path_factory.mktemp("config") / "tolerant.yaml"
    config.write_text("preset: tiny\nregression_epsilon: 0.3\n")
    return workspace.run("--steps-per-epoch", "60", "--config", str(config))


def test_hyperparameter_change_reruns_trainer_only(second_good_run, tiny_wiring, node_id):
    summary, _ = second_good_run
    statuses = {name: c["status"] for name, c in summary["components"].items()}
    data_nodes = [*partial_run_nodes(tiny_wiring, node_id("transform_graph")), node_id("anomalies")]
    assert [statuses[n] for n in data_nodes] == ["cached"] * 5
    assert statuses[node_id("model")] == "complete"
    # It trains on from the served model: same classes, same architecture.
    assert summary["training"]["warm_started_from"] == 1
    assert summary["training"]["epochs"] == 4


def test_second_good_run_pushes_a_higher_version(second_good_run, workspace):
    summary, _ = second_good_run
    assert summary["blessed"] is True, summary["failed_thresholds"]
    assert summary["pushed_version"] == 2
    assert sorted(workspace.served()) == ["1", "2"]


@pytest.fixture(scope="session")
def worse_model(second_good_run, workspace):
    before = workspace.served()
    # And a held-out slice too small to fit a temperature on.
    summary, result = workspace.run(
        "--learning-rate", "50", "--steps-per-epoch", "30", "--calibration-fraction", "0.05"
    )
    return summary, result, before


def test_worse_model_against_good_baseline_is_not_blessed(worse_model, second_good_run, workspace):
    summary, result, before = worse_model
    good = second_good_run[0]["metrics"]["accuracy"]
    assert good >= 0.65, "the tiny preset should learn the demo data"
    assert summary["metrics"]["accuracy"] < good - 0.01
    assert summary["baseline_version"] == 2
    assert summary["baseline_accuracy"] == pytest.approx(good)
    assert summary["blessed"] is False and summary["pushed"] is False
    assert "against the served baseline" in result.stdout
    assert workspace.served() == before


def test_a_held_out_slice_too_small_leaves_the_temperature_at_one(worse_model):
    """And the run goes on to be judged, whatever the network answers."""
    summary, result, _ = worse_model
    calibration = summary["training"]["calibration"]
    assert calibration["temperature"] == 1.0 and calibration["held_out_images"] < 20
    # Too few images, or (learning rate 50 may do that) a network that diverged to NaN.
    assert calibration["note"].startswith("not calibrated: ")
    # Without a temperature the served probabilities are the network's own.
    metrics = summary["metrics"]
    assert metrics["calibration_error"] == pytest.approx(metrics["calibration_error_uncalibrated"])
    assert f"Calibration: ECE {metrics['calibration_error']:.3f}" in result.stdout


def test_runs_lists_history_from_mlmd(worse_model, workspace):
    from conftest import run_cli

    result = run_cli("runs", "--output-root", str(workspace.root))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()[1:]
    assert len(lines) == workspace.count
    assert lines[0].split()[-2:] == ["yes", "v1"]
    assert lines[-1].split()[-2:] == ["no", "-"]


@pytest.fixture(scope="session")
def after_rollback(worse_model, workspace):
    """Version 2 rolled back while 1 and 2 are pushed, then the pipeline run again, as far
    as the step that finds the served model for the Trainer and the Evaluator."""
    from conftest import run_cli

    serving_dir = workspace.serving.parent
    rolled = run_cli("rollback", "--serving-dir", serving_dir)
    summary, _ = workspace.run("--to", "PushedModelResolver")
    listed = run_cli("versions", "--serving-dir", serving_dir)
    return rolled, summary, listed


def test_rollback_retires_newer_versions_and_the_next_run_compares_with_the_old(
    after_rollback, workspace
):
    rolled, summary, listed = after_rollback
    assert rolled.returncode == 0, rolled.stderr
    assert "Rolled back alexnet to version 1; retired version 2" in rolled.stdout
    assert sorted(p.name for p in workspace.serving.iterdir()) == [".retired", "1"]
    assert (workspace.serving / ".retired" / "2" / "saved_model.pb").exists()  # kept
    assert summary["baseline_version"] == 1
    rows = listed.stdout.strip().splitlines()
    assert rows[0].split()[:2] == ["version", "pushed"]
    version, pushed_at, run_id, accuracy, spans, served = rows[1].split()
    assert (version, spans, served) == ("1", "-", "(served)")
    assert pushed_at.startswith("20") and run_id == workspace_run_id(workspace, 1)
    assert 0 < float(accuracy) <= 1


def workspace_run_id(workspace, number):
    import json

    return json.loads((workspace.root / f"summary-{number}.json").read_text())["run_id"]

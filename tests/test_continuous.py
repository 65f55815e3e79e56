"""Continuous training: span folders and a window of them, the drift check against the served
model's training data, warm start from the served model, and what an identical re-run does.

The loop runs for real, tiny preset, in one output root: span 1 arrives and is trained on;
span 2 arrives shifted (night colours, 320x240, PNG), is stopped by --fail-on-anomalies,
then trained on from the served model; an identical re-run then does nothing new."""

import json
import os
import shutil
from hashlib import sha256

import pytest
import tensorflow as tf
from conftest import encode, partial_run_nodes, run_cli, wiring_for, write_files

from modules.example_records import split_examples
from pipelines.config import ConfigError, build_config
from pipelines.data_facts import inspect_data

# --- bad span layouts: one-line errors naming the folder, before any component runs ---

PNG = encode("PNG")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"span-1/cat/a.png": PNG, "span-1/dog/a.png": PNG, "span-x/cat/a.png": PNG},
            r"data: .*/span-x is not numbered",
        ),
        (
            {"span-1/cat/a.png": PNG, "span-1/dog/a.png": PNG, "cat/a.png": PNG},
            r"data: .*/cat is not a span folder; next to span folders",
        ),
        (
            {"span-1/cat/a.png": PNG, "span-1/dog/a.png": PNG, "span-2/.keep": b""},
            r"data: span folder .*/span-2 is empty",
        ),
        (
            {
                "span-1/cat/a.png": PNG,
                "span-1/dog/a.png": PNG,
                "span-2/cat/a.png": PNG,
                "span-2/bird/a.png": PNG,
            },
            r"data: .*/span-1 lacks class\(es\) bird, which span-2 \(the newest span\) has "
            r"and has class\(es\) dog, which span-2 \(the newest span\) lacks",
        ),
    ],
    ids=["span-x", "mixed with class folders", "empty span", "classes differ"],
)
def test_bad_span_layouts_fail_before_any_component(tmp_path, files, message):
    data = write_files(tmp_path / "data", files)
    (data / "span-2" / ".keep").unlink(missing_ok=True)
    with pytest.raises(ValueError, match=message):
        inspect_data(build_config("tiny", data=str(data)))
    result = run_cli("run", "--data", data, "--preset", "tiny", "--output-root", tmp_path / "out")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "pipeline_root").exists()


def test_classes_outside_the_window_may_differ(tmp_path):
    data = write_files(
        tmp_path / "data",
        {"span-1/bird/a.png": PNG, "span-1/cat/a.png": PNG}
        | {f"span-{n}/{cls}/a.png": PNG for n in (2, 3) for cls in ("cat", "dog")},
    )
    facts = inspect_data(build_config("tiny", data=str(data), window_spans=2))
    assert facts.spanned and facts.spans == [2, 3] and facts.class_names == ["cat", "dog"]
    with pytest.raises(ValueError, match="span-1 lacks"):
        inspect_data(build_config("tiny", data=str(data)))


def test_window_spans_must_not_be_negative():
    with pytest.raises(ConfigError, match="window_spans: must be 0"):
        build_config("tiny", window_spans=-1)


# --- the window: exactly the newest spans, eval from the newest; cached until a span lands ---


@pytest.fixture(scope="module")
def three_spans(tmp_path_factory):
    from pipelines.demo_data import write_demo_spans

    root = tmp_path_factory.mktemp("spans")
    write_demo_spans(root / "all", 4, per_class=15, seed=9)
    (root / "data").mkdir()
    for span in (1, 2, 3):
        (root / "all" / f"span-{span}").rename(root / "data" / f"span-{span}")
    return root


@pytest.fixture(scope="module")
def window_runs(three_spans, node_id):
    """ExampleGen alone, window 2: on three spans, again, and after span 4 lands."""
    root = three_spans

    def ingest(number):
        summary_path = root / f"ingest-{number}.json"
        result = run_cli(
            "run", "--data", root / "data", "--preset", "tiny", "--window-spans", "2",
            "--output-root", root / "out", "--to", node_id("examples"),
            "--summary-json", summary_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(summary_path.read_text())

    first, again = ingest(1), ingest(2)
    (root / "all" / "span-4").rename(root / "data" / "span-4")
    return first, again, ingest(3)


def test_window_reads_exactly_the_newest_spans(window_runs, three_spans):
    from components.image_folder_example_gen.layout import ImageFile
    from components.image_folder_example_gen.splits import assign_splits

    summary = window_runs[0]
    assert summary["spans"] == [2, 3] and summary["newest_span"] == 3
    assert summary["eval_span"] == 3
    paths = {
        split: [
            f["path"].bytes_list.value[0].decode()
            for f in split_examples(summary["lineage"]["examples"], split)
        ]
        for split in ("train", "eval")
    }
    data = three_spans / "data"
    span_3 = sorted(str(p.relative_to(data)) for p in (data / "span-3").rglob("*.jpg"))
    # Span 3 is read whole: its train split, and the eval split is all its own.
    assert sorted(p for split in paths.values() for p in split if p.startswith("span-3/")) == span_3
    assert all(path.startswith("span-3/") for path in paths["eval"])
    # Span 2 gives every image to train, those its hash split set aside for eval too (eval is
    # span 3's); span 1 nothing.
    span_2 = [
        image
        for cls in ("bike", "ship")
        for image in assign_splits(
            [
                ImageFile(str(p.relative_to(data)), cls, digest=sha256(p.read_bytes()).hexdigest())
                for p in (data / "span-2" / cls).glob("*")
            ],
            0.2,
        )
    ]
    expected_span_2 = sorted(image.relative_path for image in span_2)
    older_eval = sum(image.split == "eval" for image in span_2)
    assert older_eval > 0 and summary["older_eval_in_train"] == older_eval
    assert sorted(p for p in paths["train"] if p.startswith("span-2/")) == expected_span_2
    assert not any(path.startswith("span-1/") for split in paths.values() for path in split)
    assert len(paths["train"]) + len(paths["eval"]) == len(span_3) + len(expected_span_2)


def test_an_identical_rerun_is_cached_and_a_new_span_is_ingested(window_runs, node_id):
    _, again, after_new_span = window_runs
    assert again["components"][node_id("examples")]["status"] == "cached"
    assert after_new_span["components"][node_id("examples")]["status"] == "complete"
    assert after_new_span["spans"] == [3, 4]


# --- the loop, end to end ---


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """Span 1, then the shifted span 2: gated on drift, then trained on; then again."""
    from pipelines.demo_data import write_demo_spans

    root = tmp_path_factory.mktemp("loop")
    write_demo_spans(root / "arriving", 2, per_class=30, seed=11)
    (root / "data").mkdir()
    serving = root / "out" / "serving_model" / "alexnet"
    config = root / "tolerant.yaml"
    config.write_text("regression_epsilon: 0.5\n")  # span 2 is harder; accuracy may dip

    def run(name, *extra):
        result = run_cli(
            "run", "--data", root / "data", "--preset", "tiny", "--config", config,
            "--output-root", root / "out", "--summary-json", root / f"{name}.json", *extra,
        )  # fmt: skip
        summary = (
            json.loads((root / f"{name}.json").read_text()) if result.returncode == 0 else None
        )
        return summary, result

    (root / "arriving" / "span-1").rename(root / "data" / "span-1")
    runs = {"first": run("first")}
    (root / "arriving" / "span-2").rename(root / "data" / "span-2")
    before = sorted(p.name for p in serving.iterdir())
    runs["gated"] = run("gated", "--fail-on-anomalies")
    runs["served_after_gate"] = (before, sorted(p.name for p in serving.iterdir()))
    runs["second"] = run("second")
    runs["again"] = run("again")
    runs["serving"] = serving
    return runs


def test_first_span_trains_from_scratch_and_pushes_v1(loop):
    summary, _ = loop["first"]
    assert summary["spans"] == [1] and summary["eval_span"] == 1
    assert summary["training"]["warm_started_from"] is None
    assert summary["training"]["warm_start_note"] == "no model is served; trained from scratch"
    assert summary["drift"] is None  # nothing served to compare with
    assert summary["pushed_version"] == 1
    kept = loop["serving"] / "1" / "assets.extra"
    assert (kept / "training_statistics.pb").stat().st_size > 0
    record = json.loads((kept / "training.json").read_text())
    assert record["spans"] == [1] and record["hyperparameters"]["image_size"] == 67


def test_drift_stops_the_run_before_training_with_fail_on_anomalies(loop, node_id):
    summary, result = loop["gated"]
    assert result.returncode == 1
    assert "data anomalies (fail_on_anomalies); nothing was trained" in result.stderr
    for feature in ("height", "width", "image"):
        assert f"drift: eval: feature {feature}:" in result.stderr
    assert node_id("model") not in result.stdout  # the Trainer never ran
    before, after = loop["served_after_gate"]
    assert before == after == ["1"]


def test_new_span_is_trained_on_from_the_served_model(loop):
    summary, result = loop["second"]
    assert summary["spans"] == [1, 2] and summary["newest_span"] == 2
    assert summary["eval_span"] == 2
    training = summary["training"]
    assert training["warm_started_from"] == 1, training["warm_start_note"]
    assert summary["baseline_version"] == 1
    assert summary["pushed_version"] == 2
    assert "Warm start: started from the weights of served version 1" in result.stdout


def test_drift_findings_name_feature_measure_value_and_threshold(loop):
    summary, result = loop["second"]
    found = {(d["feature"], d["measure"]): d for d in summary["drift"]}
    assert set(found) >= {
        ("height", "JENSEN_SHANNON_DIVERGENCE"),
        ("width", "JENSEN_SHANNON_DIVERGENCE"),
        ("image", "L_INFTY"),  # every image is now a PNG
    }
    assert ("class_name", "L_INFTY") not in found  # both spans are half bikes, half ships
    for drift in found.values():
        assert drift["value"] > drift["threshold"] == 0.2
    assert found[("image", "L_INFTY")]["value"] == pytest.approx(1.0)
    assert any(
        message.startswith("drift: eval: feature image:") for message in summary["anomalies"]
    )
    page = open(summary["report_path"]).read()
    assert "Linfty distance between the image formats" in page


def test_an_identical_rerun_trains_and_pushes_nothing(loop, node_id):
    summary, _ = loop["again"]
    statuses = {name: c["status"] for name, c in summary["components"].items()}
    assert statuses[node_id("examples")] == statuses[node_id("transform_graph")] == "cached"
    assert summary["training"]["epochs"] == 0
    assert (
        "served version 2 was trained on these examples" in summary["training"]["warm_start_note"]
    )
    assert summary["pushed"] is False
    assert sorted(p.name for p in loop["serving"].iterdir()) == ["1", "2"]


# --- TFRecords in spans ---


def _write_records(path, labels):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index, label in enumerate(labels):
            feature = {
                "image": tf.train.Feature(
                    bytes_list=tf.train.BytesList(
                        value=[encode("PNG", colour=(label * 90, 20, index))]
                    )
                ),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "id": tf.train.Feature(
                    bytes_list=tf.train.BytesList(
                        value=[f"{path.parent.name}/{path.name}/{index}".encode()]
                    )
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )


def test_tfrecord_spans_read_the_window_with_eval_from_the_newest(tmp_path):
    from pipelines.local_runner import run_pipeline

    data = tmp_path / "records"
    for span in (1, 2):
        (data / f"span-{span}").mkdir(parents=True)
        (data / f"span-{span}" / "labels.txt").write_text("red\ngreen\n")
    _write_records(data / "span-1" / "train.tfrecord", [0, 1] * 10)
    _write_records(data / "span-1" / "eval.tfrecord", [0, 1] * 3)
    _write_records(data / "span-2" / "part-0.tfrecord", [0, 1] * 20)  # hashed into splits
    config = build_config(
        "tiny", data=str(data), data_format="tfrecord", output_root=str(tmp_path / "out")
    )
    wiring = wiring_for(config)
    example_gen = wiring.sources()["examples"].node_id
    summary = run_pipeline(config, to_component=example_gen)
    assert example_gen == "TFRecordSpansExampleGen"
    assert summary.spans == [1, 2] and summary.eval_span == 2
    ids = {
        split: [
            f["id"].bytes_list.value[0].decode()
            for f in split_examples(summary.lineage["examples"], split)
        ]
        for split in ("train", "eval")
    }
    assert all(i.startswith("span-2/") for i in ids["eval"]) and ids["eval"]
    # Span 1's eval records are trained on: evaluation is span 2's.
    assert sum(i.startswith("span-1/eval.tfrecord") for i in ids["train"]) == 6
    assert sum(i.startswith("span-1/train.tfrecord") for i in ids["train"]) == 20
    assert len(ids["train"]) + len(ids["eval"]) == 26 + 40
    assert summary.older_eval_in_train == 6
    assert open(os.path.join(summary.lineage["examples"], "labels.txt")).read() == "red\ngreen\n"
    assert partial_run_nodes(wiring, example_gen) == [example_gen]


# --- warm start decisions, on served models made up on disk ---


@pytest.fixture
def served(tmp_path):
    """A resolved served version as the Trainer sees it: <uri>/Format-Serving/ + served.json."""
    model = tmp_path / "resolved" / "Format-Serving"
    (model / "assets.extra").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"")
    (model / "assets.extra" / "labels.txt").write_text("bike\nship\n")
    (tmp_path / "resolved" / "served.json").write_text(json.dumps({"version": 4}))
    return model


def _plan(served, classes=("bike", "ship"), enabled=True, trained_on=None, **hyperparameters):
    from modules.hyperparameters import Hyperparameters
    from modules.warm_start import plan_warm_start

    hp = Hyperparameters(**{"image_size": 67, "width_multiplier": 0.125, **hyperparameters})
    return plan_warm_start(str(served), enabled, list(classes), hp, trained_on or {"examples": "x"})


def _record(served, **hyperparameters):
    from modules.hyperparameters import Hyperparameters

    hp = Hyperparameters(**{"image_size": 67, "width_multiplier": 0.125, **hyperparameters})
    record = {"hyperparameters": hp.to_dict(), "trained_on": {"examples": "old"}}
    (served / "assets.extra" / "training.json").write_text(json.dumps(record))


def test_warm_start_uses_a_served_model_that_fits(served):
    _record(served)
    plan = _plan(served)
    assert (plan.version, plan.reuse) == (4, False)
    assert plan.note == "started from the weights of served version 4"


@pytest.mark.parametrize(
    ("change", "note"),
    [
        (dict(classes=("bike", "car", "ship")), "served version 4 not used: its classes"),
        (dict(image_size=99), "served version 4 not used: its image_size is 67, this run's is 99"),
        (dict(width_multiplier=0.25), "its width_multiplier is 0.125, this run's is 0.25"),
        (dict(enabled=False), "warm_start is off; trained from scratch"),
    ],
)
def test_warm_start_refuses_what_does_not_fit_and_says_why(served, change, note):
    _record(served)
    plan = _plan(served, **change)
    assert plan.version is None and not plan.reuse and note in plan.note


def test_a_served_model_without_a_training_record_is_not_used(served):
    assert "records no architecture" in _plan(served).note


def test_nothing_served_means_from_scratch(tmp_path):
    assert _plan(tmp_path / "empty" / "Format-Serving").note == (
        "no model is served; trained from scratch"
    )


def test_a_model_trained_on_these_inputs_is_reused(served):
    _record(served)
    plan = _plan(served, trained_on={"examples": "old"})
    assert plan.reuse and plan.version is None


# --- the label drift measure, on statistics TFDV computes from small example sets ---


def _statistics(tmp_path, name, classes):
    from components.drift_check import split_statistics

    folder = tmp_path / name / "Split-eval"
    folder.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(folder / "data.tfrecord")) as writer:
        for index, cls in enumerate(classes):
            feature = {
                "class_name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[cls.encode()])),
                "image": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[encode("JPEG", colour=(index, 0, 0))])
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    return split_statistics(str(tmp_path / name), "eval")


def test_label_drift_is_the_largest_change_in_a_class_share(tmp_path):
    from components.drift_check import drift_anomalies
    from components.drift_thresholds import DriftThresholds

    before = _statistics(tmp_path, "before", ["bike", "ship"] * 20)
    same = _statistics(tmp_path, "same", ["ship", "bike"] * 20)
    skewed = _statistics(tmp_path, "skewed", ["bike"] * 32 + ["ship"] * 8)  # 80% / 20%
    thresholds = DriftThresholds()
    assert "class_name" not in drift_anomalies(same, before, "label", thresholds).anomaly_info
    found = drift_anomalies(skewed, before, "label", thresholds)
    assert list(found.anomaly_info) == ["class_name"]
    (drift,) = [d for d in found.drift_skew_info if list(d.path.step) == ["class_name"]]
    assert drift.drift_measurements[0].value == pytest.approx(0.3)
    assert drift.drift_measurements[0].threshold == pytest.approx(0.2)
    tolerant = DriftThresholds(label_l_infinity=0.35)
    assert "class_name" not in drift_anomalies(skewed, before, "label", tolerant).anomaly_info


def test_drift_thresholds_name_the_field():
    with pytest.raises(ConfigError, match=r"drift.size_js_divergence: must be in \(0, 1\]"):
        build_config("tiny", drift={"size_js_divergence": 2})
    with pytest.raises(ConfigError, match="drift: unknown drift threshold"):
        build_config("tiny", drift={"label_linf": 0.1})


def test_demo_spans_shift_the_last_span(tmp_path):
    from PIL import Image

    from pipelines.demo_data import write_demo_spans

    write_demo_spans(tmp_path, 2, per_class=2, seed=1)
    with Image.open(next((tmp_path / "span-1" / "ship").glob("*"))) as normal:
        assert (normal.format, normal.size) == ("JPEG", (256, 256))
    with Image.open(next((tmp_path / "span-2" / "ship").glob("*"))) as shifted:
        assert (shifted.format, shifted.size) == ("PNG", (320, 240))
    shutil.rmtree(tmp_path / "span-1")

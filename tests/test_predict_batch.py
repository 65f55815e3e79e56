"""`alexnet-tfx predict-batch`: Beam RunInference over a folder with the first run's pushed
model, against the same model called in process."""

import json
import re

import pytest
import tensorflow as tf
from conftest import encode, png_header, run_cli, write_files

from pipelines.demo_data import write_demo_dataset
from serving import layout
from serving.served_model import ServedModel


@pytest.fixture(scope="module")
def version_1(first_run):
    summary, _ = first_run
    return summary["pushed_model_dir"]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """8 images of each class in class folders, one corrupt image, a decompression bomb
    (the header of a 20000x20000 PNG) and a text file."""
    root = tmp_path_factory.mktemp("labelled")
    write_demo_dataset(root, per_class=8, seed=21)
    write_files(
        root,
        {
            "bike/broken.jpg": b"not an image",
            "ship/huge.png": png_header(20000, 20000),
            "notes.txt": b"taken in May",
        },
    )
    return root


def predict(data, out, *extra):
    result = run_cli("predict-batch", "--data", data, "--out", out, *extra)
    lines = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return result, lines


@pytest.fixture(scope="module")
def scored(labelled, version_1, tmp_path_factory):
    out = tmp_path_factory.mktemp("scored") / "scores.jsonl"
    result, lines = predict(labelled, out, "--model", version_1)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, lines


def test_every_file_has_one_line_and_undecodable_ones_are_listed(scored):
    result, lines = scored
    assert len(lines) == 19
    failed = {line["path"]: line["error"] for line in lines if "error" in line}
    assert set(failed) == {"bike/broken.jpg", "ship/huge.png", "notes.txt"}
    assert (
        "cannot be decoded" in failed["bike/broken.jpg"]
        and "cannot be decoded" in failed["notes.txt"]
    )
    # The training and serving limit (contract/images.py), read from the header: not decoded.
    assert failed["ship/huge.png"] == (
        "400,000,000 pixels exceed the limit of 40,000,000; send a smaller image"
    )
    assert "Undecodable: 3 files" in result.stdout
    good = [line for line in lines if "error" not in line]
    assert {line["path"].split("/")[0] for line in good} == {"bike", "ship"}
    for line in good:
        assert set(line) == {
            "path",
            "class_name",
            "score",
            "ood_score",
            "unknown",
            "top_k",
            "model_version",
            "label",
        }
        assert line["ood_score"] > 0 and isinstance(line["unknown"], bool)
        assert line["model_version"] == 1
        assert line["label"] == line["path"].split("/")[0]
        top = line["top_k"]
        assert [entry["class_name"] for entry in top][0] == line["class_name"]
        assert top[0]["probability"] == line["score"]
        assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]


def test_predictions_equal_the_served_model_in_process(scored, labelled, version_1):
    _, lines = scored
    good = [line for line in lines if "error" not in line]
    model = ServedModel(1, version_1)
    expected = model.predict([(labelled / line["path"]).read_bytes() for line in good])
    for line, prediction in zip(good, expected, strict=True):
        assert line["class_name"] == prediction.class_name
        assert line["score"] == pytest.approx(prediction.score, abs=1e-5)


def test_labelled_folders_give_accuracy_and_a_confusion_matrix(scored):
    result, lines = scored
    good = [line for line in lines if "error" not in line]
    accuracy = sum(line["label"] == line["class_name"] for line in good) / len(good)
    assert f"Accuracy: {accuracy:.4f} on 16 labelled images" in result.stdout
    rows = {
        match[0]: [int(match[1]), int(match[2])]
        for match in re.findall(r"^(bike|ship)\s+(\d+)\s+(\d+)$", result.stdout, re.MULTILINE)
    }
    for actual in ("bike", "ship"):
        predicted = [line["class_name"] for line in good if line["label"] == actual]
        assert rows[actual] == [predicted.count("bike"), predicted.count("ship")]


def test_beam_workers_give_the_same_lines(scored, labelled, version_1, tmp_path):
    _, lines = scored
    workers = (
        "--beam-arg=--direct_num_workers=2",
        "--beam-arg=--direct_running_mode=multi_threading",
    )
    result, again = predict(labelled, tmp_path / "workers.jsonl", "--model", version_1, *workers)
    assert result.returncode == 0, result.stderr[-3000:]
    # Other batches: oneDNN's AVX2 kernels may move a probability's sixth decimal, and the
    # unknown-image distance by about 1e-4 of itself.
    found, found_scores, found_distances = _split_scores(again)
    expected, expected_scores, expected_distances = _split_scores(lines)
    assert found == expected
    assert found_scores == pytest.approx(expected_scores, abs=2e-6)
    assert found_distances == pytest.approx(expected_distances, rel=1e-3)


def _split_scores(lines):
    """The lines by path without their probabilities and unknown-image scores, and those
    probabilities, then those distances, in order."""
    rest, scores, distances = [], [], []
    for line in sorted(lines, key=lambda line: line["path"]):
        top_k = line.get("top_k", [])
        rest.append(
            {
                **line,
                "score": None,
                "ood_score": None,
                "top_k": [entry["class_name"] for entry in top_k],
            }
        )
        scores += [line.get("score", 0.0)] + [entry["probability"] for entry in top_k]
        distances.append(line.get("ood_score", 0.0))
    return rest, scores, distances


def test_served_version_images_without_classes_and_tfrecords(first_run, version_1, tmp_path):
    summary, _ = first_run
    serving_dir = summary["pushed_model_dir"].rsplit("/alexnet/", 1)[0]
    flat = write_files(tmp_path / "flat", {"a.png": encode("PNG"), "b/c.jpg": encode("JPEG")})
    result, lines = predict(flat, tmp_path / "flat.jsonl", "--serving-dir", serving_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    served = layout.latest_version_dir(serving_dir, "alexnet")[0]
    assert sorted(line["path"] for line in lines) == ["a.png", "b/c.jpg"]
    assert {line["model_version"] for line in lines} == {served}
    assert all("label" not in line for line in lines) and "Accuracy" not in result.stdout

    records = tmp_path / "records"
    records.mkdir()
    with tf.io.TFRecordWriter(str(records / "part-0.tfrecord")) as writer:
        for label in (0, 1, 1):
            features = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encode("JPEG")])),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
            )
    (records / "labels.txt").write_text("bike\nship\n")
    result, lines = predict(records, tmp_path / "records.jsonl", "--model", version_1)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(line["path"] for line in lines) == [
        f"part-0.tfrecord#{index}" for index in range(3)
    ]
    assert sorted(line["label"] for line in lines) == ["bike", "ship", "ship"]
    assert "on 3 labelled images" in result.stdout


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("empty data", r"--data: .*empty holds no images .* and no TFRecord files"),
        ("no saved model", r"--model: .*not_a_model holds no SavedModel \(saved_model.pb\)"),
        ("missing out folder", r"--out: the folder .*missing does not exist"),
        ("out is a folder", r"--out: .* is a folder; give a file path"),
    ],
)
def test_bad_input_is_a_one_line_error_before_any_work(
    case, message, labelled, version_1, tmp_path
):
    (tmp_path / "empty").mkdir()
    (tmp_path / "not_a_model").mkdir()
    data, model, out = labelled, version_1, tmp_path / "out.jsonl"
    if case == "empty data":
        data = tmp_path / "empty"
    elif case == "no saved model":
        model = tmp_path / "not_a_model"
    elif case == "missing out folder":
        out = tmp_path / "missing" / "out.jsonl"
    else:
        out = tmp_path
    result = run_cli("predict-batch", "--data", data, "--out", out, "--model", model)
    assert result.returncode == 1
    error = result.stderr.strip()
    assert len(error.splitlines()) == 1 and re.search(message, error), error
    assert "Scoring" not in result.stdout  # nothing started

"""A local run with its data and its serving directory in buckets on a real S3 server:
TFRecord spans read from s3://, a version pushed there; and each mistake with a bucket a
one-line error before anything is written."""

import json
import socket
import uuid
from pathlib import Path

import pytest
from conftest import run_cli, write_tfrecords


def _run(data, serving, output_root, *extra):
    config = Path(output_root).parent / "features.yaml"
    config.write_text("image_feature: img\nlabel_feature: y\n")
    return run_cli(
        "run", "--data", data, "--data-format", "tfrecord", "--serving-dir", serving,
        "--output-root", output_root, "--preset", "tiny", "--config", config,
        "--epochs", "1", "--min-accuracy", "0", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bucket_run(s3, tmp_path_factory):
    base = tmp_path_factory.mktemp("bucket-run")
    span = base / "records" / "span-1"
    span.mkdir(parents=True)
    write_tfrecords(span, "train", 30, 0)
    write_tfrecords(span, "test", 12, 100)
    (span / "labels.txt").write_text("red\ngreen\nblue\n")
    bucket = s3.make_bucket(f"local-{uuid.uuid4().hex[:8]}")
    data, serving = f"s3://{bucket}/records", f"minio://{bucket}/serving"
    s3.upload(base / "records", data)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3.environment().items():
            patch.setenv(name, value)
        result = _run(data, serving, base / "out")
        listed = run_cli("versions", "--serving-dir", serving)
    return result, listed, base / "out", serving


def test_tfrecord_spans_are_read_from_the_bucket_and_v1_pushed_there(bucket_run, s3):
    result, listed, output_root, serving = bucket_run
    assert result.returncode == 0, result.stderr[-3000:]
    (summary_path,) = output_root.glob("runs/*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["examples"] == {"train": 30, "eval": 12}
    assert summary["classes"] == ["red", "green", "blue"]
    assert summary["pushed"] is True and summary["pushed_version"] == 1
    key = serving.split("://", 1)[1]
    assert s3.filesystem().exists(f"{key}/alexnet/1/saved_model.pb")
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [(row[0], row[-2], row[-1]) for row in rows] == [("1", "1", "(served)")]


@pytest.fixture
def images(s3_env, demo_dir):
    bucket = s3_env.make_bucket(f"images-{uuid.uuid4().hex[:8]}")
    s3_env.upload(demo_dir, f"s3://{bucket}/images")
    return bucket


def _closed_port():
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]


@pytest.mark.parametrize(
    ("setting", "data", "serving", "expected"),
    [
        (
            {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}"},
            "s3://{bucket}/images", None, "cannot reach bucket {bucket}",
        ),
        (
            {"AWS_SECRET_ACCESS_KEY": "not-the-secret"},
            "s3://{bucket}/images", None, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        ({}, "s3://no-such-bucket-here/images", None, "bucket no-such-bucket-here at"),
        ({}, "s3://{bucket}/images", "s3://no-such-serving/models", "bucket no-such-serving at"),
        ({}, "s3://{bucket}/no-images-here", None, "s3://{bucket}/no-images-here does not"),
        ({"AWS_ENDPOINT_URL": ""}, "minio://{bucket}/images", None, "set AWS_ENDPOINT_URL"),
    ],
    ids=["wrong-endpoint", "wrong-credentials", "missing-bucket", "missing-serving-bucket",
         "prefix-without-images", "minio-without-endpoint"],
)  # fmt: skip
def test_a_bucket_mistake_is_one_line_and_writes_nothing(
    s3_env, images, monkeypatch, tmp_path, setting, data, serving, expected
):
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    output_root = tmp_path / "out"
    result = run_cli(
        "run", "--data", data.format(bucket=images), "--preset", "tiny",
        "--serving-dir", (serving or f"s3://{images}/serving"), "--output-root", output_root,
    )  # fmt: skip
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "\n" not in message and expected.format(bucket=images) in message, message
    # Nothing but the run's log: no pipeline root, nothing in the serving bucket.
    assert [path.name for path in output_root.rglob("*") if path.is_file()] == ["pipeline.log"]
    assert not s3_env.filesystem().find(f"{images}/serving")

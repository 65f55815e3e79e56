"""Other ways in and through the pipeline: TFRecord input with its own feature names, the
Beam orchestrator, materialized Transform output, a curated schema, and a failing component."""

import json
import shutil

import pytest
import tensorflow as tf
from conftest import encode, partial_run_nodes, run_cli, wiring_for, write_tfrecords
from tfx import v1 as tfx

from pipelines.config import ConfigError, build_config
from pipelines.local_runner import run_pipeline


def test_tfrecord_input_with_custom_feature_names(tmp_path):
    data = tmp_path / "records"
    data.mkdir()
    write_tfrecords(data, "train", 30, 0)
    write_tfrecords(data, "test", 12, 100)
    (data / "labels.txt").write_text("red\ngreen\nblue\n")
    config = build_config(
        "tiny",
        data=str(data),
        data_format="tfrecord",
        image_feature="img",
        label_feature="y",
        output_root=str(tmp_path / "out"),
        training=dict(epochs=1, steps_per_epoch=2),
    )
    wiring = wiring_for(config)
    example_gen, trainer = wiring.sources()["examples"].node_id, wiring.sources()["model"].node_id
    assert isinstance(wiring.components[0], tfx.components.ImportExampleGen)
    summary = run_pipeline(config, to_component=trainer)
    assert summary.components[example_gen].status == "complete"
    assert summary.examples == {"train": 30, "eval": 12}  # the files are the splits
    assert summary.classes == ["red", "green", "blue"]
    history = json.loads(open(summary.training.history_path).read())
    assert history["class_names"] == ["red", "green", "blue"]


@pytest.mark.parametrize(
    ("files", "patterns"),
    [
        (["train.tfrecord", "eval.tfrecord", "labels.txt"], {"train": "train*", "eval": "eval*"}),
        (["train-0.gz", "test-0.gz"], {"train": "train*", "eval": "test*"}),
        (["part-0", "part-1"], {"single_split": "*"}),
        (["a.tfrecord", "b.tfrecord.gz", "labels.txt"], {"single_split": "*.tfrecord*"}),
    ],
)
def test_tfrecord_splits_come_from_file_names(tmp_path, files, patterns):
    from components.tfrecord_layout import tfrecord_splits

    for name in files:
        (tmp_path / name).write_bytes(b"")
    assert tfrecord_splits(str(tmp_path)) == patterns


def test_labels_file_next_to_unnamed_records_is_a_clear_error(tmp_path):
    from components.tfrecord_layout import TFRecordLayoutError, tfrecord_splits

    for name in ("part-0", "labels.txt"):
        (tmp_path / name).write_bytes(b"")
    with pytest.raises(TFRecordLayoutError, match=r"^data: .*labels.txt next to files not named"):
        tfrecord_splits(str(tmp_path))


def test_beam_orchestrator_runs_the_same_pipeline(tmp_path, demo_dir, tiny_wiring, node_id):
    result = run_cli(
        "run",
        "--data",
        demo_dir,
        "--preset",
        "tiny",
        "--orchestrator",
        "beam",
        "--to",
        node_id("schema"),
        "--output-root",
        tmp_path,
        "--summary-json",
        tmp_path / "s.json",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert list(summary["components"]) == partial_run_nodes(tiny_wiring, node_id("schema"))
    assert len(summary["components"]) == 3
    assert sum(summary["examples"].values()) == 120


def test_materialized_transform_feeds_the_trainer(tmp_path, demo_dir, node_id):
    config = build_config(
        "tiny",
        data=str(demo_dir),
        output_root=str(tmp_path),
        training=dict(materialize=True, epochs=1, steps_per_epoch=3),
    )
    summary = run_pipeline(config, to_component=node_id("model"))
    transformed = tf.io.gfile.glob(f"{summary.lineage['transformed_examples']}/Split-train/*")
    assert transformed
    record = next(iter(tf.data.TFRecordDataset(transformed, compression_type="GZIP")))
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    assert len(feature["image"].float_list.value) == 67 * 67 * 3
    assert summary.training.epochs == 1


def test_failing_component_names_itself_and_its_logs(tmp_path, node_id):
    data = tmp_path / "data"
    for name, payload in (
        ("cat/a.jpg", encode("JPEG")),
        ("cat/b.png", encode("PNG")),
        ("dog/a.jpg", b"corrupt"),
        ("dog/b.jpg", b""),
    ):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(payload)
    result = run_cli("run", "--data", data, "--preset", "tiny", "--output-root", tmp_path / "out")
    assert result.returncode == 1
    assert f"Error: Component {node_id('examples')} failed" in result.stderr
    assert "dog" in result.stderr and "no image that decodes" in result.stderr
    log_line = next(line for line in result.stderr.splitlines() if "Full logs:" in line)
    assert open(log_line.split("Full logs: ")[1].strip()).read()


@pytest.mark.parametrize("marker", ["UTF-8", "utf-8", "utf8"])
def test_image_bytes_do_not_flood_logs(first_run, marker):
    summary, _ = first_run
    assert marker not in open(summary["log_path"]).read()


CURATED_SCHEMA = """
feature { name: "class_name" type: BYTES domain: "class_name" shape { dim { size: 1 } } }
feature { name: "label" type: INT shape { dim { size: 1 } } }
feature { name: "image" type: BYTES shape { dim { size: 1 } } }
feature { name: "path" type: BYTES shape { dim { size: 1 } } }
feature { name: "height" type: INT shape { dim { size: 1 } } }
feature { name: "width" type: INT shape { dim { size: 1 } } }
string_domain { name: "class_name" value: "cat" value: "dog" }
"""


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """Class folders cat, dog and bird, and a curated schema that knows only cat and dog."""
    root = tmp_path_factory.mktemp("curated")
    for index, cls in enumerate(("cat", "dog", "bird")):
        for image in range(5):
            path = root / "data" / cls / f"{image}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode("PNG", colour=(80 * index, 40 * image, 90)))
    (root / "schema.pbtxt").write_text(CURATED_SCHEMA)
    (root / "config.yaml").write_text(f"schema_file: {root / 'schema.pbtxt'}\n")
    return root


def _curated_ids(curated, **fields):
    config = build_config("tiny", data=str(curated / "data"), **fields)
    return {role: source.node_id for role, source in wiring_for(config).sources().items()}


def test_fail_on_anomalies_stops_before_training(curated):
    out = curated / "out"
    result = run_cli(
        "run",
        "--data",
        curated / "data",
        "--config",
        curated / "config.yaml",
        "--preset",
        "tiny",
        "--output-root",
        out,
        "--fail-on-anomalies",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "data anomalies (fail_on_anomalies); nothing was trained" in result.stderr
    assert "class_name" in result.stdout and "bird" in result.stdout
    ids = _curated_ids(curated, schema_file=str(curated / "schema.pbtxt"))
    assert ids["schema"] == "CuratedImportSchemaGen" and ids["schema"] in result.stdout
    assert not (out / "pipeline_root" / ids["model"]).exists()
    assert not (out / "serving_model").exists()


def test_data_that_fits_the_curated_schema_has_no_anomalies(curated, tmp_path):
    shutil.copytree(curated / "data", tmp_path / "data", ignore=shutil.ignore_patterns("bird"))
    config = build_config(
        "tiny",
        data=str(tmp_path / "data"),
        schema_file=str(curated / "schema.pbtxt"),
        output_root=str(tmp_path / "out"),
    )
    summary = run_pipeline(config, to_component=wiring_for(config).sources()["anomalies"].node_id)
    assert summary.anomalies == []
    assert summary.lineage["schema"].startswith(str(tmp_path / "out"))


def test_an_edited_curated_schema_is_imported_again(curated, tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(CURATED_SCHEMA)

    ids = _curated_ids(curated, schema_file=str(schema))

    def validate():
        config = build_config(
            "tiny",
            data=str(curated / "data"),
            schema_file=str(schema),
            output_root=str(tmp_path / "out"),
        )
        return run_pipeline(config, to_component=ids["anomalies"])

    first = validate()
    assert any("bird" in message for message in first.anomalies)
    schema.write_text(CURATED_SCHEMA.replace('value: "dog"', 'value: "dog" value: "bird"'))
    second = validate()
    assert second.components[ids["schema"]].status == "complete"
    assert not any("class_name" in message for message in second.anomalies)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "schema_file: cannot read"), ("feature { nme: 1 }", "not a text-format TFMD Schema")],
)
def test_unusable_schema_file_is_a_config_error(tmp_path, content, message):
    path = tmp_path / "schema.pbtxt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        build_config("tiny", schema_file=str(path))

"""Beam arguments reach the Beam-powered components: ingestion, statistics and Transform run
with 2 DirectRunner worker processes and produce what the in-memory runner produced in the
shared first run (same data, same preset)."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import partial_run_nodes


def _examples(uri):
    found = {}
    for split in ("train", "eval"):
        files = glob.glob(os.path.join(uri, f"Split-{split}", "*"))
        for record in tf.data.TFRecordDataset(files):
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            found[feature["path"].bytes_list.value[0].decode()] = (
                split,
                feature["label"].int64_list.value[0],
                feature["image"].bytes_list.value[0],
            )
    return found


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, demo_dir, first_run, node_id):
    from pipelines.config import build_config
    from pipelines.local_runner import run_pipeline

    config = build_config(
        "tiny",
        data=str(demo_dir),
        output_root=str(tmp_path_factory.mktemp("multi_processing")),
        beam_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    )
    multi = run_pipeline(config, to_component=node_id("transform_graph")).model_dump()
    return {"in_memory": first_run[0], "multi_processing": multi}


def test_every_beam_component_completes_with_worker_processes(two_runs, tiny_wiring, node_id):
    statuses = {name: c["status"] for name, c in two_runs["multi_processing"]["components"].items()}
    expected = partial_run_nodes(tiny_wiring, node_id("transform_graph"))
    assert statuses == dict.fromkeys(expected, "complete")
    assert expected == [node_id(r) for r in ("examples", "statistics", "schema", "transform_graph")]


def test_multi_processing_ingestion_equals_in_memory(two_runs):
    in_memory = _examples(two_runs["in_memory"]["lineage"]["examples"])
    multi = _examples(two_runs["multi_processing"]["lineage"]["examples"])
    assert len(in_memory) == 120
    assert multi == in_memory


def test_multi_processing_statistics_equal_in_memory(two_runs):
    counts = {mode: run["examples"] for mode, run in two_runs.items()}
    assert counts["multi_processing"] == counts["in_memory"]
    assert sum(counts["in_memory"].values()) == 120


def test_multi_processing_transform_equals_in_memory(two_runs):
    """Both transform graphs, applied to the same raw examples, give the same tensors: the
    full-pass mean and standard deviation agree across runners."""
    import tensorflow_transform as tft

    uri = two_runs["in_memory"]["lineage"]["examples"]
    files = glob.glob(os.path.join(uri, "Split-train", "*"))
    outputs = {}
    for mode, run in two_runs.items():
        transform = tft.TFTransformOutput(run["lineage"]["transform_graph"])
        batch = next(iter(tf.data.TFRecordDataset(files).batch(8)))
        raw = tf.io.parse_example(batch, transform.raw_feature_spec())
        outputs[mode] = transform.transform_features_layer()(raw)["image"].numpy()
    assert outputs["in_memory"].shape == (8, 67, 67, 3)
    np.testing.assert_allclose(outputs["multi_processing"], outputs["in_memory"], atol=1e-4)

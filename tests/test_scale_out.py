"""Beam arguments reach the Beam-powered components: ingestion and Transform under the
multi-processing DirectRunner with 2 workers give what the in-memory runner gives."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf


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
def two_runs(tmp_path_factory, demo_dir):
    from pipelines.config import build_config
    from pipelines.local_runner import run_pipeline

    runs = {}
    for mode, workers in (("in_memory", 1), ("multi_processing", 2)):
        config = build_config(
            "tiny",
            data=str(demo_dir),
            output_root=str(tmp_path_factory.mktemp(mode)),
            beam_args=[f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"],
        )
        runs[mode] = run_pipeline(config, to_component="Transform")
    return runs


def test_multi_processing_ingestion_equals_in_memory(two_runs):
    in_memory = _examples(two_runs["in_memory"]["lineage"]["examples"])
    multi = _examples(two_runs["multi_processing"]["lineage"]["examples"])
    assert len(in_memory) == 120
    assert multi == in_memory


def test_multi_processing_transform_equals_in_memory(two_runs, demo_dir):
    import tensorflow_transform as tft

    image = next(demo_dir.rglob("*.jpg")).read_bytes()
    outputs = []
    for mode in ("in_memory", "multi_processing"):
        graph = tft.TFTransformOutput(two_runs[mode]["lineage"]["transform_graph"])
        outputs.append(
            graph.transform_raw_features(
                {"image": tf.constant([[image]])}, drop_unused_features=True
            )["image"].numpy()
        )
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)

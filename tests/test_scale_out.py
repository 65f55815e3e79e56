"""Beam arguments reach the Beam-powered components: ingestion with 2 DirectRunner worker
processes writes exactly what the in-memory runner writes.

StatisticsGen and Transform cannot use worker processes with this dependency set: their
DoFns import tensorflow_data_validation 1.16, which needs tfx_bsl.arrow.sql_util; tfx-bsl
1.21 lacks it, and TFX mocks it only where tfx was imported first, which Beam's workers
have not. See BENCHMARKS.md and kubeflow/README.md."""

import glob
import os

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
        runs[mode] = run_pipeline(config, to_component="ImageFolderExampleGen")
    return runs


def test_multi_processing_ingestion_equals_in_memory(two_runs):
    in_memory = _examples(two_runs["in_memory"]["lineage"]["examples"])
    multi = _examples(two_runs["multi_processing"]["lineage"]["examples"])
    assert len(in_memory) == 120
    assert multi == in_memory

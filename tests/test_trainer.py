"""Trainer: device selection, resumable training, and the exported serving signatures."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from forked import forkserver
from trainer_harness import has_checkpoint, run_trainer

from contract.model_files import HISTORY_FILE
from modules.device_plan import plan_devices


@pytest.mark.parametrize(
    ("gpus", "bfloat16", "strategy", "policy"),
    [
        ([], False, "default", "float32"),
        ([], True, "default", "mixed_bfloat16"),
        (["/physical_device:GPU:0"], True, "default", "mixed_float16"),
        (["/physical_device:GPU:0", "/physical_device:GPU:1"], False, "mirrored", "mixed_float16"),
    ],
)
def test_device_plan(gpus, bfloat16, strategy, policy):
    plan = plan_devices(gpus, bfloat16)
    assert (plan.strategy, plan.policy) == (strategy, policy)
    assert plan.devices == (gpus or ["CPU"])


@pytest.mark.parametrize(
    ("flags", "isa_cap", "expected"),
    [
        ("fpu avx2 fma", None, False),
        ("avx2 avx512f avx512_bf16", None, True),
        ("avx2 amx_bf16", None, True),
        ("avx2 avx512f avx512_bf16", "AVX2", False),
        ("avx2 avx512f avx512_bf16", "avx512_core_bf16", True),
    ],
)
def test_bfloat16_is_used_only_where_the_cpu_has_it(
    tmp_path, monkeypatch, flags, isa_cap, expected
):
    from modules.device_plan import cpu_has_bfloat16

    if isa_cap:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa_cap)
    else:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_has_bfloat16(str(cpuinfo)) is expected


def _epoch_records(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _backup_epochs(out):
    """{fingerprint: epochs its backup's log records} for the Trainer's backups under OUT."""
    return {
        log.parent.name: [record["epoch"] for record in _epoch_records(log)]
        for log in (out / "Trainer" / "backup").glob("*/epochs.jsonl")
    }


def _history(out, execution):
    path = out / "Trainer" / "model" / str(execution) / HISTORY_FILE
    return json.loads(path.read_text())


def test_killed_training_resumes_in_a_new_execution_unless_its_inputs_changed(
    first_run, tiny_wiring, node_id, tmp_path
):
    """A re-run after a kill is a new Trainer execution with new output URIs: it resumes the
    backup keyed by the training's fingerprint. Other hyperparameters train afresh."""
    summary, _ = first_run
    trainer = next(node for node in tiny_wiring.components if node.id == node_id("model"))
    # The custom_config the pipeline gives the Trainer, as JSON.
    (tmp_path / "custom_config.json").write_text(trainer.exec_properties["custom_config"])
    summary_path = tmp_path / "summary.json"
    summary_path.write_text(json.dumps(summary))
    context = forkserver(["tfx.components.trainer.executor", "modules.trainer"])

    def trainer_process(execution, epochs):
        return context.Process(
            target=run_trainer, args=(str(summary_path), str(tmp_path), execution, epochs, 60)
        )

    first = trainer_process(1, 4)
    first.start()
    deadline = time.monotonic() + 300
    while not has_checkpoint(tmp_path / "Trainer") and first.is_alive():
        assert time.monotonic() < deadline, "no epoch finished in time"
        time.sleep(0.05)
    first.kill()  # SIGKILL, as a crash, a closed laptop or an evicted pod
    first.join()
    [(fingerprint, done)] = _backup_epochs(tmp_path).items()
    assert 0 in done and 3 not in done
    assert not (tmp_path / "Trainer" / "model" / "1" / "Format-Serving" / "saved_model.pb").exists()

    # Other hyperparameters (here: 1 epoch) are another training: it starts at epoch 0 and
    # leaves the killed training's backup alone.
    other = trainer_process(2, 1)
    other.start()
    other.join(600)
    assert other.exitcode == 0, (tmp_path / "trainer.log").read_text()[-3000:]
    assert _history(tmp_path, 2)["resumed_from_epoch"] == 0
    assert list(_backup_epochs(tmp_path)) == [fingerprint]

    # The same training again, as a new execution: it continues after the last finished
    # epoch, and its history covers all four.
    resumed = trainer_process(3, 4)
    resumed.start()
    resumed.join(600)
    assert resumed.exitcode == 0, (tmp_path / "trainer.log").read_text()[-3000:]
    history = _history(tmp_path, 3)
    assert history["resumed_from_epoch"] == max(done) + 1
    assert history["epochs"] == 4 and None not in history["loss"]
    epochs = [
        r["epoch"]
        for r in _epoch_records(tmp_path / "Trainer" / "model_run" / "3" / "epochs.jsonl")
    ]
    assert epochs.count(0) == 1, f"restarted from epoch 0: {epochs}"
    assert sorted(set(epochs)) == [0, 1, 2, 3]
    assert (tmp_path / "Trainer" / "model" / "3" / "Format-Serving" / "saved_model.pb").exists()
    # A finished training removes its backup.
    assert _backup_epochs(tmp_path) == {}
    assert not (tmp_path / "Trainer" / "backup" / fingerprint).exists()


SIGNATURE_CHECK = textwrap.dedent("""
    import io, json, sys
    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft
    import tf_keras
    from PIL import Image

    model_dir, transform_dir = sys.argv[1:3]
    def encode(fmt, mode):
        rng = np.random.default_rng(len(fmt) + len(mode))
        pixels = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).convert(mode).save(buffer, fmt)
        return buffer.getvalue()
    images = [encode("JPEG", "RGB"), encode("PNG", "RGB"), encode("PNG", "L")]
    loaded = tf.saved_model.load(model_dir)
    by_images = loaded.signatures["serving_default"](images=tf.constant(images))
    examples = [tf.train.Example(features=tf.train.Features(feature={"image": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[image]))})).SerializeToString() for image in images]
    by_examples = loaded.signatures["serving_examples"](examples=tf.constant(examples))
    transformed = tft.TFTransformOutput(transform_dir).transform_raw_features(
        {"image": tf.constant([[image] for image in images])}, drop_unused_features=True)
    keras_model = tf_keras.models.load_model(model_dir)
    direct = keras_model(transformed["image"], training=False).numpy()
    try:
        loaded.signatures["serving_default"](images=tf.constant([b"not an image"]))
        corrupt = "accepted"
    except tf.errors.InvalidArgumentError as error:
        corrupt = error.message
    after = loaded.signatures["serving_default"](images=tf.constant(images[:1]))
    print(json.dumps({
        "compute_dtypes": sorted({layer.compute_dtype for layer in keras_model.layers}),
        "keys": sorted(by_images),
        "dtypes": {k: v.dtype.name for k, v in by_images.items()},
        "images": by_images["probabilities"].numpy().tolist(),
        "examples": by_examples["probabilities"].numpy().tolist(),
        "direct": direct.tolist(),
        "uncalibrated": by_examples["uncalibrated_probabilities"].numpy().tolist(),
        "temperature": json.load(open(f"{model_dir}/assets.extra/training.json"))[
            "calibration"]["temperature"],
        "class_name": [n.decode() for n in by_images["class_name"].numpy()],
        "class_id": by_images["class_id"].numpy().tolist(),
        "score": by_images["score"].numpy().tolist(),
        "corrupt": corrupt,
        "after_corrupt": after["probabilities"].numpy().tolist(),
    }))
""")


@pytest.fixture(scope="module")
def signature_results(first_run):
    summary, _ = first_run
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SIGNATURE_CHECK,
            summary["pushed_model_dir"],
            summary["lineage"]["transform_graph"],
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_serving_signature_outputs(signature_results):
    import numpy as np

    from contract.prediction import OUTPUTS

    # The prediction contract's fields, with the same names as on the wire.
    assert signature_results["keys"] == [
        "class_id",
        "class_name",
        "ood_score",
        "probabilities",
        "score",
        "unknown",
    ]
    assert signature_results["keys"] == sorted(field.name for field in OUTPUTS)
    assert signature_results["dtypes"]["probabilities"] == "float32"
    assert signature_results["dtypes"]["class_id"] == "int64"
    probabilities = np.array(signature_results["images"])
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert signature_results["class_id"] == probabilities.argmax(axis=1).tolist()
    assert signature_results["class_name"] == [
        ["bike", "ship"][i] for i in signature_results["class_id"]
    ]
    np.testing.assert_allclose(signature_results["score"], probabilities.max(axis=1))


def test_both_signatures_and_the_model_agree(signature_results):
    """The signatures answer the network's softmax with the logits over the temperature."""
    import numpy as np

    np.testing.assert_allclose(
        signature_results["images"], signature_results["examples"], atol=1e-6
    )
    direct = np.array(signature_results["direct"])
    np.testing.assert_allclose(signature_results["uncalibrated"], direct, atol=1e-5)
    scaled = np.exp(np.log(direct) / signature_results["temperature"])
    calibrated = scaled / scaled.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(signature_results["images"], calibrated, atol=1e-5)


def test_model_is_exported_in_float32_whatever_trained_it(first_run, signature_results):
    summary, _ = first_run
    history = json.loads((Path(summary["lineage"]["model"]) / HISTORY_FILE).read_text())
    assert history["precision_policy"] in {"float32", "mixed_bfloat16"}
    assert signature_results["compute_dtypes"] == ["float32"]


def test_corrupt_image_is_a_clear_error_not_a_crash(signature_results):
    assert "Unknown image file format" in signature_results["corrupt"]
    assert len(signature_results["after_corrupt"]) == 1


def test_transform_normalizes_with_train_statistics(first_run):
    """The graph's mean/std are exactly those of the train split's resized pixels."""
    import glob

    import numpy as np
    import tensorflow as tf
    import tensorflow_transform as tft

    from modules.transform import decode_and_resize

    summary, _ = first_run
    files = glob.glob(os.path.join(summary["lineage"]["examples"], "Split-train", "*"))
    images = [
        tf.train.Example.FromString(r.numpy()).features.feature["image"].bytes_list.value[0]
        for r in tf.data.TFRecordDataset(files)
    ]
    pixels = np.stack([decode_and_resize(image, 67).numpy() for image in images])
    mean, std = pixels.mean(axis=(0, 1, 2)), pixels.std(axis=(0, 1, 2))
    output = tft.TFTransformOutput(summary["lineage"]["transform_graph"])
    transformed = output.transform_raw_features(
        {"image": tf.constant([[images[0]]])}, drop_unused_features=True
    )["image"].numpy()[0]
    np.testing.assert_allclose(transformed, (pixels[0] - mean) / std, atol=2e-3)


def test_image_that_does_not_fit_fails_before_any_component(tmp_path):
    from conftest import run_cli

    config = tmp_path / "bad.yaml"
    config.write_text("training:\n  image_size: 50\n")
    result = run_cli("run", "--config", config, "--output-root", tmp_path / "out")
    assert result.returncode == 1
    assert "training.image_size:" in result.stderr and "too small" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "pipeline_root").exists()


def test_trainer_inputs_round_trip_and_refuse_unknown_keys():
    from modules.hyperparameters import Hyperparameters, SettingError
    from modules.trainer_inputs import TrainerInputs

    inputs = TrainerInputs(Hyperparameters(dropout=0.3), "img", ["a", "b"], 2)
    values = json.loads(json.dumps(inputs.to_custom_config()))
    assert TrainerInputs.from_custom_config(values) == inputs
    with pytest.raises(SettingError, match="unknown Trainer custom_config key.*materialized"):
        TrainerInputs.from_custom_config({**values, "materialized": True})
    values["hyperparameters"]["learnig_rate"] = 0.1
    with pytest.raises(SettingError, match="unknown hyperparameter.*learnig_rate"):
        TrainerInputs.from_custom_config(values)


def test_decoded_images_stay_in_memory_only_within_the_budget(tmp_path):
    """300 records at 67x67 need 300 * 67 * 67 * 3 * 4 bytes, about 15.4 MB, decoded."""
    import tensorflow as tf

    from modules.decoded_cache import count_records, plan_cache

    for name, count in (("a.tfrecord", 200), ("b.tfrecord", 100)):
        with tf.io.TFRecordWriter(str(tmp_path / name)) as writer:
            for index in range(count):
                writer.write(f"record {index}".encode())
    patterns = [str(tmp_path / "*.tfrecord")]
    assert count_records(patterns) == 300
    fits = plan_cache(patterns, 67, enabled=True, memory_mb=16)
    assert fits.in_memory and fits.note == "in memory: 300 decoded images, 15 MB"
    over = plan_cache(patterns, 67, enabled=True, memory_mb=15)
    assert not over.in_memory and "over trainer_memory_mb 15" in over.note
    assert not plan_cache(patterns, 67, enabled=False, memory_mb=10**6).in_memory

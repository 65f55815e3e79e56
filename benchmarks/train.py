"""Training throughput of the canonical AlexNet (227x227, 2 classes, batch 32), side by side:

(a) the Trainer's real input path (raw examples -> TFT layer -> cache -> augmentation ->
    batches) against in-memory random tensors: input-pipeline efficiency;
(b) against the seed notebook's approach: Pillow-loaded NumPy arrays passed to fit().

Also: the fraction of this CPU's fp32 matmul peak that training reaches, and the latency of
one image through the exported serving signature.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import contract  # noqa: E402,F401 (selects Keras 2 before TensorFlow loads)

BATCH = 32
STEPS = 30
PER_CLASS = 160


def matmul_gflops() -> float:
    import tensorflow as tf

    a = tf.random.normal([2048, 2048])
    b = tf.random.normal([2048, 2048])
    tf.matmul(a, b).numpy()
    runs = 20
    started = time.perf_counter()
    for _ in range(runs):
        tf.matmul(a, b).numpy()
    return 2 * 2048**3 * runs / (time.perf_counter() - started) / 1e9


def training_gflop_per_image(model) -> float:
    """Forward FLOPs from the layer shapes; a training step costs about three forwards."""
    import tf_keras as keras

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels = layer.output_shape
            flops += (
                2 * height * width * channels * layer.kernel_size[0] ** 2 * (layer.input_shape[-1])
            )
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input_shape[-1] * layer.units
    return 3 * flops / 1e9


def images_per_second(model, dataset) -> float:
    model.fit(dataset, epochs=1, steps_per_epoch=5, verbose=0)  # trace, fill caches
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=STEPS, verbose=0)
    return STEPS * BATCH / (time.perf_counter() - started)


def fresh_model():
    from modules.model import build_alexnet, compile_alexnet

    return compile_alexnet(build_alexnet(2), 1e-4)


def main() -> None:
    import numpy as np
    import tensorflow as tf
    from common import node_id, report
    from PIL import Image
    from tfx.components.trainer import fn_args_utils
    from tfx.types import artifact_utils, standard_artifacts

    from contract.prediction import PROBABILITIES
    from modules.export import export_model
    from modules.trainer import make_dataset
    from pipelines.config import build_config
    from pipelines.demo_data import write_demo_dataset
    from pipelines.local_runner import run_pipeline

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = work / "data"
    write_demo_dataset(data, per_class=PER_CLASS)
    config = build_config(
        "demo", data=str(data), output_root=str(work / "out"), training={"batch_size": BATCH}
    )
    summary = run_pipeline(config, to_component=node_id(config, "transform_graph"))
    lineage = summary.lineage

    def artifact(cls, uri):
        instance = cls()
        instance.uri = uri
        return instance

    examples = artifact(standard_artifacts.Examples, lineage["examples"])
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    fn_args = fn_args_utils.get_common_fn_args(
        {
            "examples": [examples],
            "transform_graph": [
                artifact(standard_artifacts.TransformGraph, lineage["transform_graph"])
            ],
            "schema": [artifact(standard_artifacts.Schema, lineage["schema"])],
        },
        {"train_args": '{"num_steps": 1}', "eval_args": '{"num_steps": 1}'},
    )
    import tensorflow_transform as tft

    transform_output = tft.TFTransformOutput(lineage["transform_graph"])
    real = make_dataset(
        fn_args.train_files,
        fn_args.data_accessor,
        transform_output,
        config.training,
        2,
        training=True,
        cache=True,
    )
    random_images = tf.random.normal([BATCH, 227, 227, 3])
    random_labels = tf.one_hot(tf.random.uniform([BATCH], 0, 2, tf.int32), 2)
    synthetic = tf.data.Dataset.from_tensors((random_images, random_labels)).repeat()

    # The seed notebook: every image loaded with Pillow into one NumPy array, then fit().
    files = sorted(data.rglob("*.jpg"))
    arrays = np.stack(
        [
            np.asarray(Image.open(f).convert("RGB").resize((227, 227)), dtype=np.float32) / 255.0
            for f in files
        ]
    )
    labels = np.eye(2, dtype=np.float32)[[0 if f.parent.name == "bike" else 1 for f in files]]

    rates = {}
    for name, dataset in (("real_input_pipeline", real), ("in_memory_random", synthetic)):
        rates[name] = images_per_second(fresh_model(), dataset)
    seed_model = fresh_model()
    seed_model.fit(arrays, labels, batch_size=BATCH, epochs=1, steps_per_epoch=5, verbose=0)
    epochs = max(1, round(STEPS * BATCH / len(arrays)))
    started = time.perf_counter()
    seed_model.fit(arrays, labels, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=True)
    rates["seed_numpy_fit"] = epochs * len(arrays) / (time.perf_counter() - started)

    peak = matmul_gflops()
    gflop = training_gflop_per_image(fresh_model())

    model = fresh_model()
    export_dir = str(work / "export")
    export_model(model, transform_output, config.image_feature, ["bike", "ship"], export_dir, {})
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    image = tf.constant([files[0].read_bytes()])
    for _ in range(3):
        serve(images=image)
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        serve(images=image)[PROBABILITIES.name].numpy()
        latencies.append(time.perf_counter() - started)

    figures = {
        "input_pipeline_efficiency": rates["real_input_pipeline"] / rates["in_memory_random"],
        "vs_seed_baseline": rates["real_input_pipeline"] / rates["seed_numpy_fit"],
        "images_per_second": rates["real_input_pipeline"],
        "matmul_peak_fraction": rates["real_input_pipeline"] * gflop / peak,
        "serve_one_image_seconds": statistics.median(latencies),
    }
    report(
        "train",
        figures,
        {
            "images_per_second": rates,
            "matmul_gflops": peak,
            "training_gflop_per_image": gflop,
            "batch_size": BATCH,
            "timed_steps": STEPS,
            "serve_latencies_seconds": latencies,
        },
    )


if __name__ == "__main__":
    main()

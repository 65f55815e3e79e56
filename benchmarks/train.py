"""Training throughput of the canonical AlexNet (227x227, 2 classes, batch 32).

Variants run side by side in one process, interleaved round by round (A B C A B C ...), so
that a shared machine's drift hits them alike; each figure is the median over the rounds:

- trainer: the Trainer's real input path (raw examples -> TFT layer -> cache -> random crop
  and flip -> batches) and its precision plan for this CPU (mixed_bfloat16 where the CPU has
  bfloat16 arithmetic, float32 otherwise);
- float32: the same, in float32;
- before: the float32 variant with tf_keras's per-variable Adam, as the Trainer trained
  before it chose a precision and took the fused Adam kernel;
- synthetic: the trainer variant's model on one batch of tensors repeated
  (`from_tensors(...).repeat()`), which costs nothing per step: the ceiling of the input path;
- seed_numpy_fit: the seed notebook's approach, Pillow-loaded NumPy arrays passed to fit().

The figures come from CPU time per image, which does not change when a shared machine
throttles this one (its wall-clock rounds come in plateaus, at 25 and 50 images/s here);
images/s are then every core's time divided by the CPU time per image. The wall-clock
medians are kept in the details. The fp32 peak is the better of TensorFlow's and NumPy's
4096x4096 float32 matmul, measured in the same run. A breakdown of one float32 step, in CPU
milliseconds per image, comes from timed ablations: LRN (the model with and without it,
and with LRN built from XLA-fused primitives instead of TF's op, checked equal to it first),
the dense layers alone, Adam's update alone (fused and per variable), and the input path
alone; the convolutions are the rest.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import contract  # noqa: E402,F401,I001 (selects Keras 2 before TensorFlow loads)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

BATCH = 32
STEPS = 8
ROUNDS = 5
PER_CLASS = 160
GEMM = 4096


def gemm_gflops() -> dict[str, float]:
    """float32 matmul GFLOP/s of TensorFlow and of NumPy (OpenBLAS), best of three each."""

    found = {}
    a, b = (
        np.random.rand(GEMM, GEMM).astype(np.float32),
        np.random.rand(GEMM, GEMM).astype(np.float32),
    )
    ta, tb = tf.constant(a), tf.constant(b)
    for name, multiply in (
        ("tensorflow", lambda: tf.matmul(ta, tb).numpy()),
        ("numpy", lambda: a @ b),
    ):
        multiply()
        seconds = []
        for _ in range(3):
            started = time.perf_counter()
            multiply()
            seconds.append(time.perf_counter() - started)
        found[name] = 2 * GEMM**3 / min(seconds) / 1e9
    return found


def training_gflop_per_image(model) -> float:
    """Forward FLOPs from the layer shapes; a training step costs about three forwards."""
    import tf_keras as keras

    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, channels = layer.output_shape
            flops += (
                2 * height * width * channels * layer.kernel_size[0] ** 2 * layer.input_shape[-1]
            )
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.input_shape[-1] * layer.units
    return 3 * flops / 1e9


class Timed:
    """Fits a model for STEPS steps at a time; keeps images/s and CPU ms per image."""

    def __init__(self, model, dataset) -> None:
        self.model, self.dataset = model, dataset
        self.model.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0)  # trace, fill caches
        self.rates, self.cpu_ms = [], []

    def round(self) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=STEPS, verbose=0)
        images = STEPS * BATCH
        self.rates.append(images / (time.perf_counter() - started))
        self.cpu_ms.append((time.process_time() - cpu) / images * 1000)

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def ms(self) -> float:
        return statistics.median(self.cpu_ms)


def cpu_ms_per_image(work, images: int) -> float:
    work()  # warm up
    started = time.process_time()
    work()
    return (time.process_time() - started) / images * 1000


def apply_once(optimizer, pairs):
    """One optimizer update of fixed gradients, as a graph."""

    @tf.function
    def update() -> None:
        optimizer.apply_gradients(pairs)

    return update


@tf.function(jit_compile=True)
def lrn_from_primitives(inputs, depth_radius, bias, alpha, beta):
    """LRN as square, a channel-window sum and a power, for XLA to fuse."""
    squares = tf.square(inputs)
    channels = inputs.shape[-1]
    padded = tf.pad(squares, [[0, 0]] * (inputs.shape.rank - 1) + [[depth_radius, depth_radius]])
    window = tf.add_n([padded[..., i : i + channels] for i in range(2 * depth_radius + 1)])
    return inputs * tf.pow(bias + alpha * window, -beta)


def check_primitive_lrn() -> float:
    """The largest difference from TF's op, values and input gradients, on conv1's shape."""
    from modules.model import LRN_ALPHA, LRN_BETA, LRN_BIAS, LRN_DEPTH_RADIUS

    rng = np.random.default_rng(3)
    inputs = tf.constant(np.maximum(rng.normal(0, 40, (2, 27, 27, 96)), 0).astype("float32"))
    upstream = tf.constant(rng.normal(size=inputs.shape).astype("float32"))
    found = []
    for normalize in (tf.nn.local_response_normalization, lrn_from_primitives):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = normalize(inputs, LRN_DEPTH_RADIUS, LRN_BIAS, LRN_ALPHA, LRN_BETA)
        found.append((outputs, tape.gradient(outputs, inputs, upstream)))
    return max(
        float(tf.reduce_max(tf.abs(ours - theirs) / (1 + tf.abs(theirs))))
        for ours, theirs in zip(found[1], found[0], strict=True)
    )


def main() -> None:
    import tensorflow_transform as tft
    import tf_keras as keras
    from common import node_id, report
    from PIL import Image
    from tfx.components.trainer import fn_args_utils
    from tfx.types import artifact_utils, standard_artifacts

    from contract.prediction import PROBABILITIES
    from modules.dataset import make_dataset
    from modules.device_plan import cpu_has_bfloat16, plan_devices
    from modules.export import export_model
    from modules.model import LocalResponseNormalization, build_alexnet, compile_alexnet
    from pipelines.config import build_config
    from pipelines.demo_data import write_demo_dataset
    from pipelines.local_runner import run_pipeline

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = work / "data"
    write_demo_dataset(data, per_class=PER_CLASS)
    config = build_config(
        "demo", data=str(data), output_root=str(work / "out"), training={"batch_size": BATCH}
    )
    lineage = run_pipeline(config, to_component=node_id(config, "transform_graph")).lineage

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
        },
        {"train_args": '{"num_steps": 1}', "eval_args": '{"num_steps": 1}'},
    )
    transform_output = tft.TFTransformOutput(lineage["transform_graph"])

    def real_input():
        return make_dataset(
            fn_args.train_files,
            fn_args.data_accessor,
            transform_output,
            config.training,
            2,
            training=True,
            cache=True,
        )

    plan = plan_devices([], cpu_has_bfloat16())

    class PrimitiveLrn(LocalResponseNormalization):
        """LRN from primitives under XLA, the alternative measured against TF's op."""

        def call(self, inputs):
            return lrn_from_primitives(inputs, self.depth_radius, self.bias, self.alpha, self.beta)

    def with_primitive_lrn(layer):
        kind = PrimitiveLrn if isinstance(layer, LocalResponseNormalization) else type(layer)
        return kind.from_config(layer.get_config())

    def model(policy: str, lrn: str | None = "tf_op", fused_adam: bool = True):
        keras.mixed_precision.set_global_policy(policy)
        built = build_alexnet(2, use_lrn=lrn is not None)
        if lrn == "primitives":
            built = keras.models.clone_model(built, clone_function=with_primitive_lrn)
        compile_alexnet(built, 1e-4)
        if not fused_adam:
            built.compile(
                optimizer=keras.optimizers.Adam(1e-4),
                loss=built.loss,
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            )
        keras.mixed_precision.set_global_policy("float32")
        return built

    images = tf.random.normal([BATCH, 227, 227, 3])
    labels = tf.one_hot(tf.random.uniform([BATCH], 0, 2, tf.int32), 2)
    synthetic = tf.data.Dataset.from_tensors((images, labels)).repeat()
    variants = {
        "trainer": Timed(model(plan.policy), real_input()),
        "float32": Timed(model("float32"), real_input()),
        "before": Timed(model("float32", fused_adam=False), real_input()),
        "synthetic": Timed(model(plan.policy), synthetic),
        "float32_synthetic": Timed(model("float32"), synthetic),
        "float32_synthetic_no_lrn": Timed(model("float32", lrn=None), synthetic),
        "float32_synthetic_primitive_lrn": Timed(model("float32", lrn="primitives"), synthetic),
    }
    peaks = []
    for _ in range(ROUNDS):
        for timed in variants.values():
            timed.round()
        peaks.append(gemm_gflops())
    peak = max(max(found.values()) for found in peaks)

    # The seed notebook: every image loaded with Pillow into one NumPy array, then fit().
    files = sorted(data.rglob("*.jpg"))
    arrays = np.stack(
        [
            np.asarray(Image.open(f).convert("RGB").resize((227, 227)), dtype=np.float32) / 255.0
            for f in files
        ]
    )
    targets = np.eye(2, dtype=np.float32)[[0 if f.parent.name == "bike" else 1 for f in files]]
    seed_model = model("float32")
    seed_model.fit(arrays, targets, batch_size=BATCH, epochs=1, steps_per_epoch=5, verbose=0)
    epochs = max(1, round(ROUNDS * STEPS * BATCH / len(arrays)))
    started, cpu = time.perf_counter(), time.process_time()
    seed_model.fit(arrays, targets, batch_size=BATCH, epochs=epochs, verbose=0, shuffle=True)
    seed_rate = epochs * len(arrays) / (time.perf_counter() - started)
    seed_ms = (time.process_time() - cpu) / (epochs * len(arrays)) * 1000

    # Breakdown of a float32 step, in CPU ms per image.
    full = variants["float32_synthetic"].ms
    lrn = full - variants["float32_synthetic_no_lrn"].ms
    head = keras.Sequential(
        [keras.Input((6, 6, 256)), *build_alexnet(2).layers[-7:]], name="dense_layers"
    )
    head_inputs = tf.random.normal([BATCH, 6, 6, 256])

    @tf.function
    def dense_forward_backward():  # no update: Adam is timed on its own below
        with tf.GradientTape() as tape:
            outputs = head(head_inputs, training=True)
            loss = keras.losses.categorical_crossentropy(labels, outputs)
        return tape.gradient(loss, head.trainable_variables)

    dense = cpu_ms_per_image(
        lambda: [dense_forward_backward() for _ in range(STEPS)], STEPS * BATCH
    )
    optimizer_ms = {}
    for fused in (True, False):
        optimizer_model = model("float32", fused_adam=fused)
        weights = optimizer_model.trainable_variables
        pairs = list(zip([tf.random.normal(v.shape) * 1e-3 for v in weights], weights, strict=True))
        update = apply_once(optimizer_model.optimizer, pairs)
        optimizer_ms[fused] = cpu_ms_per_image(
            lambda update=update: [update() for _ in range(STEPS)], STEPS * BATCH
        )
    input_ms = cpu_ms_per_image(lambda: [None for _ in real_input().take(STEPS)], STEPS * BATCH)
    breakdown = {
        "convolutions_and_rest": full - lrn - dense - optimizer_ms[True],
        "lrn_forward_backward": lrn,
        "lrn_forward_backward_primitives_xla": variants["float32_synthetic_primitive_lrn"].ms
        - variants["float32_synthetic_no_lrn"].ms,
        "dense_layers": dense,
        "optimizer_adam_fused": optimizer_ms[True],
        "whole_step": full,
        "optimizer_adam_per_variable": optimizer_ms[False],
        "input_path_alone": input_ms,
    }

    gflop = training_gflop_per_image(model("float32"))
    export_dir = str(work / "export")
    export_model(
        model("float32"), transform_output, config.image_feature, ["bike", "ship"], export_dir, {}
    )
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    image = tf.constant([files[0].read_bytes()])
    for _ in range(3):
        serve(images=image)
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        serve(images=image)[PROBABILITIES.name].numpy()
        latencies.append(time.perf_counter() - started)

    rates = {name: timed.rate for name, timed in variants.items()}
    ms = {name: timed.ms for name, timed in variants.items()}
    cores = len(os.sched_getaffinity(0))

    def busy_rate(cpu_ms: float) -> float:
        """Images/s with every core working, from the CPU time per image."""
        return cores * 1000 / cpu_ms

    report(
        "train",
        {
            "speedup_vs_before": ms["before"] / ms["trainer"],
            # The ceiling costs nothing per step, so a ratio above 1 is noise between rounds.
            "input_pipeline_efficiency": min(1.0, ms["synthetic"] / ms["trainer"]),
            "images_per_second": busy_rate(ms["trainer"]),
            # Like for like: float32 training against the float32 GEMM ceiling.
            "matmul_peak_fraction": busy_rate(ms["float32"]) * gflop / peak,
            # The Trainer as shipped; in bfloat16 it can pass the float32 ceiling.
            "matmul_peak_fraction_trainer": busy_rate(ms["trainer"]) * gflop / peak,
            "vs_seed_baseline": seed_ms / ms["trainer"],
            "serve_one_image_seconds": statistics.median(latencies),
        },
        {
            "precision_policy": plan.policy,
            "primitive_lrn_max_difference_from_tf_op": check_primitive_lrn(),
            "input_pipeline_efficiency_unclamped": ms["synthetic"] / ms["trainer"],
            "images_per_second_median": rates,
            "images_per_second_rounds": {name: t.rates for name, t in variants.items()},
            "cpu_ms_per_image_median": {name: t.ms for name, t in variants.items()},
            "seed_numpy_fit_images_per_second": seed_rate,
            "seed_numpy_fit_cpu_ms_per_image": seed_ms,
            "fp32_gemm_gflops_rounds": peaks,
            "fp32_peak_gflops": peak,
            "training_gflop_per_image": gflop,
            "float32_step_breakdown_cpu_ms_per_image": breakdown,
            "batch_size": BATCH,
            "steps_per_round": STEPS,
            "rounds": ROUNDS,
            "serve_latencies_seconds": latencies,
        },
    )


if __name__ == "__main__":
    main()

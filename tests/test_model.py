"""The AlexNet builder: canonical shapes and parameters, LRN constants, argument checks."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from modules.device_plan import cpu_has_bfloat16
from modules.layer_table import feature_map_sizes, min_image_size
from modules.model import (
    LocalResponseNormalization,
    build_alexnet,
    compile_alexnet,
)

CANONICAL_SHAPES = {
    "conv1": (55, 55, 96),
    "conv1_pool": (27, 27, 96),
    "conv2": (27, 27, 256),
    "conv2_pool": (13, 13, 256),
    "conv3": (13, 13, 384),
    "conv4": (13, 13, 384),
    "conv5": (13, 13, 256),
    "conv5_pool": (6, 6, 256),
}


@pytest.fixture(scope="module")
def canonical():
    return build_alexnet(num_classes=1000)


def test_canonical_parameter_count(canonical):
    assert canonical.count_params() == 62_378_344


def test_canonical_conv_and_pool_shapes(canonical):
    shapes = {name: canonical.get_layer(name).output_shape[1:] for name in CANONICAL_SHAPES}
    assert shapes == CANONICAL_SHAPES


def test_layer_order_has_relu_lrn_pool_dropout(canonical):
    names = [layer.name for layer in canonical.layers]
    assert names == [
        "image",
        "conv1",
        "conv1_lrn",
        "conv1_pool",
        "conv2",
        "conv2_lrn",
        "conv2_pool",
        "conv3",
        "conv4",
        "conv5",
        "conv5_pool",
        "flatten",
        "fc6",
        "fc6_dropout",
        "fc7",
        "fc7_dropout",
        "fc8",
        "probabilities",
    ]
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"):
        assert canonical.get_layer(name).activation is keras.activations.relu, name
    assert canonical.get_layer("conv1").strides == (4, 4)
    assert canonical.get_layer("fc6_dropout").rate == 0.5
    assert canonical.get_layer("fc7").units == 4096


def test_feature_map_chain_matches_keras(canonical):
    expected = [CANONICAL_SHAPES[name][0] for name in CANONICAL_SHAPES]
    assert feature_map_sizes(227) == expected


def test_forward_pass_two_classes():
    model = build_alexnet(num_classes=2)
    images = np.random.default_rng(0).normal(size=(2, 227, 227, 3)).astype("float32")
    probabilities = model(images, training=False).numpy()
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(("optimizer", "kind"), [("adam", "Adam"), ("sgd", "SGD")])
def test_tiny_model_trains_one_step(optimizer, kind):
    model = build_alexnet(3, image_size=67, width_multiplier=0.125)
    model = compile_alexnet(model, 1e-3, optimizer)
    images = np.random.default_rng(1).normal(size=(4, 67, 67, 3)).astype("float32")
    labels = keras.utils.to_categorical([0, 1, 2, 0], 3)
    history = model.fit(images, labels, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.get_layer("conv1").filters == 12
    assert type(model.optimizer).__name__ == kind
    if optimizer == "sgd":  # the paper's momentum
        assert model.optimizer.get_config()["momentum"] == pytest.approx(0.9)


def test_lrn_matches_paper_formula():
    """b_i = a_i / (2 + 1e-4 * sum of a_j^2 over the 5 channels around i) ** 0.75."""
    a = np.random.default_rng(2).uniform(0, 30, size=(1, 2, 2, 9)).astype("float32")
    b = LocalResponseNormalization()(a).numpy()
    expected = np.empty_like(a)
    for i in range(a.shape[-1]):
        window = a[..., max(0, i - 2) : i + 3]
        expected[..., i] = a[..., i] / (2.0 + 1e-4 * (window**2).sum(-1)) ** 0.75
    np.testing.assert_allclose(b, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "policy",
    [
        "mixed_float16",
        pytest.param(
            "mixed_bfloat16",
            # Elsewhere oneDNN may lack bfloat16 kernels (ONEDNN_MAX_CPU_ISA=AVX2 aborts).
            marks=pytest.mark.skipif(
                not cpu_has_bfloat16(),
                reason="the Trainer uses mixed_bfloat16 only on CPUs with bfloat16 arithmetic",
            ),
        ),
    ],
)
def test_softmax_and_lrn_stay_float32_under_mixed_precision(policy):
    """TF's LRN has float32 kernels only (on GPU; and none for bfloat16 on CPU), so LRN and
    the softmax compute in float32 while the convolutions and dense layers do not."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_alexnet(2, image_size=67, width_multiplier=0.125)
        assert model.get_layer("fc8").compute_dtype == policy.removeprefix("mixed_")
        assert model.get_layer("conv1_lrn").compute_dtype == "float32"
        assert model.get_layer("probabilities").compute_dtype == "float32"
        assert model(tf.zeros((1, 67, 67, 3))).dtype == tf.float32
        if policy == "mixed_bfloat16":  # runs on this CPU: one training step
            compile_alexnet(model, 1e-3)
            model.train_on_batch(tf.zeros((2, 67, 67, 3)), tf.one_hot([0, 1], 2))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_smallest_image_size_is_67():
    assert min_image_size() == 67
    build_alexnet(2, image_size=67, width_multiplier=0.125)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_classes=1), "num_classes must be at least 2"),
        (dict(num_classes=2, image_size=66), "image_size 66 is too small"),
        (dict(num_classes=2, width_multiplier=0), "width_multiplier"),
        (dict(num_classes=2, dropout=1.0), "dropout"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_alexnet(**kwargs)


def test_the_chance_line_metric_counts_the_largest_class():
    """TFMA's combiner contract, run on hand-made examples: accuracy minus the share of the
    largest true class, and that share."""
    import tensorflow_model_analysis as tfma

    from modules.chance_line import ACCURACY_OVER_CHANCE, CHANCE_ACCURACY, AccuracyOverChance

    (computation,) = AccuracyOverChance().computations()
    combiner = computation.combiner

    def fed(pairs):
        counts = combiner.create_accumulator()
        for label, probabilities in pairs:
            element = tfma.metrics.StandardMetricInputs(
                labels=np.array([label]),
                predictions=np.array(probabilities),
                example_weights=np.array([1.0]),
            )
            counts = combiner.add_input(counts, element)
        return counts

    always_zero = [(0, [0.9, 0.1]), (0, [0.8, 0.2]), (0, [0.6, 0.4]), (1, [0.7, 0.3])]
    halves = [fed(always_zero[:2]), fed(always_zero[2:])]
    found = {
        key.name: value
        for key, value in combiner.extract_output(combiner.merge_accumulators(halves)).items()
    }
    assert found == {ACCURACY_OVER_CHANCE: 0.0, CHANCE_ACCURACY: 0.75}  # a tie, exactly
    right = [(0, [0.9, 0.1]), (0, [0.8, 0.2]), (0, [0.6, 0.4]), (1, [0.3, 0.7])]
    found = {key.name: value for key, value in combiner.extract_output(fed(right)).items()}
    assert found == {ACCURACY_OVER_CHANCE: 0.25, CHANCE_ACCURACY: 0.75}

"""The classic AlexNet (Krizhevsky, Sutskever and Hinton, 2012) in tf_keras.

Single-tower variant: the paper split conv2, conv4, conv5 and the FC layers over
two GPUs; one modern device holds the whole network, so no grouped convolutions.

Layer stack (canonical sizes for a 227x227x3 input):

    conv1 96@11x11/4 -> ReLU -> LRN -> maxpool 3/2      55x55x96 -> 27x27x96
    conv2 256@5x5    -> ReLU -> LRN -> maxpool 3/2      27x27x256 -> 13x13x256
    conv3 384@3x3    -> ReLU                            13x13x384
    conv4 384@3x3    -> ReLU                            13x13x384
    conv5 256@3x3    -> ReLU -> maxpool 3/2             13x13x256 -> 6x6x256
    fc6 4096 -> ReLU -> dropout 0.5
    fc7 4096 -> ReLU -> dropout 0.5
    fc8 N    -> softmax (float32, also under mixed precision)

Local Response Normalization, paper vs TensorFlow:
  paper:  b_i = a_i / (k + alpha * sum_{j=i-n/2}^{i+n/2} a_j^2) ** beta,
          with k=2, n=5, alpha=1e-4, beta=0.75.
  tf.nn.local_response_normalization:
          b_i = a_i / (bias + alpha * sum_{j=i-r}^{i+r} a_j^2) ** beta.
  So depth_radius r = n // 2 = 2 (a window of 2r+1 = 5 channels), bias = k = 2,
  and alpha is the paper's alpha unchanged: the paper multiplies the plain sum,
  not the mean (Caffe's LRN uses alpha/n; TF and the paper do not).
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras as keras

from contract.data import IMAGE_KEY
from modules.hyperparameters import Hyperparameters
from modules.layer_table import (
    CANONICAL_IMAGE_SIZE,
    CONV_LAYERS,
    FC_UNITS,
    POOL_SIZE,
    POOL_STRIDE,
    scaled,
    validate_arguments,
)

# The first convolution (its mean response per channel is the unknown-image detector's input)
# and the logits (calibration's).
FEATURES_LAYER = "conv1"
LOGITS_LAYER = "fc8"

LRN_DEPTH_RADIUS = 2
LRN_BIAS = 2.0
LRN_ALPHA = 1e-4
LRN_BETA = 0.75


@keras.utils.register_keras_serializable(package="alexnet")
class LocalResponseNormalization(keras.layers.Layer):
    """Cross-channel LRN with the AlexNet paper's constants (see module docstring)."""

    def __init__(
        self,
        depth_radius: int = LRN_DEPTH_RADIUS,
        bias: float = LRN_BIAS,
        alpha: float = LRN_ALPHA,
        beta: float = LRN_BETA,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self.depth_radius = depth_radius
        self.bias = bias
        self.alpha = alpha
        self.beta = beta

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        # TF's op: built from primitives (even XLA-fused) it trained slower (BENCHMARKS.md).
        return tf.nn.local_response_normalization(
            inputs, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha, beta=self.beta
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "depth_radius": self.depth_radius,
            "bias": self.bias,
            "alpha": self.alpha,
            "beta": self.beta,
        }


def build_alexnet(
    num_classes: int,
    image_size: int = CANONICAL_IMAGE_SIZE,
    width_multiplier: float = 1.0,
    dropout: float = 0.5,
    use_lrn: bool = True,
) -> keras.Model:
    """Returns an uncompiled AlexNet taking a normalized float image batch under `image`."""
    validate_arguments(num_classes, image_size, width_multiplier, dropout)
    inputs = keras.Input(shape=(image_size, image_size, 3), name=IMAGE_KEY)
    x = inputs
    for spec in CONV_LAYERS:
        x = keras.layers.Conv2D(
            scaled(spec.filters, width_multiplier),
            spec.kernel,
            strides=spec.stride,
            padding=spec.padding,
            activation="relu",
            name=spec.name,
        )(x)
        if spec.lrn and use_lrn:
            # float32 under mixed precision too: TF's LRN kernels are float32 on GPU and
            # have no bfloat16 one on CPU.
            x = LocalResponseNormalization(name=f"{spec.name}_lrn", dtype="float32")(x)
        if spec.pool:
            x = keras.layers.MaxPooling2D(POOL_SIZE, POOL_STRIDE, name=f"{spec.name}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(FC_UNITS, start=6):
        x = keras.layers.Dense(
            scaled(units, width_multiplier), activation="relu", name=f"fc{index}"
        )(x)
        x = keras.layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    logits = keras.layers.Dense(num_classes, name=LOGITS_LAYER)(x)
    # float32 softmax keeps probabilities exact when the policy is mixed_float16.
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="alexnet")


def features_and_logits(model: keras.Model) -> keras.Model:
    """The same network answering [conv1's mean response per channel, fc8 logits] instead of
    probabilities."""
    channel_means = keras.layers.GlobalAveragePooling2D(name=f"{FEATURES_LAYER}_means")(
        model.get_layer(FEATURES_LAYER).output
    )
    return keras.Model(model.inputs, [channel_means, model.get_layer(LOGITS_LAYER).output])


SGD_MOMENTUM = 0.9  # the paper's


def compile_alexnet(
    model: keras.Model, learning_rate: float, optimizer: str = "adam"
) -> keras.Model:
    """Adam (the seed's recipe) or the paper's SGD with momentum; categorical cross-entropy
    on one-hot labels; accuracy."""
    # The legacy optimizers have the same update rules and defaults as keras.optimizers', in
    # one fused kernel (ResourceApplyAdam) instead of a few ops per variable: 2.1 against
    # 7.0 CPU ms per image on AlexNet's 58M weights, out of a 36 ms float32 step
    # (BENCHMARKS.md).
    optimizers = {
        "adam": lambda: keras.optimizers.legacy.Adam(learning_rate=learning_rate),
        "sgd": lambda: keras.optimizers.legacy.SGD(
            learning_rate=learning_rate, momentum=SGD_MOMENTUM
        ),
    }
    model.compile(
        optimizer=optimizers[optimizer](),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model


def make_model(
    hyperparameters: Hyperparameters, num_classes: int, compiled: bool = True
) -> keras.Model:
    """AlexNet as the hyperparameters shape it; the one place that spells them out for the
    Trainer, the Tuner and the export."""
    hp = hyperparameters
    model = build_alexnet(num_classes, hp.image_size, hp.width_multiplier, hp.dropout)
    return compile_alexnet(model, hp.learning_rate, hp.optimizer) if compiled else model

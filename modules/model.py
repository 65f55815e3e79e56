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

import dataclasses

import tensorflow as tf
import tf_keras as keras

from contract.data import IMAGE_KEY

CANONICAL_IMAGE_SIZE = 227

LRN_DEPTH_RADIUS = 2
LRN_BIAS = 2.0
LRN_ALPHA = 1e-4
LRN_BETA = 0.75


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    name: str
    filters: int
    kernel: int
    stride: int
    padding: str
    lrn: bool
    pool: bool


# The canonical widths; width_multiplier scales filters and FC units.
CONV_LAYERS = (
    ConvSpec("conv1", 96, 11, 4, "valid", lrn=True, pool=True),
    ConvSpec("conv2", 256, 5, 1, "same", lrn=True, pool=True),
    ConvSpec("conv3", 384, 3, 1, "same", lrn=False, pool=False),
    ConvSpec("conv4", 384, 3, 1, "same", lrn=False, pool=False),
    ConvSpec("conv5", 256, 3, 1, "same", lrn=False, pool=True),
)
FC_UNITS = (4096, 4096)
POOL_SIZE = 3
POOL_STRIDE = 2


def _valid_out(size: int, window: int, stride: int) -> int:
    return (size - window) // stride + 1


def feature_map_sizes(image_size: int) -> list[int]:
    """Spatial size after each conv and pool stage, in layer order."""
    sizes = []
    size = image_size
    for spec in CONV_LAYERS:
        size = _valid_out(size, spec.kernel, spec.stride) if spec.padding == "valid" else size
        sizes.append(size)
        if spec.pool:
            size = _valid_out(size, POOL_SIZE, POOL_STRIDE)
            sizes.append(size)
    return sizes


def min_image_size() -> int:
    """Smallest input whose conv/pool chain still leaves a 1x1 feature map."""
    size = 1
    while min(feature_map_sizes(size)) < 1:
        size += 1
    return size


def validate_arguments(
    num_classes: int, image_size: int, width_multiplier: float, dropout: float
) -> None:
    """Raises ValueError naming the bad argument, before any TensorFlow work."""
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    smallest = min_image_size()
    if image_size < smallest:
        raise ValueError(
            f"image_size {image_size} is too small for AlexNet's stride-4 conv1 and three "
            f"3x3/2 max pools: the smallest input that leaves a feature map is "
            f"{smallest}x{smallest} (canonical: {CANONICAL_IMAGE_SIZE})."
        )
    if not 0 < width_multiplier <= 4:
        raise ValueError(f"width_multiplier must be in (0, 4], got {width_multiplier}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")


def scaled(units: int, width_multiplier: float) -> int:
    return max(1, round(units * width_multiplier))


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
            x = LocalResponseNormalization(name=f"{spec.name}_lrn")(x)
        if spec.pool:
            x = keras.layers.MaxPooling2D(POOL_SIZE, POOL_STRIDE, name=f"{spec.name}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for index, units in enumerate(FC_UNITS, start=6):
        x = keras.layers.Dense(
            scaled(units, width_multiplier), activation="relu", name=f"fc{index}"
        )(x)
        x = keras.layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    logits = keras.layers.Dense(num_classes, name="fc8")(x)
    # float32 softmax keeps probabilities exact when the policy is mixed_float16.
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="alexnet")


def compile_alexnet(model: keras.Model, learning_rate: float) -> keras.Model:
    """Adam, categorical cross-entropy on one-hot labels, accuracy: the seed's recipe."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model

"""TFX user modules (Transform, Trainer) and the AlexNet model."""

import contract  # noqa: F401 (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

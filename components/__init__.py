"""Custom TFX components."""

import contract  # noqa: F401 (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

"""Serves pushed AlexNet models with KServe's Python model server."""

import contract  # noqa: F401 (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

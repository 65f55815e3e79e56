"""The pipeline definition, its runners, the run summary and the command line."""

import contract  # noqa: F401 (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

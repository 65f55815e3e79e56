import os

# TFT 1.21 and TFMA 0.52 need Keras 2; must be set before tf.keras is first touched.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

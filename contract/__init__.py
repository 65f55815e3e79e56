"""Names every layer shares: feature keys, data layout, splits and the prediction contract.

Nothing here imports a third-party package, so the light `predict` client can use it, and
every other package of the project imports it first (see below).
"""

import os

# TFT 1.21 and TFMA 0.52 need Keras 2 (tf_keras). TensorFlow reads this variable when it is
# imported, and again when tf.keras is first touched; each of our packages imports
# `contract` in its __init__, so it is set before either happens.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

"""What a pushed version holds next to its SavedModel, for clients and for later runs.

TF Serving and KServe load only the SavedModel; assets.extra/ is where TF Serving expects
extra files (it replays warm-up records from there) and otherwise ignores them.
"""

# The class names in label order, one per line.
CLASS_NAMES_FILE = "assets.extra/labels.txt"
# What the Trainer trained on and with: {"hyperparameters", "class_names", "spans"}.
TRAINING_RECORD_FILE = "assets.extra/training.json"
# The statistics (TFDV DatasetFeatureStatisticsList) of the data the model was trained on,
# which the next run's drift check compares new data with.
TRAINING_STATISTICS_FILE = "assets.extra/training_statistics.pb"
# TF Serving's warm-up records (PredictionLog), which TF Serving and our server replay on
# load (https://www.tensorflow.org/tfx/serving/saved_model_warmup).
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
# When and by which run the version was pushed, and its eval accuracy:
# {"pushed_at", "run_id", "eval_accuracy"}.
PUSH_RECORD_FILE = "assets.extra/push.json"

# Beside the snapshot PushedModelResolver takes of the served version (its `model`
# artifact, next to Format-Serving/): {"version": N, "source": "<serving dir>/<name>/<N>"}.
SERVED_RECORD_FILE = "served.json"

# In the Trainer's Model artifact, beside Format-Serving/: the training record with each
# epoch's metrics, the device plan and the warm start.
HISTORY_FILE = "training_history.json"

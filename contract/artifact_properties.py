"""Artifact properties that one component sets and others (and the run summary) read."""

# On the Evaluator's blessing, the serving check's blessing and the Pusher's record: the
# candidate is this served version itself (the Trainer reused it: same data, config and
# code), so the component did no work. Absent otherwise.
UNCHANGED_VERSION = "unchanged_version"

# On the Evaluator's blessing and in a pushed version's push record: a digest of the eval
# config (thresholds, slices) that judged it. A served model is judged again under another.
EVAL_CONFIG_DIGEST = "eval_config_sha256"

# On ImageFolderExampleGen's Examples: how many accepted files were byte-identical copies of
# another (they share the copy's split).
DUPLICATE_COUNT = "duplicate_count"

# On our ExampleGens' Examples: the spans they hold (JSON list), the span whose images form
# the eval split, the class names in label order (JSON list), the images per split (JSON
# object), and how many files were refused and where the list of them is.
SPANS = "spans"
EVAL_SPAN = "eval_span"
# How many of the train split's examples older spans had set aside for eval: evaluation is
# on the newest span, so they are trained on.
OLDER_EVAL_IN_TRAIN = "older_eval_in_train"
CLASS_NAMES = "class_names"
SPLIT_COUNTS = "split_counts"
REJECTED_COUNT = "rejected_count"
REJECTS_PATH = "rejects_path"

# On PushedModelResolver's Model: the served version it snapshotted (0: nothing is served)
# and where it came from; on its statistics: 1 if the served version kept them.
BASELINE_VERSION = "baseline_version"
BASELINE_SOURCE = "baseline_source"
AVAILABLE = "available"

# On DriftCheck's anomalies: 1 if there were served statistics to compare with.
COMPARED_WITH_SERVED = "compared_with_served"

# TFX's own keys. On InfraBlessing (tfx/components/infra_validator, model_utils
# .is_infra_validated reads "blessed"; "has_model" makes the Pusher push stamped_model/),
# on ModelBlessing ("blessed") and on PushedModel (tfx/components/pusher/executor.py).
BLESSED = "blessed"
HAS_MODEL = "has_model"
PUSHED = "pushed"
PUSHED_DESTINATION = "pushed_destination"
PUSHED_VERSION = "pushed_version"

# On our Pusher's PushedModel when the candidate was a copy of a served version.
DUPLICATE_OF_VERSION = "duplicate_of_version"

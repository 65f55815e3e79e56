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

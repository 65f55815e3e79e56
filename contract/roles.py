"""The artifact roles of a run: channel fields of the pipeline's Wiring (pipelines/wiring.py)
by which the run summary, the report and the Kubeflow compiler find each artifact.
tests/test_layers.py checks that each is a Wiring field."""

EXAMPLES = "examples"
STATISTICS = "statistics"
SCHEMA = "schema"
ANOMALIES = "anomalies"
BASELINE_MODEL = "baseline_model"  # the served model, if any
SERVED_STATISTICS = "served_statistics"  # of its training data
DRIFT = "drift"
DRIFT_STATISTICS = "drift_statistics"  # kept with a pushed version
TRANSFORM_GRAPH = "transform_graph"
TRANSFORMED_EXAMPLES = "transformed_examples"  # only with materialize
HYPERPARAMETERS = "hyperparameters"  # the best trial's, with tune
TUNER_RESULTS = "tuner_results"  # every trial's score and values
MODEL = "model"
EVALUATION = "evaluation"
BLESSING = "blessing"
BULK_EXAMPLES = "bulk_examples"  # with bulk_infer_data
INFERENCE_RESULT = "inference_result"  # the blessed model's predictions
INFRA_BLESSING = "infra_blessing"  # with the candidate to push
PUSHED_MODEL = "pushed_model"

ROLES = (
    EXAMPLES,
    STATISTICS,
    SCHEMA,
    ANOMALIES,
    BASELINE_MODEL,
    SERVED_STATISTICS,
    DRIFT,
    DRIFT_STATISTICS,
    TRANSFORM_GRAPH,
    TRANSFORMED_EXAMPLES,
    HYPERPARAMETERS,
    TUNER_RESULTS,
    MODEL,
    EVALUATION,
    BLESSING,
    BULK_EXAMPLES,
    INFERENCE_RESULT,
    INFRA_BLESSING,
    PUSHED_MODEL,
)

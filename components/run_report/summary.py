"""The run summary: a typed record of one run, assembled from its artifacts, by role.

The local runner finds the artifacts in MLMD (pipelines/history/summary.py); on Kubeflow the
RunReport step gets them as its inputs. `RunSummary.model_json_schema()` is its JSON
schema, committed as `docs/summary.schema.json`; each local run writes
`runs/<run_id>/summary.json` in that shape. A stage that did not run leaves its fields null.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from google.protobuf import json_format
from ml_metadata.proto import metadata_store_pb2
from pydantic import BaseModel, ConfigDict, Field

from components.anomalies_gate import anomaly_messages
from components.run_report.artifact_facts import (
    bulk_inference_facts,
    drift_findings,
    evaluation_facts,
    example_counts,
    serving_check_facts,
    training_facts,
    tuning_facts,
)
from contract import roles
from contract.artifact_properties import (
    BASELINE_VERSION,
    BLESSED,
    CLASS_NAMES,
    COMPARED_WITH_SERVED,
    DUPLICATE_COUNT,
    EVAL_SPAN,
    OLDER_EVAL_IN_TRAIN,
    PUSHED,
    PUSHED_DESTINATION,
    PUSHED_VERSION,
    REJECTED_COUNT,
    REJECTS_PATH,
    SPANS,
    UNCHANGED_VERSION,
)

# TFX keeps a JSON value that is not an object as {"__value__": value} (types/artifact.py).
_JSON_SINGLE_VALUE_KEY = "__value__"


def _custom_property(artifact: metadata_store_pb2.Artifact, name: str) -> Any:
    """A custom property's value; a JSON one (as TFX's Kubeflow entrypoint reads them) too."""
    value = artifact.custom_properties.get(name)
    kind = value.WhichOneof("value") if value is not None else None
    if kind is None:
        return None
    if kind == "struct_value":
        decoded = json_format.MessageToDict(value.struct_value)
        return decoded.get(_JSON_SINGLE_VALUE_KEY, decoded)
    return getattr(value, kind)


def string_property(artifact: metadata_store_pb2.Artifact, name: str) -> str | None:
    value = _custom_property(artifact, name)
    return None if value is None else str(value)


def int_property(artifact: metadata_store_pb2.Artifact, name: str) -> int | None:
    value = _custom_property(artifact, name)
    return None if value is None else int(value)


Status = Literal["complete", "cached", "failed", "running", "unknown"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRun(_Record):
    status: Status
    seconds: float | None = Field(description="Wall time of the execution; null if unknown.")


class Calibration(_Record):
    temperature: float = Field(
        description="The logits are divided by it before the softmax; 1: not calibrated."
    )
    held_out_images: int = Field(
        description="Train images held out of training; the temperature and the unknown-image "
        "threshold are fitted on them."
    )
    note: str = Field(description="How the temperature was set, or why it was not.")
    ood_method: str = Field(description="What ood_score measures.")
    ood_threshold: float = Field(description="An ood_score above it flags an image unknown.")
    ood_keep: float = Field(description="The share of held-out images the threshold keeps.")
    ood_note: str


class Training(_Record):
    final_loss: float | None
    final_accuracy: float | None
    final_val_accuracy: float | None
    epochs: int
    images_per_second: float = Field(description="After the first epoch (tracing, caching).")
    device: str
    precision_policy: str
    class_names: list[str]
    warm_started_from: int | None = Field(
        description="The served version whose weights training started from; null: scratch."
    )
    warm_start_note: str = Field(description="Why training started where it did.")
    reused_version: int | None = Field(
        None, description="The served version reused as it is (same data and config); null: none."
    )
    hyperparameters: dict[str, Any] | None = Field(
        description="The values it trained with: the config's, or the Tuner's best trial's."
    )
    tuned: bool = Field(description="Whether the hyperparameters came from the Tuner.")
    resumed_from_epoch: int = Field(
        description="0: trained from its first epoch; k: resumed a killed training's backup "
        "and trained epochs k onward (the epoch history still covers every epoch)."
    )
    history_path: str = Field(description="The Trainer's training_history.json.")
    calibration: Calibration | None = Field(
        None, description="What the exported model applies; null: a model from before it."
    )


class Trial(_Record):
    trial_id: str
    score: float = Field(description="The objective: eval accuracy after the trial's steps.")
    values: dict[str, Any]


class Tuning(_Record):
    objective: str
    trials: list[Trial] = Field(description="Every completed trial, best first.")
    best: dict[str, Any] = Field(description="The best trial's values, which the Trainer used.")


class BulkInference(_Record):
    predictions: int = Field(description="Images scored; 0 when the model was not blessed.")
    by_class: dict[str, int] = Field(description="Images predicted to be each class.")
    prediction_logs: list[str] = Field(
        description="The BulkInferrer's PredictionLog files (TFRecord, GZIP)."
    )


class ClassMetrics(_Record):
    precision: float | None
    recall: float | None


class Drift(_Record):
    feature: str
    measure: str = Field(description="TFDV's drift measure, e.g. L_INFTY.")
    value: float
    threshold: float


class Metrics(_Record):
    accuracy: float | None = Field(description="Candidate's accuracy on the eval split.")
    chance_accuracy: float | None = Field(
        None,
        description="The accuracy of always answering the eval split's largest class; null: "
        "not measured (an evaluation before the chance line).",
    )
    example_count: int
    per_class: dict[str, ClassMetrics]
    calibration_error: float | None = Field(
        None,
        description="Expected calibration error (15 equal-width bins) of the served, "
        "calibrated probabilities; null: not measured.",
    )
    calibration_error_uncalibrated: float | None = Field(
        None, description="The same of the network's own softmax; null: not measured."
    )
    reliability_bins: dict[str, list[list[float]]] | None = Field(
        None,
        description="The reliability diagram: for 'calibrated' and 'uncalibrated', per bin of "
        "top probability, the images, the sum of their confidences and their correct answers.",
    )


class ServingCheck(_Record):
    blessed: bool
    checked: bool = Field(description="False: not run (the Evaluator did not bless).")
    reason: str = Field(description="The first failed check, or what passed.")
    ready_seconds: float | None = Field(description="From the server's start to ready.")
    p50_ms: float | None
    p99_ms: float | None
    requests: int = Field(description="Requests sent: eval images over V1 and V2, malformed.")


class RunSummary(_Record):
    """One pipeline run: what it read, trained, measured, decided and pushed."""

    pipeline_name: str
    run_id: str
    wall_seconds: float | None = Field(description="The run's wall time; null: not known.")
    classes: list[str] | None = None
    spans: list[int] | None = Field(None, description="The spans read; null: no span folders.")
    newest_span: int | None = None
    eval_span: int | None = Field(None, description="The span the eval split comes from.")
    older_eval_in_train: int | None = Field(
        None,
        description="Train examples that older spans of the window had set aside for eval "
        "(evaluation is on the eval span); null: no span folders.",
    )
    examples: dict[str, int] | None = Field(None, description="Examples per split.")
    rejected_files: int | None = None
    rejects_path: str | None = Field(None, description="JSON lines: path and reason.")
    duplicate_files: int | None = Field(
        None, description="Accepted files that are byte-identical copies of another one."
    )
    anomalies: list[str] | None = Field(
        None, description="ExampleValidator's anomalies, then drift findings (drift: ...)."
    )
    drift: list[Drift] | None = Field(
        None, description="Drift against the served model's training data; null: none served."
    )
    tuning: Tuning | None = Field(None, description="The Tuner's trials; null: not tuned.")
    training: Training | None = None
    metrics: Metrics | None = None
    baseline_accuracy: float | None = Field(None, description="The served model's accuracy.")
    baseline_version: int | None = Field(None, description="The served version compared.")
    confusion_matrix: list[list[int]] | None = Field(
        None, description="Rows: actual class; columns: predicted class."
    )
    failed_thresholds: list[str] | None = None
    blessed: bool | None = None
    bulk_inference: BulkInference | None = Field(
        None, description="TFX's BulkInferrer on bulk_infer_data; null: not configured."
    )
    serving_check: ServingCheck | None = Field(
        None, description="The candidate in the model server before the push."
    )
    unchanged_version: int | None = Field(
        None,
        description="The served version this run's candidate is, not evaluated again (nothing "
        "changed: same data, same config); null: a new candidate, or one judged again.",
    )
    did_no_work: list[str] | None = Field(
        None,
        description="The components that ran but did no work, as their inputs were the "
        "served version's (the Trainer reuses it when only eval settings changed).",
    )
    pushed: bool | None = None
    pushed_model_dir: str | None = None
    pushed_version: int | None = None
    lineage: dict[str, str] = Field(
        default_factory=dict, description="The data and each artifact's URI, by role."
    )
    components: dict[str, ComponentRun] = Field(
        default_factory=dict, description="Every node of the run, in the pipeline's order."
    )
    log_path: str | None = None
    report_path: str | None = None


# The roles whose producers do no work when the candidate is the served version itself.
UNCHANGED_ROLES = (roles.MODEL, roles.BLESSING, roles.INFRA_BLESSING, roles.PUSHED_MODEL)


def summarize(
    found: dict[str, metadata_store_pb2.Artifact | None],
    nodes: dict[str, str],
    summary: RunSummary,
    data_path: str,
    config_class_names: list[str] | None,
) -> RunSummary:
    """Fills the summary from the run's artifacts ({role: artifact}, None where none);
    `nodes` names the node that makes each role."""
    artifact = found.get
    examples = artifact(roles.EXAMPLES)
    if examples is not None:
        names = string_property(examples, CLASS_NAMES)
        summary.classes = json.loads(names) if names else config_class_names
        summary.rejected_files = int_property(examples, REJECTED_COUNT) or 0
        summary.rejects_path = string_property(examples, REJECTS_PATH)
        summary.duplicate_files = int_property(examples, DUPLICATE_COUNT)
        spans = string_property(examples, SPANS)
        if spans:
            summary.spans = json.loads(spans)
            summary.newest_span = max(summary.spans)
            summary.eval_span = int_property(examples, EVAL_SPAN)
            summary.older_eval_in_train = int_property(examples, OLDER_EVAL_IN_TRAIN)
    if (statistics := artifact(roles.STATISTICS)) is not None:
        summary.examples = example_counts(statistics.uri)
    if (anomalies := artifact(roles.ANOMALIES)) is not None:
        summary.anomalies = anomaly_messages(anomalies.uri)
    if (drift := artifact(roles.DRIFT)) is not None:
        if int_property(drift, COMPARED_WITH_SERVED):
            summary.drift = [Drift(**finding) for finding in drift_findings(drift.uri)]
        summary.anomalies = (summary.anomalies or []) + [
            f"drift: {message}" for message in anomaly_messages(drift.uri)
        ]
    if (results := artifact(roles.TUNER_RESULTS)) is not None and (
        best := artifact(roles.HYPERPARAMETERS)
    ) is not None:
        summary.tuning = Tuning(**tuning_facts(results.uri, best.uri))
    if (model := artifact(roles.MODEL)) is not None:
        facts = training_facts(model.uri)
        summary.training = Training(**facts) if facts else None
        if summary.training and not summary.classes:
            summary.classes = summary.training.class_names
    if (baseline := artifact(roles.BASELINE_MODEL)) is not None:
        summary.baseline_version = int_property(baseline, BASELINE_VERSION) or None
    if (evaluation := artifact(roles.EVALUATION)) is not None and (
        facts := evaluation_facts(evaluation.uri, summary.classes)
    ):
        summary.metrics = Metrics(**facts["metrics"])
        summary.baseline_accuracy = facts["baseline_accuracy"]
        summary.confusion_matrix = facts["confusion_matrix"]
        summary.failed_thresholds = facts["failed_thresholds"]
    if (blessing := artifact(roles.BLESSING)) is not None:
        summary.blessed = int_property(blessing, BLESSED) == 1
    if (inference := artifact(roles.INFERENCE_RESULT)) is not None and model is not None:
        summary.bulk_inference = BulkInference(**bulk_inference_facts(inference.uri, model.uri))
    if (infra_blessing := artifact(roles.INFRA_BLESSING)) is not None:
        facts = serving_check_facts(infra_blessing.uri)
        summary.serving_check = ServingCheck(**facts) if facts else None
    unchanged = {
        role: summary.training.reused_version
        if role == roles.MODEL and summary.training
        else int_property(item, UNCHANGED_VERSION)
        for role in UNCHANGED_ROLES
        if (item := artifact(role)) is not None
    }
    summary.did_no_work = [nodes[role] for role, version in unchanged.items() if version] or None
    summary.unchanged_version = unchanged.get(roles.BLESSING) or None
    summary.lineage = {
        "data": data_path,
        **{role: item.uri for role, item in found.items() if item is not None},
    }
    if (push := artifact(roles.PUSHED_MODEL)) is not None:
        summary.pushed = int_property(push, PUSHED) == 1
        if summary.pushed:
            summary.pushed_model_dir = string_property(push, PUSHED_DESTINATION)
            summary.pushed_version = int(string_property(push, PUSHED_VERSION))
            summary.lineage["pushed_model_dir"] = summary.pushed_model_dir
    return summary


if __name__ == "__main__":  # python -m components.run_report.summary > docs/summary.schema.json
    print(json.dumps(RunSummary.model_json_schema(), indent=2))

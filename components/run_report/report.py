"""A run's self-contained HTML report: metrics, pictures and the pushed model's lineage."""

from __future__ import annotations

import html
import json
import os

from tfx.utils import path_utils

from components.run_report.report_charts import (
    architecture_chart,
    confusion_chart,
    per_class_chart,
    reliability_chart,
    training_chart,
)
from components.run_report.report_images import (
    EvalImage,
    Features,
    misclassified,
    saliency,
)
from components.run_report.settings import ReportSettings
from components.run_report.summary import (
    BulkInference,
    Calibration,
    Metrics,
    RunSummary,
    ServingCheck,
    Tuning,
)
from contract import roles


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _figures(images: list[EvalImage]) -> str:
    cells = "".join(
        f'<figure><img alt="{html.escape(image.path)}" src="data:image/png;base64,'
        f'{image.png_base64}"><figcaption>{html.escape(image.true_class)} &rarr; '
        f"{html.escape(image.predicted_class)} ({image.score:.2f})<br><small>"
        f"{html.escape(image.path)}</small></figcaption></figure>"
        for image in images
    )
    return f'<div class="gallery">{cells}</div>'


def image_sections(summary: RunSummary, settings: ReportSettings) -> list[str]:
    """The eval images the model got wrong, and Grad-CAM pictures of a few."""
    lineage = summary.lineage
    if not (
        {roles.MODEL, roles.EXAMPLES, roles.TRANSFORM_GRAPH} <= set(lineage) and summary.classes
    ):
        return []
    model_dir = path_utils.serving_model_dir(lineage[roles.MODEL])
    features = Features(settings.image_feature, settings.label_feature, summary.classes)
    size = settings.image_size
    gallery, wrong, total = misclassified(model_dir, lineage[roles.EXAMPLES], features, size)
    shown = f"; the {len(gallery)} most confident mistakes" if wrong > len(gallery) else ""
    sections = [
        "<h2>Eval images the model got wrong</h2>",
        f"<p>{wrong} of {total} eval images{shown}. Each: true class &rarr; predicted "
        "class (score).</p>",
        _figures(gallery) if gallery else "<p>None.</p>",
    ]
    pictures = saliency(
        model_dir, lineage[roles.TRANSFORM_GRAPH], lineage[roles.EXAMPLES], features, size
    )
    if pictures:
        sections += [
            "<h2>Where the model looks (Grad-CAM on conv5)</h2>",
            "<p>Red: the regions that most raise the predicted class's score, from the last "
            "convolution's activations weighted by their gradients. Each: true class &rarr; "
            "predicted class (score).</p>",
            _figures(pictures),
        ]
    return sections


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def trust_section(calibration: Calibration, metrics: Metrics | None) -> list[str]:
    """How far the scores can be trusted: calibration and unknown images."""
    rows = [
        ("temperature", f"{calibration.temperature:.3f}: {calibration.note}"),
        (
            "unknown images",
            f"ood_score ({calibration.ood_method}) above {calibration.ood_threshold:.3f}: "
            f"{calibration.ood_note}",
        ),
    ]
    if metrics:
        rows[:0] = [
            (
                "expected calibration error",
                f"{_fmt(metrics.calibration_error_uncalibrated)} before, "
                f"{_fmt(metrics.calibration_error)} after",
            ),
        ]
    section = ["<h2>How far to trust a score</h2>", _table(rows)]
    if metrics and metrics.reliability_bins:
        section.append(_img(reliability_chart(metrics.reliability_bins), "reliability diagram"))
    return section


def _serving_check_text(check: ServingCheck | None) -> str:
    if check is None or not check.checked:
        return f"not run: {check.reason}" if check else "not run"
    verdict = "passed" if check.blessed else "FAILED"
    figures = f"p99 {check.p99_ms:.0f} ms, " if check.p99_ms is not None else ""
    return f"{verdict}: {check.reason}; {figures}{check.requests} requests"


def tuning_section(tuning: Tuning) -> list[str]:
    """Every trial's score and values, best first."""
    names = list(tuning.best)
    header = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    rows = "".join(
        f"<tr><td>{html.escape(trial.trial_id)}</td><td>{trial.score:.4f}</td>"
        + "".join(f"<td>{html.escape(str(trial.values.get(name)))}</td>" for name in names)
        + "</tr>"
        for trial in tuning.trials
    )
    return [
        "<h2>Tuning</h2>",
        f"<p>{len(tuning.trials)} trials, best first, scored by {tuning.objective}; the "
        "Trainer used the first row's values.</p>",
        f"<table><tr><th>trial</th><th>{tuning.objective}</th>{header}</tr>{rows}</table>",
    ]


def bulk_inference_section(bulk: BulkInference) -> list[str]:
    """What the BulkInferrer scored, with links to its PredictionLog files."""
    if not bulk.predictions:
        return ["<h2>Bulk inference</h2>", "<p>Nothing scored: the model was not blessed.</p>"]
    links = "".join(
        f'<li><a href="file://{html.escape(path)}">{html.escape(path)}</a></li>'
        for path in bulk.prediction_logs
    )
    return [
        "<h2>Bulk inference</h2>",
        f"<p>The blessed model scored {bulk.predictions} images of bulk_infer_data with "
        "TFX's BulkInferrer. Predicted classes:</p>",
        _table([(name, str(count)) for name, count in bulk.by_class.items()]),
        f"<p>PredictionLogs (TFRecord, GZIP):</p><ul>{links}</ul>",
    ]


def write_report(summary: RunSummary, path: str, settings: ReportSettings) -> str:
    """Writes the report (report.html next to the summary) and returns its path."""
    image_size, width_multiplier = settings.image_size, settings.width_multiplier
    sections = [f"<h1>AlexNet pipeline run {html.escape(summary.run_id)}</h1>"]
    metrics = summary.metrics
    verdict = {True: "blessed", False: "NOT blessed", None: "not evaluated"}[summary.blessed]
    overview = [
        ("pipeline", summary.pipeline_name),
        (
            "wall time",
            "unknown" if summary.wall_seconds is None else f"{summary.wall_seconds:.1f} s",
        ),
        ("classes", ", ".join(summary.classes or [])),
        ("examples", json.dumps(summary.examples)),
        (
            "spans",
            f"{', '.join(map(str, summary.spans))} (eval split from span {summary.eval_span})"
            if summary.spans
            else "no span folders",
        ),
        ("rejected files", str(summary.rejected_files)),
        ("anomalies", "; ".join(summary.anomalies or []) or "none"),
        ("verdict", verdict),
        ("serving check", _serving_check_text(summary.serving_check)),
        (
            "tuning",
            f"{len(summary.tuning.trials)} trials (see Tuning)" if summary.tuning else "off",
        ),
        (
            "bulk inference",
            f"{summary.bulk_inference.predictions} images scored (see Bulk inference)"
            if summary.bulk_inference
            else "off",
        ),
        (
            "pushed",
            f"version {summary.pushed_version} at {summary.pushed_model_dir}"
            if summary.pushed
            else "no",
        ),
    ]
    if metrics:
        overview[1:1] = [
            ("eval accuracy", _fmt(metrics.accuracy)),
            ("chance (always the largest class)", _fmt(metrics.chance_accuracy)),
            ("baseline accuracy", _fmt(summary.baseline_accuracy)),
            ("eval examples", str(metrics.example_count)),
        ]
    if summary.failed_thresholds:
        overview.append(("failed thresholds", "; ".join(summary.failed_thresholds)))
    sections += ["<h2>Summary</h2>", _table(overview)]
    if metrics and metrics.per_class:
        per_class = {name: values.model_dump() for name, values in metrics.per_class.items()}
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{_fmt(values['precision'])}</td>"
            f"<td>{_fmt(values['recall'])}</td></tr>"
            for name, values in per_class.items()
        )
        sections += [
            "<h2>Per-class metrics</h2>",
            f"<table><tr><th>class</th><th>precision</th><th>recall</th></tr>{rows}</table>",
            _img(per_class_chart(per_class), "per-class precision and recall"),
        ]
    if summary.confusion_matrix:
        sections += [
            "<h2>Confusion matrix</h2>",
            _img(confusion_chart(summary.confusion_matrix, summary.classes), "confusion matrix"),
        ]
    if summary.training and summary.training.calibration:
        sections += trust_section(summary.training.calibration, metrics)
    sections += image_sections(summary, settings)
    if summary.tuning:
        sections += tuning_section(summary.tuning)
    if training := summary.training:
        with open(training.history_path) as handle:
            history = json.load(handle)
        sections += [
            "<h2>Training</h2>",
            _table(
                [
                    ("epochs", str(training.epochs)),
                    ("device", training.device),
                    ("precision policy", training.precision_policy),
                    ("images/s", f"{training.images_per_second:.1f}"),
                    ("warm start", training.warm_start_note),
                    ("resumed from epoch", str(training.resumed_from_epoch)),
                    (
                        "hyperparameters" + (" (tuned)" if training.tuned else ""),
                        json.dumps(training.hyperparameters),
                    ),
                ]
            ),
            _img(training_chart(history), "training curves"),
        ]
    if summary.classes:
        sections += [
            "<h2>Architecture</h2>",
            _img(
                architecture_chart(len(summary.classes), image_size, width_multiplier),
                "architecture",
            ),
        ]
    if summary.drift:
        rows = "".join(
            f"<tr><td>{html.escape(d.feature)}</td><td>{html.escape(d.measure)}</td>"
            f"<td>{d.value:.4f}</td><td>{d.threshold:.4f}</td></tr>"
            for d in summary.drift
        )
        sections += [
            f"<h2>Drift against served version {summary.baseline_version}'s training data</h2>",
            "<table><tr><th>feature</th><th>measure</th><th>value</th><th>threshold</th></tr>"
            f"{rows}</table>",
        ]
    if summary.bulk_inference:
        sections += bulk_inference_section(summary.bulk_inference)
    if summary.lineage:
        sections += ["<h2>Lineage</h2>", _table(list(summary.lineage.items()))]
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 10px;text-align:left}img{max-width:100%;display:block;margin:1em 0}"
        ".gallery{display:flex;flex-wrap:wrap;gap:12px}.gallery figure{margin:0;width:150px}"
        ".gallery img{width:150px;margin:0 0 4px}figcaption{font-size:13px}"
    )
    document = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>AlexNet run "
        f"{html.escape(summary.run_id)}</title><style>{style}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>"
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(document)
    return path

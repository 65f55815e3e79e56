"""The run summary as the few lines the console prints at the end of a run."""

from __future__ import annotations

from components.run_report.summary import RunSummary


def describe(summary: RunSummary, components: bool = True) -> str:
    """The run's outcome; `components`: also a line per component (unless a live console
    already printed them)."""
    took = f" ({summary.wall_seconds:.1f} s)" if summary.wall_seconds is not None else ""
    lines = [f"Run {summary.run_id} of {summary.pipeline_name}{took}"]
    for name, info in summary.components.items() if components else ():
        seconds = f"{info.seconds:.1f} s" if info.seconds is not None else ""
        lines.append(f"  {name:<24}{info.status:<10}{seconds}")
    if summary.classes is not None:
        lines.append(f"Classes: {', '.join(summary.classes)}")
    if summary.spans:
        spans = ", ".join(str(span) for span in summary.spans)
        lines.append(f"Spans: {spans} (the eval split is span {summary.eval_span}'s)")
    if summary.examples is not None:
        counts = ", ".join(f"{split} {n}" for split, n in sorted(summary.examples.items()))
        if summary.older_eval_in_train:
            counts += f" ({summary.older_eval_in_train} of train: older spans' eval images)"
        lines.append(f"Examples: {counts}")
    if tuning := summary.tuning:
        best = tuning.trials[0].score if tuning.trials else None
        values = ", ".join(f"{name} {value}" for name, value in tuning.best.items())
        lines.append(
            f"Tuning: {len(tuning.trials)} trials; the best ({tuning.objective} "
            f"{best:.3f}) has {values}"
            if best is not None
            else "Tuning: no trial completed"
        )
    if (training := summary.training) and not training.epochs:
        lines.append(f"Training: none; {training.warm_start_note}")
    elif training:
        lines.append(
            f"Training: {training.epochs} epochs on {training.device}, final loss "
            f"{training.final_loss:.4f}, accuracy {training.final_accuracy:.3f}, "
            f"{training.images_per_second:.1f} images/s"
        )
        lines.append(f"Warm start: {training.warm_start_note}")
        if training.resumed_from_epoch:
            lines.append(
                f"Resumed: epochs 0-{training.resumed_from_epoch - 1} came from the backup "
                "of an interrupted run"
            )
    if metrics := summary.metrics:
        baseline = summary.baseline_accuracy
        lines.append(
            f"Eval accuracy: {metrics.accuracy:.4f} on {metrics.example_count} examples"
            + (
                f" (chance: {metrics.chance_accuracy:.4f}, always the largest class)"
                if metrics.chance_accuracy is not None
                else ""
            )
            + (
                f" (served baseline v{summary.baseline_version}: {baseline:.4f})"
                if baseline is not None
                else " (no served baseline)"
            )
        )
    lines.extend(_trust_lines(summary))
    if summary.unchanged_version:
        lines.append(
            f"Nothing new: the candidate is served version {summary.unchanged_version} (same "
            f"data, same config); did no work: {', '.join(summary.did_no_work or [])}"
        )
    elif summary.blessed is not None:
        if summary.blessed:
            lines.append("Blessed: yes")
        else:
            lines.append("Blessed: NO. Failed thresholds:")
            lines.extend(f"  {failure}" for failure in summary.failed_thresholds or [])
    if bulk := summary.bulk_inference:
        counts = ", ".join(f"{name} {count}" for name, count in bulk.by_class.items())
        lines.append(
            f"Bulk inference: {bulk.predictions} images scored ({counts}); "
            f"{', '.join(bulk.prediction_logs)}"
            if bulk.predictions
            else "Bulk inference: nothing scored (the model was not blessed)"
        )
    if check := summary.serving_check:
        lines.append(
            f"Serving check: passed (ready in {check.ready_seconds:.1f} s, p50 "
            f"{check.p50_ms:.0f} ms, p99 {check.p99_ms:.0f} ms, {check.requests} requests)"
            if check.blessed
            else f"Serving check: {'FAILED' if check.checked else 'not run'}: {check.reason}"
        )
    if summary.pushed is not None and not summary.unchanged_version:
        lines.append(
            f"Pushed: version {summary.pushed_version} to {summary.pushed_model_dir}"
            if summary.pushed
            else "Pushed: no (not blessed, failed the serving check, or identical to the "
            "served model)"
        )
    if summary.rejected_files:
        lines.append(f"Rejected files: {summary.rejected_files} (listed in {summary.rejects_path})")
    if summary.duplicate_files:
        lines.append(
            f"Duplicates: {summary.duplicate_files} files are byte-identical copies of others "
            "(each kept in its copy's split)"
        )
    if summary.anomalies:
        lines.append("Anomalies:")
        lines.extend(f"  {message}" for message in summary.anomalies)
    elif summary.anomalies is not None:
        lines.append("Anomalies: none")
    return "\n".join(lines)


def _trust_lines(summary: RunSummary) -> list[str]:
    """How far the probabilities are to be trusted, and when an image is called unknown."""
    calibration = summary.training.calibration if summary.training else None
    if calibration is None:
        return []
    metrics = summary.metrics
    error = ""
    if metrics and metrics.calibration_error is not None:
        before = metrics.calibration_error_uncalibrated
        error = (
            f"ECE {before:.3f} -> {metrics.calibration_error:.3f}; "
            if before is not None
            else f"ECE {metrics.calibration_error:.3f}; "
        )
    return [
        f"Calibration: {error}{calibration.note}",
        f"Unknown images: ood_score above {calibration.ood_threshold:.3f} ({calibration.ood_note})",
    ]

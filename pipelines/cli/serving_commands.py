"""The commands on pushed versions: list, roll back, predict, score a batch."""

from __future__ import annotations

import os
import time

import click

from modules.native_output import quiet
from pipelines.cli.options import (
    beam_arg_option,
    serving_options,
    user_errors,
)
from pipelines.config import build_config


@click.command()
@serving_options
@user_errors
def versions(serving_dir: str | None, model_name: str) -> None:
    """List the pushed versions: when, by which run, eval accuracy, spans; the last is served."""
    with quiet():
        from serving.versions import list_versions

    found = list_versions(build_config(serving_dir=serving_dir).serving_path, model_name)
    if not found:
        click.echo(f"No version of {model_name} is pushed yet.")
        return
    click.echo(f"{'version':>7}  {'pushed at (UTC)':<25}  {'run id':<22}  accuracy  spans")
    for info in found:
        accuracy = "n/a" if info.eval_accuracy is None else f"{info.eval_accuracy:.4f}"
        spans = ",".join(map(str, info.spans)) if info.spans else "-"
        served = "  (served)" if info is found[-1] else ""
        click.echo(
            f"{info.version:>7}  {info.pushed_at or '?':<25}  {info.run_id or '?':<22}  "
            f"{accuracy:>8}  {spans}{served}"
        )


@click.command()
@serving_options
@click.option("--to-version", type=int, help="Default: the version before the served one.")
@user_errors
def rollback(serving_dir: str | None, model_name: str, to_version: int | None) -> None:
    """Serve an earlier version: newer ones move to <model>/.retired/, never deleted."""
    with quiet():
        from serving.versions import list_versions
        from serving.versions import rollback as retire_newer

    path = build_config(serving_dir=serving_dir).serving_path
    retired = retire_newer(path, model_name, to_version)
    served = list_versions(path, model_name)[-1].version
    click.echo(
        f"Rolled back {model_name} to version {served}; retired version "
        f"{', '.join(map(str, retired))} to {os.path.join(path, model_name, '.retired')}. "
        "Running servers switch at their next poll; the next pipeline run compares against "
        f"version {served}."
    )


@click.command("predict-batch")
@click.option(
    "--data",
    required=True,
    help="Images (class folders optional: with them, accuracy is reported) or TFRecords.",
)
@click.option("--out", required=True, help="JSON-lines file: one line per image.")
@serving_options
@click.option(
    "--model",
    "model_path",
    help="A SavedModel folder, or a folder of numbered versions, instead of the served one.",
)
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(min=1))
@beam_arg_option
@click.option("-v", "--verbose", is_flag=True, help="Show the libraries' logs too.")
@user_errors
def predict_batch(
    data: str,
    out: str,
    serving_dir: str | None,
    model_name: str,
    model_path: str | None,
    top_k: int,
    beam_args: tuple[str, ...],
    verbose: bool,
) -> None:
    """Score every image of a folder with a pushed model: a Beam pipeline around
    RunInference. Undecodable files are listed in the output with their error."""
    from pathlib import Path

    from pipelines.console import run_console

    with quiet():
        from pipelines.batch.agreement import agreement, format_matrix, read_lines
        from pipelines.batch.inputs import find_inputs
        from pipelines.batch.job import check_output, choose_model, run_job
        from serving.layout import read_class_names

    found = find_inputs(data)
    choice = choose_model(
        model_path, build_config(serving_dir=serving_dir).serving_path, model_name
    )
    check_output(out)
    version = f"version {choice.version}" if choice.version is not None else "the model"
    log_path = Path(os.path.abspath(out) + ".log")
    click.echo(f"Scoring {found.size_text} in {found.root} with {version} at {choice.path}")
    click.echo(f"Logs: {log_path}")
    started = time.monotonic()
    with run_console(log_path, verbose):
        run_job(found, choice, out, top_k, list(beam_args))
    seconds = time.monotonic() - started
    lines = read_lines(out)
    failed = [line for line in lines if "error" in line]
    click.echo(
        f"Scored {len(lines) - len(failed)} images in {seconds:.1f} s "
        f"({(len(lines) - len(failed)) / seconds:.1f} images/s); written to {out}"
    )
    if failed:
        click.echo(
            f"Undecodable: {len(failed)} file{'s' if len(failed) > 1 else ''}, listed in {out} "
            "with their error, e.g. "
            f"{failed[0]['path']}: {failed[0]['error']}"
        )
    if found.labelled and (result := agreement(lines, read_class_names(choice.path))):
        click.echo(f"Accuracy: {result.accuracy:.4f} on {result.labelled} labelled images")
        click.echo(format_matrix(result))


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--url", help="A running model server, e.g. http://127.0.0.1:8080.")
@click.option("--serving-dir", help="Without --url: predict in-process from this serving dir.")
@click.option("--model-name", default="alexnet", show_default=True)
@click.option("--protocol", type=click.Choice(["v1", "v2"]), default="v1", show_default=True)
@click.option("--top-k", default=1, show_default=True, type=click.IntRange(min=1))
@user_errors
def predict(
    images: tuple[str, ...],
    url: str | None,
    serving_dir: str | None,
    model_name: str,
    protocol: str,
    top_k: int,
) -> None:
    """Classify image files with a served model, or in-process with the newest pushed one."""
    from contract.prediction import record
    from serving.client import predict_remote, read_images

    if url:
        predictions = predict_remote(list(images), url, model_name, protocol)
    else:
        with quiet():
            from serving.served_model import ServedModel

            serving_path = build_config(serving_dir=serving_dir).serving_path
            model = ServedModel.latest(serving_path, model_name)
            predictions = model.predict(read_images(list(images)))
    for path, prediction in zip(images, predictions, strict=True):
        # Fields beyond the class and its score, as the contract declares them.
        more = {k: v for k, v in record(prediction, 4).items() if k not in ("class_name", "score")}
        details = "".join(f", {name} {value}" for name, value in more.items())
        click.echo(
            f"{path}: {prediction.class_name} (score {prediction.score:.4f}{details}, "
            f"model version {prediction.model_version})"
        )
        if top_k > 1:
            for name, score in prediction.top_k(top_k):
                click.echo(f"  {name:<20} {score:.4f}")

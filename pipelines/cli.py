"""The `alexnet-tfx` command line.

Heavy imports (TensorFlow, TFX) happen inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import click

from contract.data import is_remote
from modules.cli_flags import dataclass_options, with_options
from modules.hyperparameters import Hyperparameters
from modules.native_output import quiet
from pipelines.config import KFP_S3_ENDPOINT, KFP_S3_SECRET, PRESETS, PipelineConfig, build_config
from serving.command import serve_command
from serving.options import ServingOptions


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turns expected user mistakes into a one-line error on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, OSError) as error:  # OSError: files, buckets, connections
            raise click.ClickException(str(error)) from error

    return wrapper


HYPERPARAMETERS = [field.name for field in dataclasses.fields(Hyperparameters)]
(_beam_arg_option,) = dataclass_options(PipelineConfig, with_defaults=False, only={"beam_args"})

# Flags on `run` and `compile`: the config's own fields with help metadata, then the
# hyperparameters (pipelines/config.py, modules/hyperparameters.py).
_CONFIG_OPTIONS = [
    click.option("--preset", type=click.Choice(list(PRESETS))),
    click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        help="YAML file of config fields; flags override it.",
    ),
    *dataclass_options(PipelineConfig, with_defaults=False),
    *dataclass_options(Hyperparameters, with_defaults=False),
]


def config_from_params(params: dict[str, Any]) -> tuple[PipelineConfig, dict[str, Any]]:
    """The config the parsed flags make, and the parameters that are not config flags.

    Precedence: --preset < --config YAML < the other flags.
    """
    rest = dict(params)
    preset, config_file = rest.pop("preset"), rest.pop("config_file")
    beam_args = list(rest.pop("beam_args")) or None
    training = {name: rest.pop(name) for name in HYPERPARAMETERS}
    fields = {name: rest.pop(name) for name in list(rest) if name in _CONFIG_FIELDS}
    config = build_config(preset, config_file, training, beam_args=beam_args, **fields)
    return config, rest


def pipeline_config(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds the config flags to a command and hands it the PipelineConfig they make."""

    @functools.wraps(command)
    @user_errors
    def wrapper(**params: Any) -> Any:
        config, rest = config_from_params(params)
        return command(config=config, **rest)

    return with_options(_CONFIG_OPTIONS, wrapper)


_CONFIG_FIELDS = {field.name for field in dataclasses.fields(PipelineConfig)}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, evaluate, push and serve AlexNet image classifiers with TFX."""


@main.command()
@click.option("--num-classes", type=int, default=1000, show_default=True)
@click.option("--image-size", type=int, default=227, show_default=True)
@click.option("--width-multiplier", type=float, default=1.0, show_default=True)
@click.option(
    "--png",
    type=click.Path(dir_okay=False, writable=True),
    help="Also draw the layer stack to this PNG file.",
)
@user_errors
def architecture(
    num_classes: int, image_size: int, width_multiplier: float, png: str | None
) -> None:
    """Print every layer of AlexNet with its output shape and parameters."""
    with quiet():
        from modules.architecture import alexnet_rows, draw_diagram, format_table

        rows = alexnet_rows(num_classes, image_size, width_multiplier)
    click.echo(format_table(rows))
    if png:
        draw_diagram(rows, png)
        click.echo(f"diagram written to {png}")


@main.command("demo-data")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write <class>/<image>.jpg into.",
)
@click.option("--per-class", default=200, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--spans",
    type=click.IntRange(min=1),
    help="Write span-1 ... span-N folders instead; the last of two or more is shifted "
    "(darker, 320x240, PNG), as new data often is.",
)
@user_errors
def demo_data(out: str, per_class: int, seed: int, spans: int | None) -> None:
    """Write the synthetic bike/ship demo dataset as JPEG class folders."""
    from pipelines.demo_data import write_demo_dataset, write_demo_spans

    if spans:
        paths = write_demo_spans(out, spans, per_class=per_class, seed=seed)
    else:
        paths = write_demo_dataset(out, per_class=per_class, seed=seed)
    click.echo(f"wrote {len(paths)} images to {out}")


RESUME_HINT = (
    "Interrupted. To resume, run the same command again: finished components are reused "
    "and the Trainer continues after its last finished epoch."
)


@main.command()
@pipeline_config
@click.option("--to", "to_component", help="Run up to and including this component.")
@click.option(
    "--orchestrator", type=click.Choice(["local", "beam"]), default="local", show_default=True
)
@click.option(
    "--summary-json", type=click.Path(dir_okay=False), help="Also write the run summary here."
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Show the libraries' logs too (pipeline.log has them)."
)
def run(
    config: PipelineConfig,
    to_component: str | None,
    orchestrator: str,
    summary_json: str | None,
    verbose: bool,
) -> None:
    """Run the pipeline locally."""
    from pathlib import Path

    from pipelines.config import new_run_id
    from pipelines.console import run_console

    _check_writable(config)
    if config.data is None and not os.path.isdir(config.data_path):
        from pipelines.demo_data import write_demo_dataset

        click.echo(f"generating the demo dataset in {config.data_path}")
        write_demo_dataset(config.data_path)
    run_id = new_run_id()
    log_path = Path(config.runs_path) / run_id / "pipeline.log"
    click.echo(f"Run {run_id} of {config.pipeline_name}; its logs: {log_path}")
    failure = None
    # TensorFlow and TFX load inside the console, so their start-up noise goes to the log.
    with run_console(log_path, verbose):
        from components.run_report.summary_text import describe
        from pipelines.local_runner import PipelineFailed, run_pipeline

        try:
            summary = run_pipeline(config, to_component, orchestrator, run_id=run_id)
        except PipelineFailed as error:
            failure, summary = error, error.summary
        except KeyboardInterrupt:
            summary = None
    if summary is None:
        click.echo(RESUME_HINT, err=True)
        raise SystemExit(130)  # the shell's code for SIGINT
    if failure:
        click.echo(describe(summary))
        raise click.ClickException(str(failure)) from failure
    if summary_json:
        with open(summary_json, "w") as handle:
            handle.write(summary.model_dump_json(indent=2))
    click.echo(describe(summary, components=False))
    click.echo(f"Summary: {os.path.join(config.runs_path, summary.run_id, 'summary.json')}")
    click.echo(f"Report: {summary.report_path}")
    if summary.pushed:
        click.echo(f"Serve it: alexnet-tfx serve --serving-dir {config.serving_path}")


def _check_writable(config: PipelineConfig) -> None:
    """A read-only or unwritable volume stops the run before it starts, naming the flag.
    Nothing is created here: a folder not there yet is checked at its nearest existing
    parent (a volume that is not mounted must not become a folder on the root disk)."""
    folders = [
        ("--output-root", config.runs_path),
        ("--pipeline-root" if config.pipeline_root else "--output-root", config.pipeline_root_path),
        ("--serving-dir" if config.serving_dir else "--output-root", config.serving_path),
    ]
    for flag, folder in folders:
        if is_remote(folder):
            continue
        existing = folder
        while not os.path.lexists(existing):
            existing = os.path.dirname(existing)
        try:
            tempfile.TemporaryFile(dir=existing).close()
        except OSError as error:
            given = getattr(config, flag[2:].replace("-", "_"))
            raise click.ClickException(
                f"{flag} {given}: cannot write to {existing} ({error.strerror}); "
                "choose a folder you can write to"
            ) from None


@main.command()
@click.option("--pipeline-root", help="Default: outputs/pipeline_root.")
@click.option("--output-root", help="Where outputs go unless overridden (default: outputs).")
@user_errors
def runs(pipeline_root: str | None, output_root: str | None) -> None:
    """List past runs from the pipeline's ML Metadata store."""
    from pipelines.run_history import format_runs, list_runs

    config = build_config(pipeline_root=pipeline_root, output_root=output_root)
    click.echo(format_runs(list_runs(config.metadata_path)))


_SERVING_OPTIONS = [
    click.option(
        "--serving-dir", help="Push target of the pipeline. Default: outputs/serving_model."
    ),
    *dataclass_options(ServingOptions, with_defaults=True, only={"model_name"}),
]


def _serving_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return with_options(_SERVING_OPTIONS, command)


@main.command()
@_serving_options
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


@main.command()
@_serving_options
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


@main.command("predict-batch")
@click.option(
    "--data",
    required=True,
    help="Images (class folders optional: with them, accuracy is reported) or TFRecords.",
)
@click.option("--out", required=True, help="JSON-lines file: one line per image.")
@_serving_options
@click.option(
    "--model",
    "model_path",
    help="A SavedModel folder, or a folder of numbered versions, instead of the served one.",
)
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(min=1))
@_beam_arg_option
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
        from pipelines.batch_inputs import find_inputs
        from pipelines.predict_batch import (
            agreement,
            check_output,
            choose_model,
            format_matrix,
            read_lines,
            run_job,
        )
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


@main.command("compile")
@pipeline_config
@click.option("--image", required=True, help="Container image every task runs.")
@click.option("--gpus", type=int, default=1, show_default=True, help="GPUs for the Trainer.")
@click.option("--gpu-type", default="nvidia.com/gpu", show_default=True)
@click.option("--output", default="kubeflow/alexnet_pipeline.yaml", show_default=True)
@click.option(
    "--s3-endpoint",
    default=KFP_S3_ENDPOINT,
    show_default=True,
    help="The tasks' AWS_ENDPOINT_URL, for s3:// and minio:// paths; '' for AWS itself.",
)
@click.option(
    "--s3-secret",
    default=KFP_S3_SECRET,
    show_default=True,
    help="Kubernetes secret whose accesskey and secretkey the tasks use; '' for none (IRSA).",
)
def compile_command(
    config: PipelineConfig,
    image: str,
    gpus: int,
    gpu_type: str,
    output: str,
    s3_endpoint: str,
    s3_secret: str,
) -> None:
    """Compile the pipeline to a Kubeflow Pipelines (v2, schema 2.1) YAML spec.

    --data and --serving-dir are as the cluster sees them (gs://, s3://, minio://, a volume
    path). The artifact root is given when a run starts (submit, schedule).
    """
    with quiet():
        from pipelines.kubeflow_runner import compile_pipeline

        path = compile_pipeline(
            config, image, output, gpus, gpu_type, s3_endpoint=s3_endpoint, s3_secret=s3_secret
        )
    click.echo(f"compiled {path}")


@main.command()
@click.option("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080.")
@click.option("--experiment", default="alexnet", show_default=True)
@click.option("--package", default="kubeflow/alexnet_pipeline.yaml", show_default=True)
@click.option("--pipeline-root", help="Artifact root URI for this run.")
@click.option("--run-name")
@user_errors
def submit(
    host: str, experiment: str, package: str, pipeline_root: str | None, run_name: str | None
) -> None:
    """Start a run of a compiled pipeline on Kubeflow Pipelines; print its URL."""
    from pipelines.kfp_client import submit as submit_run

    click.echo(submit_run(host, package, experiment, pipeline_root, run_name))


@main.command()
@click.option("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080.")
@click.option(
    "--cron",
    required=True,
    help="When to run: 5 cron fields (e.g. '0 2 * * *', 02:00 daily) or KFP's 6.",
)
@click.option("--experiment", default="alexnet", show_default=True)
@click.option("--package", default="kubeflow/alexnet_pipeline.yaml", show_default=True)
@click.option("--pipeline-root", help="Artifact root URI for the runs.")
@click.option("--name", default="alexnet-continuous-training", show_default=True)
@user_errors
def schedule(
    host: str, cron: str, experiment: str, package: str, pipeline_root: str | None, name: str
) -> None:
    """Run a compiled pipeline on a schedule (a KFP recurring run); print its URL.

    Each run reads the newest spans of --data, so new spans are trained on as they land.
    """
    from pipelines.kfp_client import schedule as schedule_runs

    click.echo(schedule_runs(host, package, experiment, cron, name, pipeline_root))


main.add_command(serve_command(lambda: build_config().serving_path))


@main.command()
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
        click.echo(
            f"{path}: {prediction.class_name} (score {prediction.score:.4f}, "
            f"model version {prediction.model_version})"
        )
        if top_k > 1:
            for name, score in prediction.top_k(top_k):
                click.echo(f"  {name:<20} {score:.4f}")

"""`alexnet-tfx run` and what goes with it: the demo data, the architecture, past runs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import click

from contract.data import is_remote
from modules.cli_flags import dataclass_options, with_options
from modules.hyperparameters import Hyperparameters
from modules.native_output import quiet
from pipelines.cli.options import (
    pipeline_config,
    user_errors,
)
from pipelines.config import PipelineConfig, build_config


def _architecture_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The hyperparameters that shape the network, with their defaults."""
    names = {"image_size", "width_multiplier"}
    return with_options(dataclass_options(Hyperparameters, with_defaults=True, only=names), command)


def _location_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where a run's outputs are, as the config names them."""
    names = {"output_root", "pipeline_root"}
    return with_options(dataclass_options(PipelineConfig, with_defaults=False, only=names), command)


@click.command()
@click.option("--num-classes", type=int, default=1000, show_default=True)
@_architecture_options
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


@click.command("demo-data")
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


@click.command()
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


@click.command()
@_location_options
@user_errors
def runs(pipeline_root: str | None, output_root: str | None) -> None:
    """List past runs from the pipeline's ML Metadata store."""
    from pipelines.history.runs import format_runs, list_runs

    config = build_config(pipeline_root=pipeline_root, output_root=output_root)
    click.echo(format_runs(list_runs(config.metadata_path)))

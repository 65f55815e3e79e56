"""The Kubeflow commands: compile the spec, submit a run, schedule runs."""

from __future__ import annotations

import click

from modules.native_output import quiet
from pipelines.cli.options import (
    pipeline_config,
    user_errors,
)
from pipelines.config import KFP_S3_ENDPOINT, KFP_S3_SECRET, PipelineConfig


@click.command("compile")
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
        from pipelines.kubeflow.runner import compile_pipeline

        path = compile_pipeline(
            config, image, output, gpus, gpu_type, s3_endpoint=s3_endpoint, s3_secret=s3_secret
        )
    click.echo(f"compiled {path}")


@click.command()
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
    from pipelines.kubeflow.client import submit as submit_run

    click.echo(submit_run(host, package, experiment, pipeline_root, run_name))


@click.command()
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
    from pipelines.kubeflow.client import schedule as schedule_runs

    click.echo(schedule_runs(host, package, experiment, cron, name, pipeline_root))

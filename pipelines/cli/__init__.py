"""The `alexnet-tfx` command line: the commands of run_commands, serving_commands and
kubeflow_commands, and `serve` from serving/command.py.

Heavy imports (TensorFlow, TFX) happen inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import click

from pipelines.cli.kubeflow_commands import compile_command, schedule, submit
from pipelines.cli.options import config_from_params
from pipelines.cli.run_commands import architecture, demo_data, run, runs
from pipelines.cli.serving_commands import predict, predict_batch, rollback, versions
from pipelines.config import build_config
from serving.command import serve_command

__all__ = ["config_from_params", "main", "serve"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, evaluate, push and serve AlexNet image classifiers with TFX."""


serve = serve_command(lambda: build_config().serving_path)
for command in (
    architecture,
    demo_data,
    run,
    runs,
    versions,
    rollback,
    predict_batch,
    compile_command,
    submit,
    schedule,
    serve,
    predict,
):
    main.add_command(command)

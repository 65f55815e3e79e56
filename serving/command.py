"""The model server's command: `python -m serving` and `alexnet-tfx serve`. Its flags are
ServingOptions' fields (modules/cli_flags.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from modules.cli_flags import dataclass_options, user_errors, with_options
from modules.native_output import quiet
from serving.options import ServingOptions


def serve_command(default_serving_dir: Callable[[], str] | None = None) -> click.Command:
    """The `serve` command; without `default_serving_dir`, --serving-dir is required."""

    @user_errors
    def serve(serving_dir: str | None, verbose: bool, **settings: Any) -> None:
        """Serve the newest pushed version over KServe's V1 and V2 protocols, reloading new ones."""
        options = ServingOptions(serving_dir=serving_dir or default_serving_dir(), **settings)
        with quiet(verbose):
            from serving.server import check_ports_free, prepare

            check_ports_free(options)
            server = prepare(options)
        click.echo(
            f"Serving {options.model_name} version {server.version} ({server.path}) at "
            f"http://{options.host}:{options.port} (V1 and V2; /metrics); "
            + ("pinned: no reload." if options.version else "new versions load as they are pushed.")
            + (
                f" Logging {options.log_sample:.0%} of requests to {options.log_requests}."
                if options.log_requests
                else ""
            )
        )
        server.serve()

    options = [
        click.option(
            "--serving-dir",
            required=default_serving_dir is None,
            help="Push target of the pipeline."
            + (" Default: outputs/serving_model." if default_serving_dir else ""),
        ),
        *dataclass_options(ServingOptions, with_defaults=True),
        click.option(
            "-v", "--verbose", is_flag=True, help="Show TensorFlow's and KServe's start-up."
        ),
    ]
    settings = {"help_option_names": ["-h", "--help"]}
    return click.command("serve", context_settings=settings)(with_options(options, serve))

"""The `alexnet-tfx` command line.

Heavy imports (TensorFlow, TFX) happen inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turns expected user mistakes into a one-line error on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, FileNotFoundError, NotADirectoryError) as error:
            raise click.ClickException(str(error)) from error

    return wrapper


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
    from modules.architecture import draw_diagram, format_table, layer_rows
    from modules.model import build_alexnet

    rows = layer_rows(build_alexnet(num_classes, image_size, width_multiplier))
    click.echo(format_table(rows))
    if png:
        draw_diagram(rows, png)
        click.echo(f"diagram written to {png}")

"""The flags that commands share: the pipeline config (from its declaration), the serving
directory, and one-line user errors."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import click

from modules.cli_flags import dataclass_options, user_errors, with_options
from modules.hyperparameters import Hyperparameters
from pipelines.config import PRESETS, PipelineConfig, build_config
from serving.options import ServingOptions

HYPERPARAMETERS = [field.name for field in dataclasses.fields(Hyperparameters)]
(beam_arg_option,) = dataclass_options(PipelineConfig, with_defaults=False, only={"beam_args"})

# Flags on `run` and `compile`: the config's own fields with help metadata, then the
# hyperparameters (pipelines/config.py, modules/hyperparameters.py).
CONFIG_OPTIONS = [
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

    return with_options(CONFIG_OPTIONS, wrapper)


_CONFIG_FIELDS = {field.name for field in dataclasses.fields(PipelineConfig)}


SERVING_OPTIONS = [
    click.option(
        "--serving-dir", help="Push target of the pipeline. Default: outputs/serving_model."
    ),
    *dataclass_options(ServingOptions, with_defaults=True, only={"model_name"}),
]


def serving_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return with_options(SERVING_OPTIONS, command)

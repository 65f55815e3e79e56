"""Command-line flags made from a settings dataclass: one per field, from its type, default
and `help` metadata, so a setting is declared once (Hyperparameters, ServingOptions, the
pipeline config)."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Collection
from typing import Any

import click

_CLICK_TYPES = {int: click.INT, float: click.FLOAT, str: click.STRING}
_RANGES = {int: click.IntRange, float: click.FloatRange}
_BOUNDS = ("low", "high", "low_open")


def setting(
    default: Any,
    help_text: str = "",
    flag: str | None = None,
    **bounds: float | bool,
) -> Any:
    """A dataclass field that becomes a flag: its help, its flag when not --<field-name>, and
    its bounds (low, high, low_open), which the flag and `check_bounds` both hold it to. A
    callable default is a factory (a list's)."""
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"setting: unknown bounds {sorted(unknown)}")
    metadata = {"help": help_text, "flag": flag, "bounds": bounds}
    if callable(default):  # a factory, for a mutable default
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def check_bounds(settings: Any) -> None:
    """Raises ValueError naming the first field outside its declared bounds."""
    for field in dataclasses.fields(settings):
        bounds, value = field.metadata.get("bounds") or {}, getattr(settings, field.name)
        if value is None or not bounds:
            continue
        low, high = bounds.get("low"), bounds.get("high")
        if low is not None and (value <= low if bounds.get("low_open") else value < low):
            relation = "more than" if bounds.get("low_open") else "at least"
            raise ValueError(f"{field.name}: must be {relation} {low}, got {value}")
        if high is not None and value > high:
            raise ValueError(f"{field.name}: must be at most {high}, got {value}")


def _plain_type(annotation: Any) -> Any:
    """`int | None` -> int; Literal["a", "b"] -> a Choice; list[str] -> str."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return click.Choice(list(typing.get_args(annotation)))
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
    return _CLICK_TYPES.get(annotation, annotation)


def field_flag(field: dataclasses.Field) -> str:
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def dataclass_options(
    cls: type, with_defaults: bool, only: Collection[str] | None = None
) -> list[Callable[..., Any]]:
    """click options for the fields of `cls` that carry `help` metadata (those in `only`, if
    given). With defaults, each shows the field's own; without, an unset flag is None and
    the config's value stands."""
    hints = typing.get_type_hints(cls)
    options = []
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata or (only is not None and field.name not in only):
            continue
        flag, hint = field_flag(field), hints[field.name]
        default = field.default if with_defaults else None
        default = None if default is dataclasses.MISSING else default
        kwargs: dict[str, Any] = {
            "default": default,
            "show_default": default is not None,
            "help": field.metadata["help"] or None,
        }
        if hint is bool or hint == bool | None:
            options.append(click.option(f"{flag}/--no-{flag[2:]}", field.name, **kwargs))
            continue
        if typing.get_origin(hint) is list:
            kwargs.update(multiple=True, default=None)
        kind = _plain_type(hint)
        bounds = field.metadata.get("bounds")
        if bounds:
            kind = _RANGES[{click.INT: int, click.FLOAT: float}[kind]](
                min=bounds.get("low"), max=bounds.get("high"), min_open=bool(bounds.get("low_open"))
            )
        options.append(click.option(flag, field.name, type=kind, **kwargs))
    return options


def with_options(options: list[Callable[..., Any]], command: Callable[..., Any]) -> Callable:
    """`command` with the options, in their order on --help."""
    for option in reversed(options):
        command = option(command)
    return command


def user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turns expected user mistakes into a one-line error on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, OSError) as error:  # OSError: files, buckets, connections
            raise click.ClickException(str(error)) from error

    return wrapper

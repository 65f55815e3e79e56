"""The alexnet-tfx command line."""

import subprocess
import sys

import pytest
from conftest import run_cli as cli


def test_help_lists_subcommands_without_loading_tensorflow():
    """The installed script, in a fresh process: help is instant."""
    check = (
        "import sys; from click.testing import CliRunner; from pipelines.cli import main; "
        "result = CliRunner().invoke(main, ['run', '--help']); print(result.output); "
        "print('loaded:', sorted(m for m in ('tensorflow', 'tfx') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--learning-rate" in result.stdout and "loaded: []" in result.stdout
    script = subprocess.run(["alexnet-tfx", "--help"], capture_output=True, text=True)
    assert script.returncode == 0 and "architecture" in script.stdout


def test_every_hyperparameter_has_a_flag_on_run_and_compile():
    import dataclasses

    from modules.hyperparameters import Hyperparameters
    from pipelines.cli import compile_command, run

    for command in (run, compile_command):
        flags = {option for param in command.params for option in param.opts}
        for field in dataclasses.fields(Hyperparameters):
            assert f"--{field.name.replace('_', '-')}" in flags, (command.name, field.name)


def test_hyperparameter_flags_reach_the_config():
    from pipelines.cli import config_from_params, run

    flags = ["--preset", "tiny", "--dropout", "0.25", "--no-cache-decoded", "--epochs", "2"]
    config, rest = config_from_params(run.make_context("run", flags).params)
    training = config.training
    assert (training.dropout, training.cache_decoded, training.epochs) == (0.25, False, 2)
    assert training.image_size == 67  # the rest from the preset
    assert set(rest) == {"to_component", "orchestrator", "summary_json", "verbose"}


def test_architecture_prints_canonical_total_and_draws_png(tmp_path):
    png = tmp_path / "nested" / "alexnet.png"
    result = cli("architecture", "--num-classes", "1000", "--png", str(png))
    assert result.returncode == 0, result.stderr
    assert "62,378,344" in result.stdout.splitlines()[-2]
    assert "conv1" in result.stdout and "11x11/4" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["architecture", "--image-size", "50"], "image_size 50 is too small"),
        (["architecture", "--num-classes", "1"], "num_classes must be at least 2"),
    ],
)
def test_user_mistakes_are_one_line_errors(args, message):
    result = cli(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_kserves_import_time_argument_parser_accepts_every_flag_of_ours():
    """KServe 0.21 parses sys.argv when it is first imported (kserve/model_server.py). A flag
    of ours that it found ambiguous, or whose value it rejected, would end the process."""
    import click
    from kserve.model_server import parser

    from pipelines.cli import main

    for command in main.commands.values():
        for param in command.params:
            values = list(param.type.choices) if isinstance(param.type, click.Choice) else ["1"]
            for option in (opt for opt in param.opts if opt.startswith("--")):
                for value in values:
                    parser.parse_known_args([option, value])  # SystemExit fails the test

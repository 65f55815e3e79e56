"""The alexnet-tfx command line, run as a user runs it."""

import subprocess

import pytest


def cli(*args):
    return subprocess.run(["alexnet-tfx", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_subcommands():
    result = cli("--help")
    assert result.returncode == 0
    assert "architecture" in result.stdout


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

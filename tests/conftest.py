"""Shared fixtures: small datasets made on the spot, and one pipeline run per scenario.

Commands run in this process through click's test runner, which calls the same CLI code as
the `alexnet-tfx` script without paying TensorFlow's and TFX's import again for each run
(about 20 s each). Tests that need a separate process (the model server, a killed run)
start one themselves.
"""

import dataclasses
import io
import os

import pytest
from PIL import Image

# Keep TensorFlow's C++ logging out of test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def encode(fmt: str, size=(40, 30), mode="RGB", colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).convert(mode).save(buffer, fmt)
    return buffer.getvalue()


def write_tfrecords(folder, split, count, offset):
    """`count` tf.Examples of 3 colours, with our own feature names img, y and id."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(folder / f"{split}.tfrecord")) as writer:
        for index in range(count):
            label = index % 3
            colour = [(220, 20, 20), (20, 220, 20), (20, 20, 220)][label]
            feature = {
                "img": tf.train.Feature(
                    bytes_list=tf.train.BytesList(
                        value=[encode("PNG", size=(32, 32), colour=colour)]
                    )
                ),
                "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "id": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[f"{split}_{offset + index}".encode()])
                ),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )


def png_header(width, height):
    """A PNG that says it is width x height: its header, and no pixels."""
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def write_files(root, files):
    """Writes {relative path: bytes} under root, making folders; returns root."""
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    from pipelines.demo_data import write_demo_dataset

    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root, per_class=60, seed=7)
    return root


@dataclasses.dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args) -> CommandResult:
    """Runs `alexnet-tfx ARGS` in this process; an unexpected exception fails the test."""
    from click.testing import CliRunner

    from pipelines.cli import main

    result = CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)
    return CommandResult(result.exit_code, result.stdout, result.stderr)


def wiring_for(config):
    """The pipeline's stages as wired for `config`: its nodes, and their ids by artifact role."""
    from pipelines.data_facts import inspect_data
    from pipelines.pipeline import wire

    return wire(config, inspect_data(config))


def partial_run_nodes(wiring, last):
    """The nodes a run `--to last` executes: `last` and everything upstream, in order."""
    nodes = {node.id: node for node in wiring.components}
    needed, pending = set(), [last]
    while pending:
        current = pending.pop()
        if current not in needed:
            needed.add(current)
            node = nodes[current]
            pending.extend(channel.producer_component_id for channel in node.inputs.values())
            pending.extend(upstream.id for upstream in node.upstream_nodes)
    return [node for node in wiring.node_ids() if node in needed]


@pytest.fixture(scope="session")
def tiny_wiring(demo_dir):
    from pipelines.config import build_config

    return wiring_for(build_config("tiny", data=str(demo_dir)))


@pytest.fixture(scope="session")
def node_id(tiny_wiring):
    """The id of the node that makes an artifact role, e.g. node_id("model") -> "Trainer"."""
    sources = tiny_wiring.sources()
    return lambda role: sources[role].node_id


class PipelineWorkspace:
    """One output root shared by a chain of real tiny-preset pipeline runs."""

    def __init__(self, root, data):
        self.root = root
        self.data = data
        self.serving = root / "serving_model" / "alexnet"
        self.count = 0

    def run(self, *extra, own_process=False):
        """`alexnet-tfx run` with the tiny preset and EXTRA flags: in this process, or with
        `own_process` in a fresh one, as a user starts it (its console is all they see)."""
        import json
        import subprocess

        self.count += 1
        summary_path = self.root / f"summary-{self.count}.json"
        args = [
            "run", "--data", self.data, "--preset", "tiny", "--output-root", self.root,
            "--summary-json", summary_path, *extra,
        ]  # fmt: skip
        if own_process:
            completed = subprocess.run(
                ["alexnet-tfx", *map(str, args)], capture_output=True, text=True
            )
            result = CommandResult(completed.returncode, completed.stdout, completed.stderr)
        else:
            result = run_cli(*args)
        assert result.returncode == 0, result.stderr[-4000:]
        return json.loads(summary_path.read_text()), result

    def served(self):
        """{version: sorted file listing} of the serving directory."""
        if not self.serving.exists():
            return {}
        return {
            p.name: sorted(str(f.relative_to(p)) for f in p.rglob("*"))
            for p in self.serving.iterdir()
        }


@pytest.fixture(scope="session")
def workspace(tmp_path_factory, demo_dir):
    return PipelineWorkspace(tmp_path_factory.mktemp("pipeline"), demo_dir)


@pytest.fixture(scope="session")
def first_run(workspace):
    """The first full tiny run: nothing served yet, so only the absolute threshold applies.
    In a process of its own, so tests/test_console.py can read the console a user sees."""
    return workspace.run(own_process=True)


def _shared_temp(config):
    """The session's temporary folder that every xdist worker shares (xdist gives each worker
    a folder inside it: xdist/workermanage.py)."""
    base = config._tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


@pytest.fixture(scope="session")
def s3(request):
    """A real S3 server (SeaweedFS) on 127.0.0.1, one for the whole session."""
    from s3_server import shared_server

    return shared_server(_shared_temp(request.config))


@pytest.fixture
def s3_env(s3, monkeypatch):
    """This process's S3 clients pointed at the session's server."""
    for name, value in s3.environment().items():
        monkeypatch.setenv(name, value)
    return s3


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):  # the controller, after every worker
        from s3_server import stop_shared_server

        stop_shared_server(_shared_temp(session.config))

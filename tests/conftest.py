"""Shared fixtures: small datasets made on the spot, and one pipeline run per scenario."""

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


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    from pipelines.demo_data import write_demo_dataset

    root = tmp_path_factory.mktemp("demo")
    write_demo_dataset(root, per_class=60, seed=7)
    return root


def run_cli(*args, timeout=900):
    """Runs `alexnet-tfx ARGS` as a user would; returns the CompletedProcess."""
    import subprocess

    return subprocess.run(["alexnet-tfx", *args], capture_output=True, text=True, timeout=timeout)


class PipelineWorkspace:
    """One output root shared by a chain of real tiny-preset pipeline runs."""

    def __init__(self, root, data):
        self.root = root
        self.data = data
        self.serving = root / "serving_model" / "alexnet"
        self.count = 0

    def run(self, *extra):
        import json

        self.count += 1
        summary_path = self.root / f"summary-{self.count}.json"
        result = run_cli(
            "run",
            "--data",
            str(self.data),
            "--preset",
            "tiny",
            "--output-root",
            str(self.root),
            "--summary-json",
            str(summary_path),
            *extra,
        )
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
    """The first full tiny run: nothing served yet, so only the absolute threshold applies."""
    return workspace.run()

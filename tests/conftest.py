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
    write_demo_dataset(root, per_class=24, seed=7)
    return root

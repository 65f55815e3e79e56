"""The `make bench` convention: figures as JSON in benchmarks/results/<script>.json, a table."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


# The CPU features that decide how fast TensorFlow trains here.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def machine() -> dict[str, Any]:
    info = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    flags = set(info.get("flags", "").split())
    return {
        "cpu": info.get("model name", platform.processor()),
        "cpu_family": info.get("cpu family"),
        "cpu_flags": [flag for flag in CPU_FLAGS if flag in flags],
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
    }


def child(script: str, *args: str) -> dict[str, Any]:
    """Runs `script` in a fresh interpreter (clean peak RSS); it prints one JSON line last."""
    result = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def node_id(config: Any, role: str) -> str:
    """The id of the node that makes an artifact role in the pipeline `config` builds."""
    from pipelines.data_facts import inspect_data
    from pipelines.pipeline import wire

    return wire(config, inspect_data(config)).sources()[role].node_id


def report(name: str, figures: dict[str, Any], details: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(
        json.dumps({**figures, "details": details, "machine": machine()}, indent=2) + "\n"
    )
    width = max(len(key) for key in figures)
    print(f"{name}: {path}")
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {shown}")

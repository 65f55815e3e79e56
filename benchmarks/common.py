"""The `make bench` convention: figures as JSON in benchmarks/results/<script>.json, a table."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": len(__import__("os").sched_getaffinity(0)),
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

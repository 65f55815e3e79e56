"""Storage faults on real small filesystems; run inside `unshare --user --map-root-user
--mount`, where this process may mount without touching the machine's mounts.

python storage_drill.py DATA ROOT EXAMPLE_GEN TRANSFORM RESULT_JSON
1. Tmpfs folders, filled to their last 32 KB, under the pipeline root's ExampleGen and
   Transform folders; `run --to Transform` (ExampleGen meets the full disk).
2. ExampleGen's space freed; the same command (now Transform meets it).
3. Transform's space freed; the same command, which completes.
4. A push into a serving directory on a read-only bind mount.
Writes each step's exit code and console output to RESULT_JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

SPARE_BYTES = 32 * 1024


def full_tmpfs(path: str) -> str:
    """Mounts a 4 MB tmpfs at PATH and fills it but SPARE_BYTES; returns the filler."""
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", path], check=True)
    stat = os.statvfs(path)
    filler = os.path.join(path, "filler")
    with open(filler, "wb") as handle:
        handle.write(b"\0" * (stat.f_bavail * stat.f_frsize - SPARE_BYTES))
    return filler


def main(data: str, root: str, example_gen: str, transform: str, result_path: str) -> None:
    from pipelines.cli import main as cli

    pipeline_root = os.path.join(root, "pipeline_root")
    fillers = [full_tmpfs(os.path.join(pipeline_root, node)) for node in (example_gen, transform)]
    command = ["run", "--data", data, "--preset", "tiny", "--output-root", root, "--to", transform]
    steps = {}
    for step, filler in (
        ("both_full", fillers[0]),
        ("transform_full", fillers[1]),
        ("freed", None),
    ):
        result = CliRunner().invoke(cli, command)
        steps[step] = {"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
        if filler:
            os.remove(filler)

    from components.atomic_pusher.executor import push_atomically

    model = os.path.join(root, "model")
    os.makedirs(model)
    with open(os.path.join(model, "saved_model.pb"), "wb") as handle:
        handle.write(b"model")
    serving = os.path.join(root, "read-only", "serving")
    os.makedirs(serving)
    mount = os.path.join(root, "read-only")
    subprocess.run(["mount", "--bind", mount, mount], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", mount], check=True)
    try:
        push_atomically(model, os.path.join(serving, "alexnet"), {})
        steps["read_only"] = {"error": None}
    except OSError as error:
        steps["read_only"] = {"error": str(error), "type": type(error).__name__}
    with open(result_path, "w") as handle:
        json.dump(steps, handle)


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Storage faults on real small filesystems, in a private mount namespace, so this process
may mount tmpfs and read-only folders without touching the machine's mounts.

main(DATA, ROOT, EXAMPLE_GEN, TRANSFORM, RESULT_JSON), in a process of its own:
1. Tmpfs folders, filled to their last 32 KB, under the pipeline root's ExampleGen and
   Transform folders; `run --to Transform` (ExampleGen meets the full disk).
2. ExampleGen's space freed; the same command (now Transform meets it).
3. Transform's space freed; the same command, which completes.
4. A push into a serving directory on a read-only bind mount.
Writes each step's exit code and console output to RESULT_JSON, or {"unsupported": why}
when the machine allows no private mount namespace.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess

from click.testing import CliRunner

SPARE_BYTES = 32 * 1024
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000


def private_mounts() -> None:
    """Moves this (single-threaded, just forked) process into mount namespace of its own;
    without root, into a user namespace too, where it is root."""
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS if uid == 0 else CLONE_NEWNS | CLONE_NEWUSER
    if ctypes.CDLL(None, use_errno=True).unshare(flags) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare: {os.strerror(error)}")
    if uid != 0:
        with open("/proc/self/setgroups", "w") as handle:
            handle.write("deny")
        with open("/proc/self/uid_map", "w") as handle:
            handle.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as handle:
            handle.write(f"0 {gid} 1")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True, capture_output=True)


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

    try:
        private_mounts()
    except (OSError, subprocess.CalledProcessError) as error:
        with open(result_path, "w") as handle:
            json.dump({"unsupported": str(error)}, handle)
        return

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

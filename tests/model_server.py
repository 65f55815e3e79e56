"""`alexnet-tfx serve` as a child process, the way a user starts it, with an HTTP client."""

import base64
import os
import shutil
import socket
import subprocess
import time

import httpx

MODEL = "alexnet"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def publish(source, base, version):
    """Copies a version in the way the Pusher does: hidden folder first, then one rename."""
    hidden = base / f".tmp-{version}"
    shutil.copytree(source, hidden)
    os.rename(hidden, base / str(version))


def serving_copy(workspace, root):
    """A serving directory of a test's own at `root`, holding the first run's version 1."""
    (root / MODEL).mkdir()
    publish(workspace.serving / "1", root / MODEL, 1)
    return root


def resave(source, target, change):
    """Version `source` saved again at `target` with its serving_default's outputs passed
    through `change` (a dict -> dict of tensors): a stand-in for a version exported by other
    code. The files beside the model (assets.extra: class names, training record, warm-up
    records) are copied as they are."""
    import tensorflow as tf

    from contract import prediction

    loaded = tf.saved_model.load(str(source))
    signature = loaded.signatures[prediction.IMAGES_SIGNATURE]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=prediction.IMAGES_INPUT)])
    def serve(images):
        return change(dict(signature(**{prediction.IMAGES_INPUT: images})))

    tf.saved_model.save(loaded, str(target), signatures={prediction.IMAGES_SIGNATURE: serve})
    shutil.copytree(source / "assets.extra", target / "assets.extra")
    return target


def b64(data):
    return base64.b64encode(data).decode()


class Server:
    def __init__(self, serving_dir, log_path, *extra):
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [
                "alexnet-tfx",
                "serve",
                "--serving-dir",
                str(serving_dir),
                "--port",
                str(self.port),
                "--poll-seconds",
                "0.5",
                "--grpc-port",
                str(self.grpc_port),
                *map(str, extra),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=60)
        deadline = time.time() + 240
        while time.time() < deadline:
            assert self.process.poll() is None, self.log_text()[-3000:]
            try:
                if self.client.get("/v2/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError("server not ready in 240 s:\n" + self.log_text()[-3000:])

    def log_text(self):
        self.log.flush()
        return open(self.log_path).read()

    def rss_bytes(self):
        for line in open(f"/proc/{self.process.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def v1(self, images, **kwargs):
        return self.client.post(
            f"/v1/models/{MODEL}:predict",
            json={"instances": [{"b64": b64(image)} for image in images]},
            **kwargs,
        )

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.client.close()
        self.log.close()

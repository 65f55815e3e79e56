"""The model server against in-process `serving_default` calls on the same model, same run.

Latency: one-image requests at concurrency 1 over HTTP (V1), against one-image in-process
calls. Throughput: one-image requests at concurrency 8, which the server's micro-batcher
groups, against in-process calls on batches of 8. Hot reload and rollback: a steady load
of one-image requests while a new version is pushed, then while `alexnet-tfx rollback`
retires it; every failed request is counted. Request logging: the concurrency-8 throughput
of a second server that logs every request (`--log-requests`, `--log-sample 1.0`), against
the plain server's, measured alternately (A B A B). The serving check: its seconds in the
pipeline run that pushed the model, next to the run's total. Head-of-line blocking: the p99
latency of one-image requests while one request of 64 black 40-megapixel PNGs is served
(a server whose --max-request-pixels admits it), against their p99 on the idle server.

The model is the canonical AlexNet (227x227, full width) pushed by a short real pipeline
run, unless --serving-dir names a serving directory that already holds one.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

MODEL = "alexnet"


def push_canonical_model(work: Path) -> tuple[Path, dict]:
    from pipelines.config import build_config
    from pipelines.demo_data import write_demo_dataset
    from pipelines.local_runner import run_pipeline

    write_demo_dataset(work / "data", per_class=40)
    config = build_config(
        "tiny",
        data=str(work / "data"),
        output_root=str(work / "out"),
        training=dict(
            image_size=227, width_multiplier=1.0, batch_size=8, epochs=1, steps_per_epoch=2
        ),
    )
    summary = run_pipeline(config)
    assert summary.pushed, "the benchmark pipeline run did not push a model"
    check = summary.components["ServingCheck"]
    run = {"serving_check_seconds": check.seconds, "run_seconds": summary.wall_seconds}
    return Path(config.serving_path), run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(serving_dir: Path, image: bytes, latency_calls: int, batches: int) -> dict:
    from serving.served_model import ServedModel

    model = ServedModel.latest(str(serving_dir), MODEL)
    for _ in range(5):
        model.predict([image])
        model.predict([image] * 8)
    latencies = []
    for _ in range(latency_calls):
        start = time.perf_counter()
        model.predict([image])
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(batches):
        model.predict([image] * 8)
    return {
        "p50_ms": 1000 * statistics.median(latencies),
        "batch8_images_per_second": 8 * batches / (time.perf_counter() - start),
    }


class Server:
    def __init__(self, serving_dir: Path, log: Path, *extra: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            [
                *("alexnet-tfx", "serve", "--serving-dir", str(serving_dir)),
                *("--port", str(self.port), *extra),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited; see {log}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.5)
        raise RuntimeError(f"server not ready; see {log}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.log.close()


def requests_from(url: str, body: bytes, count: int, out: list, stop: threading.Event) -> None:
    """Sends `count` requests (or until `stop`); appends (start, seconds, status, version).

    The load generator shares the server's two cores, so it spends as little of them as it
    can: the body is encoded once, and each client is one keep-alive http.client connection.
    """
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"content-type": "application/json"}
    sent = 0
    while sent < count and not stop.is_set():
        start = time.perf_counter()
        try:
            connection.request("POST", f"/v1/models/{MODEL}:predict", body, headers)
            response = connection.getresponse()
            answer = response.read()
            status = response.status
            version = json.loads(answer).get("model_version") if status == 200 else None
        except (OSError, http.client.HTTPException) as error:
            connection.close()  # reconnects on the next request
            status, version = repr(error), None
        out.append((start, time.perf_counter() - start, status, version))
        sent += 1
    connection.close()


def concurrent(url: str, body: bytes, clients: int, per_client: int) -> list:
    out: list = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=requests_from, args=(url, body, per_client, out, stop))
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def batch_counts(url: str) -> tuple[float, float]:
    """(images, model calls) so far, from the server's batch-size histogram."""
    values = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        for key in ("sum", "count"):
            if line.startswith(f"batch_size_images_{key}{{"):
                values[key] = float(line.split()[-1])
    return values["sum"], values["count"]


def push_copy(serving_dir: Path) -> int:
    """The newest version copied to the next number, as the Pusher does; returns it."""
    base = serving_dir / MODEL
    latest = max(int(p.name) for p in base.iterdir() if p.name.isdigit())
    hidden = base / ".tmp-bench"
    shutil.copytree(base / str(latest), hidden)
    hidden.rename(base / str(latest + 1))
    return latest + 1


def roll_back(serving_dir: Path) -> int:
    """`alexnet-tfx rollback` to the version before the newest; returns that version."""
    base = serving_dir / MODEL
    target = sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())[-2]
    subprocess.run(
        ["alexnet-tfx", "rollback", "--serving-dir", str(serving_dir), "--to-version", str(target)],
        check=True,
        capture_output=True,
    )
    return target


def switch_under_load(server: Server, body: bytes, change: Callable[[], int]) -> dict:
    """Four clients send one-image requests while `change` moves the served version."""
    out: list = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=requests_from, args=(server.url, body, 10**9, out, stop))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)
    changed = time.perf_counter()
    version = str(change())
    deadline = changed + 60
    while time.perf_counter() < deadline:
        if any(v == version and s > changed for s, _, _, v in list(out)):
            break
        time.sleep(0.1)
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join()
    switched = min((s for s, _, _, v in out if v == version and s > changed), default=None)
    span = max(s + d for s, d, _, _ in out) - min(s for s, _, _, _ in out)
    return {
        "failed_requests": sum(1 for _, _, status, _ in out if status != 200),
        "switch_seconds": None if switched is None else switched - changed,
        "requests": len(out),
        "requests_per_second": len(out) / span,
    }


def sequential(url: str, body: bytes, more: Callable[[list], bool]) -> list[float]:
    """Seconds of each one-image request, sent one after another while `more(done)`."""
    out: list = []
    while more(out):
        requests_from(url, body, 1, out, threading.Event())
    assert all(status == 200 for _, _, status, _ in out), out[:3]
    return [seconds for _, seconds, _, _ in out]


def small_behind_large(serving_dir: Path, work: Path, body: bytes, default_url: str) -> dict:
    """One-image requests while a request of 64 images of 40 megapixels each is served."""
    from PIL import Image

    side = 6324  # 39,992,976 pixels: just inside the per-image limit
    buffer = io.BytesIO()
    Image.new("RGB", (side, side)).save(buffer, "PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    large = json.dumps({"instances": [{"b64": image}] * 64}).encode()
    url = f"/v1/models/{MODEL}:predict"
    headers = {"content-type": "application/json"}
    start = time.perf_counter()
    refused = httpx.post(default_url + url, content=large, headers=headers, timeout=120)
    refused_seconds = time.perf_counter() - start

    server = Server(
        serving_dir, work / "server-large.log", "--max-request-pixels", str(64 * side * side)
    )
    try:
        sequential(server.url, body, lambda done: len(done) < 20)  # warm-up
        idle = sequential(server.url, body, lambda done: len(done) < 200)
        answer: dict = {}

        def send_large() -> None:
            began = time.perf_counter()
            response = httpx.post(server.url + url, content=large, headers=headers, timeout=600)
            answer.update(status=response.status_code, seconds=time.perf_counter() - began)

        thread = threading.Thread(target=send_large)
        thread.start()
        time.sleep(0.5)  # the large request is in
        during = sequential(server.url, body, lambda done: thread.is_alive())
        thread.join()
    finally:
        server.stop()
    return {
        "default_status": refused.status_code,
        "default_error": refused.json().get("error"),
        "default_seconds": refused_seconds,
        "large_status": answer["status"],
        "large_seconds": answer["seconds"],
        "large_body_bytes": len(large),
        "idle_p99_ms": 1000 * percentile(idle, 0.99),
        "during_p99_ms": 1000 * percentile(during, 0.99),
        "during_max_ms": 1000 * max(during),
        "during_requests": len(during),
    }


def c8_rate(url: str, body: bytes, requests: int) -> float:
    c8 = concurrent(url, body, clients=8, per_client=requests // 8)
    return len(c8) / (max(s + d for s, d, _, _ in c8) - min(s for s, _, _, _ in c8))


def main() -> None:
    from common import report

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serving-dir", help="Use the newest model already pushed here.")
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    if args.serving_dir:
        source, run = Path(args.serving_dir), {"serving_check_seconds": None, "run_seconds": None}
    else:
        source, run = push_canonical_model(work)
    serving_dir = work / "serving"  # a copy: the hot-reload step adds a version
    shutil.copytree(source, serving_dir)
    from pipelines.demo_data import write_demo_dataset

    image = write_demo_dataset(work / "images", per_class=1)[0].read_bytes()
    body = json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}]}).encode()

    local = in_process(serving_dir, image, latency_calls=args.requests, batches=args.requests // 8)
    server = Server(serving_dir, work / "server.log")
    try:
        concurrent(server.url, body, clients=8, per_client=5)  # warm-up
        c1 = concurrent(server.url, body, clients=1, per_client=args.requests)
        before = batch_counts(server.url)
        c8 = concurrent(server.url, body, clients=8, per_client=args.requests // 8)
        after = batch_counts(server.url)
        reload = switch_under_load(server, body, lambda: push_copy(serving_dir))
        rollback = switch_under_load(server, body, lambda: roll_back(serving_dir))
        large = small_behind_large(serving_dir, work, body, server.url)
        logging_server = Server(
            serving_dir,
            work / "server-logging.log",
            *("--log-requests", str(work / "requests"), "--log-sample", "1.0"),
        )
        try:
            concurrent(logging_server.url, body, clients=8, per_client=5)  # warm-up
            plain, logged = [], []
            for _ in range(2):  # A B A B
                plain.append(c8_rate(server.url, body, args.requests))
                logged.append(c8_rate(logging_server.url, body, args.requests))
        finally:
            logging_server.stop()
    finally:
        server.stop()

    latencies = [1000 * d for _, d, _, _ in c1]
    c8_span = max(s + d for s, d, _, _ in c8) - min(s for s, _, _, _ in c8)
    c8_images_per_second = len(c8) / c8_span
    report(
        "serve",
        {
            "p50_ms_http": statistics.median(latencies),
            "p99_ms_http": percentile(latencies, 0.99),
            "p50_ms_inprocess": local["p50_ms"],
            "throughput_ratio_c8": c8_images_per_second / local["batch8_images_per_second"],
            "hot_reload_failed_requests": reload["failed_requests"],
            "hot_reload_switch_seconds": reload["switch_seconds"],
            "rollback_failed_requests": rollback["failed_requests"],
            "rollback_switch_seconds": rollback["switch_seconds"],
            "request_logging_throughput_ratio_c8": sum(logged) / sum(plain),
            "serving_check_seconds": run["serving_check_seconds"],
            "small_p99_ms_behind_large": large["during_p99_ms"],
            "small_p99_ratio_behind_large": large["during_p99_ms"] / large["idle_p99_ms"],
        },
        {
            "http_c8_images_per_second": c8_images_per_second,
            "inprocess_batch8_images_per_second": local["batch8_images_per_second"],
            "c8_mean_batch_size": (after[0] - before[0]) / (after[1] - before[1]),
            "http_failed": sum(1 for _, _, s, _ in c1 + c8 if s != 200),
            "hot_reload_requests": reload["requests"],
            "hot_reload_requests_per_second": reload["requests_per_second"],
            "rollback_requests": rollback["requests"],
            "rollback_requests_per_second": rollback["requests_per_second"],
            "c8_images_per_second_plain_rounds": plain,
            "c8_images_per_second_logging_rounds": logged,
            "logged_images": len(list((work / "requests").glob("*.jpg"))),
            "pipeline_run_seconds": run["run_seconds"],
            "behind_large": large,
            "image_bytes": len(image),
            "model": str(source),
            "server_log": str(work / "server.log"),
        },
    )


if __name__ == "__main__":
    main()

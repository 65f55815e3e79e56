"""Runs a candidate in the model server (`python -m serving`), in its own process on a free
loopback port, and checks it the way clients will use it: ready in time, the signature's
answers over V1 and V2, latency within budget, and 4xx for malformed requests.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import httpx
import numpy as np

from serving.client import endpoint, predict_images

PROTOCOLS = ("v1", "v2")


@dataclasses.dataclass(frozen=True)
class ProbeSettings:
    model_name: str
    latency_budget_ms: float  # p50 of the well-formed requests
    ready_deadline_seconds: float
    tolerance: float = 1e-5  # largest difference from the signature's own probabilities


@dataclasses.dataclass
class ProbeResult:
    """What the serving check saw; `blessed` with the first failed check as `reason`."""

    blessed: bool
    reason: str
    checked: bool = True  # False: not run, e.g. the Evaluator did not bless the candidate
    ready_seconds: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0


class CheckFailed(Exception):
    """One check failed; the message says which and what was seen."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(
    serving_dir: str, model_name: str, port: int, log_path: str
) -> Iterator[subprocess.Popen]:
    """The model server for the directory, its output in `log_path`; stopped on exit."""
    command = [
        *(sys.executable, "-m", "serving"),
        *("--serving-dir", serving_dir, "--model-name", model_name, "--port", str(port)),
        *("--poll-seconds", "3600"),  # the candidate only; nothing new will appear
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(log_path: str, lines: int = 5) -> str:
    with open(log_path, errors="replace") as handle:
        return " | ".join(line.strip() for line in handle.readlines()[-lines:])


def wait_ready(
    process: subprocess.Popen, client: httpx.Client, url: str, settings: ProbeSettings, log: str
) -> float:
    started = time.monotonic()
    ready_url = f"{url}/v2/models/{settings.model_name}/ready"
    while time.monotonic() - started < settings.ready_deadline_seconds:
        if process.poll() is not None:
            raise CheckFailed(f"the server exited ({process.returncode}): {_log_tail(log)}")
        with contextlib.suppress(httpx.TransportError):
            if client.get(ready_url).status_code == 200:
                return time.monotonic() - started
        time.sleep(0.25)
    raise CheckFailed(f"not ready within {settings.ready_deadline_seconds:.0f} s")


def check_answers(
    client: httpx.Client,
    url: str,
    images: Sequence[bytes],
    reference: Callable[[bytes], Sequence[float]],
    settings: ProbeSettings,
) -> list[float]:
    """Each image alone over each protocol, against `reference`'s probabilities; returns
    the latencies in ms."""
    latencies = []
    for index, image in enumerate(images):
        try:
            probabilities = reference(image)
        except Exception as error:  # e.g. a signature without the images input
            raise CheckFailed(f"the candidate's own signature failed: {error}") from None
        for protocol in PROTOCOLS:
            started = time.perf_counter()
            try:
                (answer,) = predict_images(client, [image], url, settings.model_name, protocol)
            except (ValueError, ConnectionError) as error:
                raise CheckFailed(f"{protocol} request {index}: {error}") from None
            latencies.append((time.perf_counter() - started) * 1000)
            difference = float(np.max(np.abs(np.subtract(answer.probabilities, probabilities))))
            if difference > settings.tolerance:
                raise CheckFailed(
                    f"{protocol} answer for eval image {index} differs from the signature's by "
                    f"{difference:.2e} (tolerance {settings.tolerance:.0e})"
                )
    return latencies


def malformed_requests(model_name: str, url: str) -> dict[str, tuple[str, dict]]:
    """Requests a server must refuse with 4xx: {what: (endpoint, httpx.post arguments)}."""
    not_an_image = base64.b64encode(b"not an image").decode()
    v1, v2 = (endpoint(url, model_name, protocol) for protocol in PROTOCOLS)
    wrong_type = {"name": "images", "shape": [1], "datatype": "FP32", "data": [1.0]}
    return {
        "a body that is not JSON": (v1, {"content": b"{not json"}),
        "a V1 body without instances": (v1, {"json": {"rows": []}}),
        "a V1 instance that is not an image": (
            v1,
            {"json": {"instances": [{"b64": not_an_image}]}},
        ),
        "a V2 tensor of the wrong datatype": (v2, {"json": {"inputs": [wrong_type]}}),
    }


def check_refusals(client: httpx.Client, url: str, model_name: str) -> int:
    """Sends each malformed request; returns how many were sent."""
    requests = malformed_requests(model_name, url)
    for what, (target, arguments) in requests.items():
        status = client.post(target, **arguments).status_code
        if not 400 <= status < 500:
            raise CheckFailed(f"{what} got HTTP {status}, not 4xx")
    return len(requests)


def probe(
    serving_dir: str,
    images: Sequence[bytes],
    reference: Callable[[bytes], Sequence[float]],
    settings: ProbeSettings,
    log_path: str,
) -> ProbeResult:
    """Starts the server on `serving_dir`, runs every check, stops it; never raises a
    CheckFailed (it becomes the verdict's reason)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    result = ProbeResult(blessed=False, reason="")
    with (
        running_server(serving_dir, settings.model_name, port, log_path) as process,
        httpx.Client(timeout=60) as client,
    ):
        try:
            result.ready_seconds = wait_ready(process, client, url, settings, log_path)
            latencies = check_answers(client, url, images, reference, settings)
            result.p50_ms = float(np.percentile(latencies, 50))
            result.p99_ms = float(np.percentile(latencies, 99))
            result.requests = len(latencies) + check_refusals(client, url, settings.model_name)
            if result.p50_ms > settings.latency_budget_ms:
                raise CheckFailed(
                    f"p50 latency {result.p50_ms:.0f} ms is over the budget of "
                    f"{settings.latency_budget_ms:.0f} ms"
                )
        except CheckFailed as failure:
            result.reason = str(failure)
            return result
    result.blessed = True
    result.reason = (
        f"ready in {result.ready_seconds:.1f} s; {len(images)} eval images over V1 and V2 equal "
        f"the signature's answers; p50 {result.p50_ms:.0f} ms; malformed requests refused"
    )
    return result

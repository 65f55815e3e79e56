"""The model server's settings, with secure defaults: local-only, request limits on."""

from __future__ import annotations

import dataclasses

from contract.images import MAX_IMAGE_PIXELS


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    serving_dir: str
    model_name: str = "alexnet"
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int | None = None  # KServe's gRPC server listens on every interface: opt-in
    max_instances: int = 64
    max_body_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = MAX_IMAGE_PIXELS  # refused before decoding
    # Decoding work: all images of one request (ten of the largest), and one model call (a
    # 40-megapixel image decodes in about 0.25 s; the rest of a request waits its turn).
    max_request_pixels: int = 10 * MAX_IMAGE_PIXELS
    max_batch_pixels: int = MAX_IMAGE_PIXELS
    # Seconds a client may take to send its headers, and then its body (TF Serving's REST
    # default); a stalled client holds a connection no longer.
    request_timeout_s: float = 30.0
    max_batch_size: int = 8
    max_wait_ms: float = 10.0
    poll_seconds: float = 2.0
    version: int | None = None  # pinned (a canary); None: the newest, reloaded as pushed
    # A sample of served images and predictions, for the next span (serving/request_log.py).
    log_requests: str | None = None
    log_sample: float = 0.1
    log_max_mb: float = 1024.0

    def __post_init__(self) -> None:
        for name in (
            "max_instances",
            "max_body_bytes",
            "max_image_pixels",
            "max_request_pixels",
            "max_batch_pixels",
            "max_batch_size",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("max_wait_ms", "poll_seconds", "log_max_mb"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative, got {getattr(self, name)}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s: must be positive, got {self.request_timeout_s}")

"""The model server's settings, with secure defaults: local-only, request limits on.

Declared once: `serving/command.py` makes one flag per field, from its type, default, help
and bounds, and the bounds are checked here for any caller. A new setting is one field below.
"""

from __future__ import annotations

import dataclasses

from contract.images import MAX_IMAGE_PIXELS
from modules.cli_flags import check_bounds, setting

_MB = 1024 * 1024
_PORT = {"low": 1, "high": 65535}


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    serving_dir: str
    model_name: str = setting("alexnet")
    host: str = setting("127.0.0.1", "0.0.0.0 to serve others.")
    port: int = setting(8080, **_PORT)
    # KServe's gRPC server listens on every interface: opt-in.
    grpc_port: int | None = setting(None, "Also serve V2 over gRPC (on every interface).", **_PORT)
    max_instances: int = setting(64, "Images per request.", low=1)
    max_body_mb: float = setting(20.0, low=0, low_open=True)
    max_image_pixels: int = setting(MAX_IMAGE_PIXELS, "Refused before decoding.", low=1)
    # Decoding work: all images of one request (ten of the largest), and one model call (a
    # 40-megapixel image decodes in about 0.25 s; the rest of a request waits its turn).
    max_request_pixels: int = setting(
        10 * MAX_IMAGE_PIXELS, "Decoded pixels across one request's images.", low=1
    )
    max_batch_pixels: int = setting(
        MAX_IMAGE_PIXELS,
        "Decoded pixels per model call; larger requests take turns with others.",
        low=1,
    )
    # TF Serving's REST default; a stalled client holds a connection no longer.
    request_timeout_s: float = setting(
        30.0,
        "Seconds a client has for its headers, and again for its body.",
        flag="--request-timeout",
        low=0,
        low_open=True,
    )
    max_batch_size: int = setting(8, low=1)
    max_wait_ms: float = setting(10.0, low=0)
    poll_seconds: float = setting(2.0, low=0)
    version: int | None = setting(None, "Serve this version only (a canary); no reload.")
    answer_unknown: bool = setting(
        False,
        "Answer class_name 'unknown' (class_id -1) for an image the model flags as unlike its "
        "training images; versions pushed before the flag answer as they are.",
    )
    # A sample of served images and predictions, for the next span (serving/request_log.py).
    log_requests: str | None = setting(None, "Keep a sample of served images and predictions here.")
    log_sample: float = setting(0.1, "The share of requests kept.", low=0, high=1)
    log_max_mb: float = setting(1024.0, low=0)

    def __post_init__(self) -> None:
        check_bounds(self)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * _MB)

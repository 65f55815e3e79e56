"""Runs KServe's ModelServer for one model, bound to the configured host.

Start-up and serving are two steps, so that the caller can keep TensorFlow's start-up
output (loading, CUDA probing) off the console and report the version it loaded.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import sys
import warnings
from collections.abc import Callable

from serving.options import ServingOptions

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"


@dataclasses.dataclass(frozen=True)
class PreparedServer:
    version: int  # the model version loaded and warmed
    path: str
    serve: Callable[[], None]  # serves until SIGINT/SIGTERM


class ClientErrorsInOneLine(logging.Filter):
    """KServe's handlers (kserve/errors.py, invalid_input_handler and model_not_found_handler)
    log every refused request with its traceback; a client's mistake is one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from kserve.errors import InvalidInput, ModelNotFound

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (InvalidInput, ModelNotFound)):
            record.msg, record.args = "Refused: %s: %s", (type(error).__name__, error)
            record.exc_info = record.exc_text = None
        return True


def check_ports_free(options: ServingOptions) -> None:
    """Fails in one line when a port the server would listen on is taken: before the model
    loads, and before the console says it serves."""
    wanted = [("--port", options.host, options.port)]
    if options.grpc_port is not None:
        wanted.append(("--grpc-port", "0.0.0.0", options.grpc_port))  # KServe's: every interface
    for flag, host, port in wanted:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind((host, port))
            except OSError as error:
                raise OSError(
                    f"{flag} {port}: cannot listen on {host}:{port} ({error.strerror}); stop "
                    f"what holds the port or pass another {flag}."
                ) from None


def prepare(options: ServingOptions) -> PreparedServer:
    """Loads and warms the newest version; the server does not listen yet."""
    import kserve
    from kserve import model_server
    from kserve.protocol.dataplane import DataPlane

    from serving.header_timeout import with_timeout
    from serving.kserve_model import AlexNetModel
    from serving.request_guard import RequestGuard
    from serving.version_routes import VersionRoutes

    class LocalModelServer(kserve.ModelServer):
        # KServe 0.21.0 has no public way to choose the REST address: RESTServer builds its
        # uvicorn.Config with host="0.0.0.0" (kserve/protocol/rest/server.py), and start()
        # goes straight on to bind it. _serve() is the last step before that, so it is the
        # one place to put the configured host in.
        async def _serve(self) -> None:
            self._rest_server.config.host = options.host
            self._rest_server.config.http = with_timeout(options.request_timeout_s)
            await super()._serve()

    class ServedDataPlane(DataPlane):
        # KServe's server metadata names the model repository extension, which RequestGuard
        # refuses (kserve/protocol/dataplane.py, `metadata`): it is not offered here.
        def metadata(self) -> dict:
            return {**super().metadata(), "extensions": []}

    # The console shows our own lines (versions loaded, swapped, refused) and the access
    # log; KServe's start-up chatter is for debugging.
    ours = logging.getLogger("serving")
    if not ours.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False
    # KServe's endpoints use FastAPI's ORJSONResponse, which warns on every request.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    model = AlexNetModel(options)
    model.load()
    model_server.app.add_middleware(VersionRoutes, served_version=lambda: model.served.version)
    model_server.app.add_middleware(
        RequestGuard,
        max_body_bytes=options.max_body_bytes,
        body_timeout_s=options.request_timeout_s,
    )
    server = LocalModelServer(
        http_port=options.port,
        grpc_port=options.grpc_port or 0,
        enable_grpc=options.grpc_port is not None,
        workers=1,  # one process holds the model and the batcher
        enable_latency_logging=False,
    )
    server.dataplane = ServedDataPlane(model_registry=server.registered_models)
    # After the constructor, which applies KServe's logging config: its start-up lines and
    # per-request timing traces (/metrics has the timings) stay off the console.
    for name in ("kserve", "kserve.trace"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("kserve").addFilter(ClientErrorsInOneLine())
    return PreparedServer(model.served.version, model.served.path, lambda: server.start([model]))

"""Runs KServe's ModelServer for one model, bound to the configured host."""

from __future__ import annotations

import warnings

from serving.options import ServingOptions


def serve(options: ServingOptions) -> None:
    """Loads the newest version, then serves it until SIGINT/SIGTERM."""
    import kserve
    from kserve import model_server

    from serving.kserve_model import AlexNetModel
    from serving.request_guard import RequestGuard

    class LocalModelServer(kserve.ModelServer):
        async def _serve(self) -> None:
            # KServe's REST server always binds 0.0.0.0; bind where we were told instead.
            self._rest_server.config.host = options.host
            await super()._serve()

    # KServe's endpoints use FastAPI's ORJSONResponse, which warns on every request.
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    model = AlexNetModel(options)
    model.load()
    model_server.app.add_middleware(RequestGuard, max_body_bytes=options.max_body_bytes)
    server = LocalModelServer(
        http_port=options.port,
        grpc_port=options.grpc_port or 0,
        enable_grpc=options.grpc_port is not None,
        workers=1,  # one process holds the model and the batcher
    )
    server.start([model])

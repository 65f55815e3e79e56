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
        # KServe 0.21.0 has no public way to choose the REST address: RESTServer builds its
        # uvicorn.Config with host="0.0.0.0" (kserve/protocol/rest/server.py), and start()
        # goes straight on to bind it. _serve() is the last step before that, so it is the
        # one place to put the configured host in.
        async def _serve(self) -> None:
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

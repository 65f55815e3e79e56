"""ASGI middleware for V2's versioned routes (/v2/models/<name>/versions/<version>/...).

KServe 0.21 answers every one of them 501, "Model versioning not supported yet"
(kserve/protocol/rest/v2_endpoints.py). This server serves one version at a time, so the
served version's routes are the plain ones, and any other version is 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from serving.request_guard import ASGIApp, Receive, Scope, Send, json_error

VERSIONED = re.compile(r"^/v2/models/(?P<model>[^/]+)/versions/(?P<version>[^/]+)(?P<rest>/.*)?$")


class VersionRoutes:
    def __init__(self, app: ASGIApp, served_version: Callable[[], int]) -> None:
        self.app = app
        self.served_version = served_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = VERSIONED.match(scope["path"]) if scope["type"] == "http" else None
        if found:
            served = self.served_version()
            if found["version"] != str(served):
                await json_error(
                    send,
                    404,
                    f"version {found['version']} of {found['model']} is not served; this "
                    f"server serves version {served}",
                )
                return
            path = f"/v2/models/{found['model']}{found['rest'] or ''}"
            scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)

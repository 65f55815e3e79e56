"""ASGI middleware for V2's versioned routes (/v2/models/<name>/versions/<version>/...), and
for the `model_version` query parameter that KServe's own routes declare.

KServe 0.21 answers every one of them 501, "Model versioning not supported yet"
(kserve/protocol/rest/v2_endpoints.py). This server serves one version at a time, so the
served version's routes are the plain ones, and any other version is 404.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

from serving.request_guard import ASGIApp, Receive, Scope, Send, json_error

VERSIONED = re.compile(r"^/v2/models/(?P<model>[^/]+)/versions/(?P<version>[^/]+)(?P<rest>/.*)?$")
PLAIN = re.compile(r"^/v2/models/(?P<model>[^/]+)(?P<rest>/.*)?$")
QUERY_FIELD = "model_version"


class VersionRoutes:
    def __init__(self, app: ASGIApp, served_version: Callable[[], int]) -> None:
        self.app = app
        self.served_version = served_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2/models/"):
            await self.app(scope, receive, send)
            return
        query = urllib.parse.parse_qsl(
            scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True
        )
        asked = [value for name, value in query if name == QUERY_FIELD]
        found = VERSIONED.match(scope["path"])
        if found:
            asked.append(found["version"])
            path = f"/v2/models/{found['model']}{found['rest'] or ''}"
        else:
            found, path = PLAIN.match(scope["path"]), scope["path"]
        served = self.served_version()
        for version in asked:
            if version != str(served):
                await json_error(
                    send,
                    404,
                    f"version {version} of {found['model'] if found else 'the model'} is not "
                    f"served; this server serves version {served}",
                )
                return
        if asked:
            kept = urllib.parse.urlencode([(n, v) for n, v in query if n != QUERY_FIELD])
            scope = dict(scope, path=path, raw_path=path.encode(), query_string=kept.encode())
        await self.app(scope, receive, send)

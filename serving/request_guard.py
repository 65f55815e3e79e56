"""ASGI middleware that refuses what the server must not process: bodies over the size limit
or slower than the time limit, KServe's model repository API, and V2 binary-extension
requests KServe would fail on; a body without a Content-Type is taken as JSON.

It runs before FastAPI reads the body, so an oversized request is refused without being
held in memory, whether it declares its length or streams in chunks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving import binary_extension

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Load/unload by name would let any client unload the model or make the server read paths.
CLOSED_PREFIXES = ("/v2/repository",)
DRAIN_FACTOR = 4
BINARY_HEADER = b"inference-header-content-length"


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(CLOSED_PREFIXES):
            await json_error(send, 403, "the model repository API is disabled on this server")
            return
        headers = dict(scope["headers"])
        if b"content-type" not in headers:
            # tritonclient.http sends no Content-Type; KServe's V2 infer reads a body without
            # one as the binary extension, and FastAPI one that says JSON as JSON.
            kind = b"application/octet-stream" if BINARY_HEADER in headers else b"application/json"
            scope = dict(scope)
            scope["headers"] = [*scope["headers"], (b"content-type", kind)]
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await json_error(send, 400, "content-length: must be a whole number of bytes")
                return
            if int(declared) > self.max_body_bytes:
                await self._refuse_too_large(receive, send, int(declared))
                return
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_body_bytes:
                        unread = receive if message.get("more_body", False) else None
                        await self._refuse_too_large(unread, send, len(body))
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await json_error(
                send,
                408,
                f"request body: {len(body):,} bytes arrived in {self.body_timeout_s:g} s, not "
                "the whole body; send it at once",
                close=True,
            )
            return
        if BINARY_HEADER in headers:
            try:
                binary_extension.check(bytes(body), headers[BINARY_HEADER])
            except binary_extension.BadBinaryRequest as error:
                await json_error(send, 400, str(error))
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse_too_large(self, receive: Receive | None, send: Send, size: int) -> None:
        # Reading (not keeping) the rest lets a client that sends before it listens see the
        # 413 instead of a reset connection; past DRAIN_FACTOR times the limit, just close.
        drained = 0
        while receive is not None and drained <= DRAIN_FACTOR * self.max_body_bytes:
            message = await receive()
            drained += len(message.get("body", b""))
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                break
        await json_error(
            send,
            413,
            f"request body: at least {size:,} bytes exceed the limit of {self.max_body_bytes:,}; "
            "send fewer or smaller images per request",
        )


async def json_error(send: Send, status: int, message: str, close: bool = False) -> None:
    """Answers {"error": message}; with `close`, the server then closes the connection."""
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

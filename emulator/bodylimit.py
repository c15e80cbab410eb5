"""A ceiling on request bodies, for the supervisor's and the backend's HTTP servers.

Neither server takes more than a few bytes in a request (actions carry no payload), but
uvicorn accepts any body and an endpoint that never reads it still answers 200 to a
megabyte of POST. A pure ASGI middleware answers 413 before the application runs when the
declared ``Content-Length`` is above the limit, and stops a chunked body at the limit as it
arrives, so memory stays bounded whatever a client sends.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 64 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = DEFAULT_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers") or ():
            if key == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    await self._refuse(send)
                    return
                break
        # Bodies here are small by contract, so the whole body is taken first (at most the
        # limit) and handed to the application afterwards: an oversized chunked body is
        # refused before the application has started an answer of its own.
        pending: list[Message] = []
        received = 0
        while True:
            message = await receive()
            pending.append(message)
            if message["type"] != "http.request":
                break  # the client went away; the application will see that
            received += len(message.get("body", b""))
            if received > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "payload_too_large",
                "message": f"request bodies are limited to {self.limit} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

"""Per-request context: request id, latency metric by route template, access log.

A pure ASGI middleware (not ``BaseHTTPMiddleware``) so streaming responses (SSE, log
follow) pass through untouched and the per-request cost stays small.

* ``X-Request-ID`` is honoured when it is a sane token (≤128 of ``[A-Za-z0-9._:-]``) or
  generated, set in :data:`emulator.jsonlog.request_id` for every log line of the request,
  and echoed in the response.
* ``http_request_duration_seconds`` is labelled with the route *template*
  (``/api/instances/{name}``), never the raw path, so cardinality stays bounded;
  unmatched paths are labelled ``unmatched``.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.metrics import BackendMetrics
from emulator.jsonlog import log, request_id

logger = logging.getLogger("backend.access")

_QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: BackendMetrics, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        for key, value in scope.get("headers") or ():
            if key == b"x-request-id":
                candidate = value.decode("latin-1")
                if _SAFE_ID.match(candidate):
                    rid = candidate
                break
        rid = rid or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        rid_header = (b"x-request-id", rid.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        self.metrics.active_connections.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.active_connections.dec()
            elapsed = time.perf_counter() - started
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            key = (method, template, status)
            child = self._children.get(key)
            if child is None:
                # labels() builds and locks on every call; the set of keys is small
                # (methods x route templates x status codes), so keep the children.
                child = self.metrics.http_duration.labels(method, template, str(status))
                self._children[key] = child
            child.observe(elapsed)
            if self.access_log:
                client = scope.get("client")
                # Kubelet probes and Prometheus scrapes arrive every few seconds forever;
                # their successes are only worth a line at debug level.
                quiet = template in _QUIET_ROUTES and status < 400
                log(
                    logger,
                    logging.DEBUG if quiet else logging.INFO,
                    "request",
                    method=method,
                    path=scope.get("path"),
                    route=template,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                    client=client[0] if client else None,
                )
            request_id.reset(token)

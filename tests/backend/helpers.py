"""Shared helpers for the backend tests: settings, serving an app, reading its output."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from backend.api.app import create_app
from backend.config import Settings
from backend.fleet import Fleet
from backend.models import InstanceSource
from backend.runtime import BackendRuntime, build_runtime
from emulator.jsonlog import JsonFormatter
from tests.support.serving import free_socket, start_server

FAST = Settings(
    discovery=InstanceSource.STATIC,
    host="127.0.0.1",
    port=0,
    probe_interval=0.1,
    probe_timeout=1.0,
    breaker_threshold=2,
    breaker_reset=0.5,
    action_interval=2.0,
    thumbnail_ttl=5.0,
    sse_keepalive=0.5,
    static_reload_interval=0.1,
    local_scan_interval=0.1,
    access_log=True,
)


def settings(**changes: Any) -> Settings:
    return FAST.model_copy(update=changes)


def instance_history(fleet: Fleet, name: str, after: int = 0) -> list[Any]:
    """Every published state of instance ``name`` after sequence number ``after``."""
    from backend.models import FLEET_EVENT_ADAPTER, InstanceEvent

    out = []
    for _, chunk in fleet.events_after(after) or []:
        event = FLEET_EVENT_ADAPTER.validate_json(chunk.decode().split("data: ", 1)[1])
        if isinstance(event, InstanceEvent) and event.instance.name == name:
            out.append(event.instance)
    return out


@contextlib.asynccontextmanager
async def serve(runtime: BackendRuntime) -> AsyncIterator[str]:
    """Serves the runtime's app on a free loopback port in this loop; yields the base URL."""
    app = create_app(runtime)
    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            loop="asyncio",
            timeout_graceful_shutdown=1,
        )
    )
    task = await start_server(server, [sock])
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # should_exit only (not force_exit): the lifespan's shutdown must run so the
        # runtime stops its probes; open streams are cut after the graceful timeout.
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def backend_for(
    static_file: Path, **changes: Any
) -> AsyncIterator[tuple[BackendRuntime, httpx.AsyncClient]]:
    """A served backend with static discovery of ``static_file`` and a client for it."""
    runtime = build_runtime(settings(static_config=static_file, **changes))
    async with serve(runtime) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield runtime, client


class LoopbackOnly(httpx.AsyncBaseTransport):
    """An HTTP transport that refuses anything but loopback (as a connection error).

    Simulated pods carry private-range IPs (10.244.x.x); a test must never send traffic
    there, so backends under test that might probe them use this transport.
    """

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.blocked: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            self.blocked.append(str(request.url))
            raise httpx.ConnectError(f"test guard: {host} is not loopback", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class JsonLines(logging.Handler):
    """Collects records of one logger formatted as JSON *when emitted* (the request id
    lives in a context variable, so formatting later would lose it)."""

    def __init__(self, logger: str) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []
        self.logger = logging.getLogger(logger)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __enter__(self) -> JsonLines:
        self.logger.addHandler(self)
        self._level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

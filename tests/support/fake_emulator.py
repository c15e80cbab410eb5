"""A tiny stand-in for emulator supervisors: a *probe target*, not the thing under test.

One HTTP server answers for any number of instances: ``/health`` etc. for the default
instance, ``/i/{name}/health`` etc. for named ones, so a static file can point a thousand
instances at one process. Bodies are real :class:`emulator.models.EmulatorStatus` JSON.
The server can be stopped and started again on the same port, to drive circuit breakers
with real connection failures.

``/status/stream`` is the supervisor's own stream (``emulator.status_stream``) over each
fake instance's status; ``streams=False`` makes every instance an older supervisor without
it (404), and an instance's ``silent`` makes its stream open and then say nothing, not
even a keep-alive (a hung supervisor).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import uvicorn
import yaml
from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from emulator import sse
from emulator.models import (
    EmulatorStatus,
    OverallStatus,
    QemuFacts,
    ResetResult,
    StreamFacts,
    VideoFacts,
)
from emulator.status_stream import StatusFeed, StatusStream
from tests.support.serving import start_server

Width = Annotated[int, Query(ge=16, le=1920)]
Auth = Annotated[str | None, Header()]


def tiny_png(width: int) -> bytes:
    """A valid grey PNG of ``width`` x ``width//2`` pixels (no Pillow needed)."""
    height = max(1, width // 2)
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    buf = io.BytesIO()
    buf.write(b"\x89PNG\r\n\x1a\n")
    buf.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
    buf.write(chunk(b"IDAT", zlib.compress(raw)))
    buf.write(chunk(b"IEND", b""))
    return buf.getvalue()


_STARTED = datetime.now(UTC)
_REPORTED = frozenset({"overall_status", "fps", "reasons", "qemu_ok", "stream"})


@dataclass
class FakeInstance:
    name: str
    overall_status: OverallStatus = OverallStatus.HEALTHY
    fps: float = 25.0
    reasons: list[str] = field(default_factory=list)
    resets: int = 0
    restarts: int = 0
    thumbnails: int = 0
    health_delay: float = 0.0
    frame_ready: bool = True
    probes: int = 0
    qemu_ok: bool | None = None
    """QEMU's own health when it differs from the overall status (a running guest that
    is degraded); by default QEMU is healthy exactly when the instance is."""
    stream: StreamFacts | None = None
    silent: bool = False
    """Its status stream opens, sends the first event, then nothing (a hung supervisor)."""
    streams_opened: int = 0
    """Requests for its status stream (answered or not)."""
    # Changes are always announced (set()), so nothing needs recomputing on a timer.
    feed: StatusFeed = field(init=False)

    def __post_init__(self) -> None:
        self.feed = StatusFeed(self.status, recheck=3600)

    def __setattr__(self, key: str, value: object) -> None:
        # A change of what it reports is announced to its stream, as a supervisor's is.
        super().__setattr__(key, value)
        if key in _REPORTED and "feed" in self.__dict__:
            self.__dict__.pop("_body", None)
            self.feed.poke()

    def body(self) -> bytes:
        """The /health body, kept until what it reports changes (only its clocks would
        differ): a cheap target, so a benchmark of the backend measures the backend."""
        body = self.__dict__.get("_body")
        if body is None:
            body = self.__dict__["_body"] = self.status().model_dump_json().encode()
        return body

    def set(self, **changes: object) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def status(self) -> EmulatorStatus:
        healthy = self.overall_status is OverallStatus.HEALTHY
        return EmulatorStatus(
            instance=self.name,
            overall_status=self.overall_status,
            qemu_healthy=healthy if self.qemu_ok is None else self.qemu_ok,
            reasons=list(self.reasons),
            timestamp=datetime.now(UTC),
            supervisor_uptime_seconds=12.5,
            supervisor_started_at=_STARTED,
            qemu=QemuFacts(
                pid=4242, running=True, qmp_status="running", booted=True, started_at=_STARTED
            ),
            video=VideoFacts(
                display_active=healthy, estimated_frame_rate=self.fps, width=640, height=400
            ),
            stream=self.stream,
        )


class FakeEmulators:
    """State of every fake instance plus the HTTP server serving them."""

    def __init__(
        self,
        names: list[str] | None = None,
        token: str | None = None,
        *,
        streams: bool = True,
        heartbeat: float = 0.2,
    ) -> None:
        self.instances: dict[str, FakeInstance] = {}
        for name in names or ["fake"]:
            self.instances[name] = FakeInstance(name)
        self.default = next(iter(self.instances))
        self.token = token
        self.streams = streams
        self.heartbeat = heartbeat
        self._closing = asyncio.Event()
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.app = self._build()

    def url(self, name: str | None = None) -> str:
        """Base URL of one instance (what a static file's ``health_url`` holds)."""
        assert self.port is not None, "server not started"
        if name is None or name == self.default:
            return f"http://127.0.0.1:{self.port}"
        return f"http://127.0.0.1:{self.port}/i/{name}"

    def add(self, name: str) -> FakeInstance:
        self.instances[name] = FakeInstance(name)
        return self.instances[name]

    def _build(self) -> FastAPI:
        app = FastAPI()

        def inst(name: str | None) -> FakeInstance | None:
            return self.instances.get(name or self.default)

        async def health(name: str | None) -> Response:
            i = inst(name)
            if i is None:
                return JSONResponse({"error": "no such instance"}, status_code=404)
            i.probes += 1
            if i.health_delay:
                await asyncio.sleep(i.health_delay)
            return Response(i.body(), media_type="application/json")

        async def stream(name: str | None) -> Response:
            i = inst(name)
            if i is None:
                return JSONResponse({"error": "no such instance"}, status_code=404)
            i.streams_opened += 1
            if not self.streams:
                return JSONResponse({"detail": "Not Found"}, status_code=404)
            if i.health_delay:
                await asyncio.sleep(i.health_delay)
            if i.silent:
                return StreamingResponse(
                    self._silent(i),
                    media_type="text/event-stream",
                    headers={"X-Heartbeat-Interval": f"{self.heartbeat:g}"},
                )
            return StatusStream(i.feed, heartbeat=self.heartbeat, max_subscribers=4)

        def thumb(name: str | None, width: int) -> Response:
            i = inst(name)
            if i is None:
                return JSONResponse({"error": "no such instance"}, status_code=404)
            if not i.frame_ready:
                return JSONResponse({"message": "no frame yet"}, status_code=503)
            i.thumbnails += 1
            return Response(tiny_png(width), media_type="image/png")

        def control(name: str | None, action: str, authorization: str | None) -> Response:
            i = inst(name)
            if i is None:
                return JSONResponse({"error": "no such instance"}, status_code=404)
            if self.token is not None and authorization != f"Bearer {self.token}":
                return JSONResponse({"message": "the control token is wrong"}, status_code=403)
            if action == "reset":
                i.resets += 1
                return JSONResponse(ResetResult(ok=True, message="system_reset sent").model_dump())
            i.restarts += 1
            return JSONResponse(
                ResetResult(ok=True, message="QEMU restart requested").model_dump(),
                status_code=202,
            )

        @app.post("/_admin/{name}/status/{overall}")
        async def admin(name: str, overall: OverallStatus) -> Response:
            # Lets a benchmark in another process change what an instance reports.
            i = inst(name)
            if i is None:
                return JSONResponse({"error": "no such instance"}, status_code=404)
            i.set(overall_status=overall)
            return JSONResponse({"ok": True})

        @app.post("/_admin/churn")
        async def churn(fraction: float, interval: float = 1.0) -> Response:
            # Every ``interval`` s, ``fraction`` of the instances report another frame rate.
            if self._churn is not None:
                self._churn.cancel()
            self._churn = asyncio.get_running_loop().create_task(
                self._run_churn(fraction, interval)
            )
            return JSONResponse({"ok": True})

        @app.get("/status/stream")
        async def st0() -> Response:
            return await stream(None)

        @app.get("/i/{name}/status/stream")
        async def st1(name: str) -> Response:
            return await stream(name)

        @app.get("/health")
        async def h0() -> Response:
            return await health(None)

        @app.get("/i/{name}/health")
        async def h1(name: str) -> Response:
            return await health(name)

        @app.get("/thumbnail.png")
        async def t0(width: Width = 320) -> Response:
            return thumb(None, width)

        @app.get("/i/{name}/thumbnail.png")
        async def t1(name: str, width: Width = 320) -> Response:
            return thumb(name, width)

        @app.post("/reset")
        async def r0(authorization: Auth = None) -> Response:
            return control(None, "reset", authorization)

        @app.post("/i/{name}/reset")
        async def r1(name: str, authorization: Auth = None) -> Response:
            return control(name, "reset", authorization)

        @app.post("/restart")
        async def s0(authorization: Auth = None) -> Response:
            return control(None, "restart", authorization)

        @app.post("/i/{name}/restart")
        async def s1(name: str, authorization: Auth = None) -> Response:
            return control(name, "restart", authorization)

        return app

    _churn: asyncio.Task[None] | None = None

    async def _run_churn(self, fraction: float, interval: float) -> None:
        names = [n for n in self.instances if n != self.default]
        count = max(1, round(len(self.instances) * fraction))
        rng = random.Random(7)
        while True:
            for name in rng.sample(names, min(count, len(names))):
                i = self.instances[name]
                # A move the supervisors count as news (more than 5 % of the figure, see
                # emulator.models.rate_moved); 24 <-> 25 fps would be jitter and send nothing.
                i.set(fps=20.0 if i.fps != 20.0 else 25.0)
            await asyncio.sleep(interval)

    async def _silent(self, i: FakeInstance) -> AsyncIterator[bytes]:
        yield sse.event("status", 1, i.status().model_dump_json().encode())
        await self._closing.wait()

    async def start(self) -> None:
        """Serves on 127.0.0.1 (a free port the first time, the same port afterwards)."""
        self._closing = asyncio.Event()
        for i in self.instances.values():
            i.feed.reopen()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port or 0))
        sock.listen(512)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", loop="asyncio"
        )
        self._server = uvicorn.Server(config)
        self._task = await start_server(self._server, [sock])

    async def stop(self) -> None:
        """Stops serving: new connections are refused (a real outage)."""
        if self._server is None or self._task is None:
            return
        # Open streams end first, as a supervisor's do when it stops.
        self._closing.set()
        for i in self.instances.values():
            i.feed.close()
        if self._churn is not None:
            self._churn.cancel()
            self._churn = None
        self._server.should_exit = True
        self._server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._server = None
        self._task = None

    async def __aenter__(self) -> FakeEmulators:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def write_static(
    path: Path,
    fake: FakeEmulators,
    names: list[str] | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """A static discovery file (YAML) listing ``fake``'s instances, ``extra`` fields merged."""
    items = []
    for name in names or list(fake.instances):
        item: dict[str, Any] = {"name": name, "health_url": fake.url(name), "vnc": "127.0.0.1:5900"}
        item.update((extra or {}).get(name, {}))
        items.append(item)
    path.write_text(yaml.safe_dump({"instances": items}))
    return path


async def _serve_forever(count: int, port_file: Path, streams: bool, heartbeat: float) -> None:
    fake = FakeEmulators([f"loco-{n}" for n in range(count)], streams=streams, heartbeat=heartbeat)
    await fake.start()
    port_file.write_text(str(fake.port))
    await asyncio.Event().wait()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Serve N fake supervisors (for benchmarks)")
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--no-stream", dest="streams", action="store_false")
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument(
        "--started-ago",
        type=float,
        default=0.0,
        help="seconds since the supervisors and their QEMU started (what ages show)",
    )
    ns = parser.parse_args()
    _STARTED = datetime.now(UTC) - timedelta(seconds=ns.started_ago)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(ns.instances, ns.port_file, ns.streams, ns.heartbeat))

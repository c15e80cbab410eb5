"""The console when things go wrong: backend gone, malformed data, slow first probes
(progressive loading), thumbnail pacing.

Real processes and servers throughout: the real ``loco-backend`` and a small SSE server
that sends what a broken backend might. The Kubernetes-only view and RBAC denials are
tested against the real local cluster (tests/cluster/test_console_data.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from locotui.data.backend_client import BackendClient
from locotui.ui.app import LocoApp
from tests.support.backend import BackendProcess
from tests.support.builders import demo_instances
from tests.support.console import TOKEN, screen_text, ui_settings
from tests.support.fakefleet import FakeFleet
from tests.support.ports import free_port
from tests.support.serving import start_server
from tests.support.waiting import wait_for

NAMES = ["loco-0", "loco-1", "loco-2"]


@pytest.fixture(scope="module")
def fleet() -> Iterator[FakeFleet]:
    fakes = FakeFleet(NAMES, token=TOKEN).start()
    fakes.baseline()
    try:
        yield fakes
    finally:
        fakes.stop()


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --------------------------------------------------------------------------- backend gone


async def test_banner_while_backend_is_gone_and_recovery(fleet: FakeFleet, tmp_path: Path) -> None:
    backend = BackendProcess.static(
        fleet.static_file(tmp_path / "static.json"), token=TOKEN
    ).start()
    try:
        app = LocoApp(
            ui_settings(backend.url, thumbnails=False),
            backend=BackendClient(backend.url, token=TOKEN),
        )
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(pilot, lambda: len(app.model) == 3 and app.model.live, what="live")
            assert not app.banner.has_class("-shown")
            backend.kill()
            await wait_for(
                pilot,
                lambda: app.banner.has_class("-shown"),
                what="banner",
                describe=lambda: screen_text(app),
            )
            text = await wait_for(
                pilot,
                lambda: "reconnecting" in (t := screen_text(app)) and t,
                what="reconnect countdown",
            )
            assert "BACKEND UNREACHABLE" in text
            assert "showing last-known data" in text  # no Kubernetes here: last-known tiles
            assert len(app.grid.tiles) == 3
            backend.start()
            await wait_for(
                pilot,
                lambda: app.model.live and not app.banner.has_class("-shown"),
                timeout=30,
                what="banner gone after the backend is back",
                describe=lambda: screen_text(app),
            )
    finally:
        backend.stop()


# --------------------------------------------------------------------------- malformed data


class BrokenBackend:
    """Serves /api/events: a good snapshot, then whatever the test queues."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.port = free_port()
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> FastAPI:
        api = FastAPI()
        from backend.models import DiscoveryState, InstanceList, InstanceSource, SnapshotEvent
        from tests.support.builders import NOW

        snapshot = SnapshotEvent(
            seq=1,
            fleet=InstanceList(
                items=demo_instances(3),
                generated_at=NOW,
                revision=1,
                discovery=DiscoveryState(source=InstanceSource.KUBERNETES, ok=True, synced=True),
            ),
        )

        async def stream() -> AsyncIterator[str]:
            yield f"event: snapshot\nid: 1\ndata: {snapshot.model_dump_json()}\n\n"
            while True:
                yield await self.queue.get()

        @api.get("/api/events")
        async def events() -> StreamingResponse:
            return StreamingResponse(stream(), media_type="text/event-stream")

        return api

    async def __aenter__(self) -> BrokenBackend:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(self.app(), log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.task = await start_server(self.server, [sock])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None and self.task is not None
        self.server.should_exit = self.server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def send(self, event: str, data: str) -> None:
        self.queue.put_nowait(f"event: {event}\ndata: {data}\n\n")


async def test_malformed_instance_is_an_error_on_its_tile() -> None:
    async with BrokenBackend() as broken:
        app = LocoApp(ui_settings(broken.url, thumbnails=False), backend=BackendClient(broken.url))
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.tiles) == 3, what="snapshot shown")
            good = demo_instances(3)[1].model_dump(mode="json")
            bad = {**good, "status": "on-fire", "fps": "fast"}
            broken.send("instance", json.dumps({"type": "instance", "seq": 2, "instance": bad}))
            tile = await wait_for(
                pilot,
                lambda: next(
                    (
                        t
                        for t in app.grid.tiles
                        if t.name_shown == "loco-1" and t.has_class("-error")
                    ),
                    None,
                ),
                what="error on loco-1's tile",
                describe=lambda: screen_text(app),
            )
            text = screen_text(app)
            assert "⚠ malformed instance" in text
            assert "⚠1 bad data" in text
            assert not any(t.has_class("-error") for t in app.grid.tiles if t is not tile)
            # Garbage that is not even JSON: a link error, the console carries on.
            broken.send("instance", "{not json")
            await wait_for(pilot, lambda: "malformed" in screen_text(app), what="still running")
            # A good update clears the error.
            fixed = {**good, "status": "degraded", "status_reason": "recovered"}
            broken.send("instance", json.dumps({"type": "instance", "seq": 3, "instance": fixed}))
            await wait_for(
                pilot,
                lambda: not tile.has_class("-error") and tile.has_class("-degraded"),
                what="error cleared by a good update",
            )


# --------------------------------------------------------------------------- loading states


async def test_tiles_appear_before_health_and_fill_in(fleet: FakeFleet, tmp_path: Path) -> None:
    """Progressive loading: discovery's answer shows the tiles at once, marked as
    waiting; they fill in when the (slow) first probes come back."""
    for name in NAMES:
        fleet.set(name, health_delay=2.0)
    backend = BackendProcess.static(
        fleet.static_file(tmp_path / "static.json"), extra=["--probe-timeout", "4"], token=TOKEN
    )
    try:
        app = LocoApp(
            ui_settings(backend.url, thumbnails=False),
            backend=BackendClient(backend.url, token=TOKEN),
        )
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(pilot, lambda: app.banner.has_class("-shown"), what="banner first")
            await asyncio.to_thread(backend.start)
            await wait_for(pilot, lambda: len(app.grid.tiles) == 3, timeout=20, what="tiles")
            await wait_for(
                pilot,
                lambda: "waiting for first health probe" in screen_text(app),
                what="loading state on the tiles",
                describe=lambda: screen_text(app),
            )
            await wait_for(
                pilot,
                lambda: (
                    screen_text(app).count("● healthy") == 2 and "◐ degraded" in screen_text(app)
                ),
                timeout=20,
                what="filled in",
                describe=lambda: screen_text(app),
            )
            assert "waiting for first health probe" not in screen_text(app)
    finally:
        backend.stop()
        fleet.baseline()


async def test_thumbnails_only_visible_and_at_most_once_a_second(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    backend = BackendProcess.static(
        fleet.static_file(tmp_path / "static.json"), extra=["--thumbnail-ttl", "0.05"], token=TOKEN
    ).start()
    try:
        before = {n: fleet.get(n)["thumbnails"] for n in NAMES}
        app = LocoApp(
            ui_settings(backend.url, thumbnails=True, thumbnail_interval=1.0),
            backend=BackendClient(backend.url, token=TOKEN),
        )
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(
                pilot,
                lambda: len(app.grid.tiles) == 3 and all(t._thumb.strips for t in app.grid.tiles),
                timeout=20,
                what="pictures",
            )
            start = asyncio.get_running_loop().time()
            await asyncio.sleep(3.0)
            elapsed = asyncio.get_running_loop().time() - start
        fetched = {n: fleet.get(n)["thumbnails"] - before[n] for n in NAMES}
        for name, count in fetched.items():
            # first picture + one per second (a little slack for the round in flight)
            assert 1 <= count <= elapsed + 3, (name, count, elapsed)
        # --no-thumbnails: not a single request.
        before = {n: fleet.get(n)["thumbnails"] for n in NAMES}
        app = LocoApp(
            ui_settings(backend.url, thumbnails=False),
            backend=BackendClient(backend.url, token=TOKEN),
        )
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, lambda: len(app.grid.tiles) == 3, what="tiles")
            await asyncio.sleep(1.5)
        assert all(fleet.get(n)["thumbnails"] == before[n] for n in NAMES)
    finally:
        backend.stop()

"""The supervisor's status stream (``GET /status/stream``) without QEMU: a feed whose status
the test sets, served by uvicorn on loopback and read as a client would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from emulator.models import EmulatorStatus, OverallStatus, QemuFacts, VideoFacts
from emulator.status_stream import StatusFeed, StatusStream
from tests.support.serving import free_socket
from tests.support.sse import SseReader


@dataclass
class Facts:
    """What the fake supervisor reports; ``tick`` moves only clock fields."""

    overall: OverallStatus = OverallStatus.HEALTHY
    reasons: list[str] = field(default_factory=list)
    tick: int = 0
    fps: float | None = None
    computed: int = 0

    def status(self) -> EmulatorStatus:
        self.computed += 1
        return EmulatorStatus(
            instance="s",
            overall_status=self.overall,
            qemu_healthy=True,
            reasons=list(self.reasons),
            timestamp=datetime.now(UTC),
            supervisor_uptime_seconds=self.tick,
            qemu=QemuFacts(running=True, uptime_seconds=self.tick, qmp_latency_ms=self.tick),
            video=VideoFacts(
                frames_total=self.tick * 30,
                last_frame_age_seconds=0.1,
                estimated_frame_rate=self.fps,
            ),
        )


@contextlib.asynccontextmanager
async def serve(feed: StatusFeed, **options: float) -> AsyncIterator[str]:
    app = FastAPI()

    @app.get("/status/stream")
    async def stream() -> StatusStream:
        return StatusStream(feed, **options)  # type: ignore[arg-type]

    sock = free_socket()
    server = uvicorn.Server(
        uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", loop="asyncio")
    )
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/status/stream"
    finally:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 5)


@contextlib.asynccontextmanager
async def subscribe(url: str) -> AsyncIterator[tuple[httpx.Response, SseReader]]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(5, read=10)) as client,
        client.stream("GET", url) as resp,
    ):
        yield resp, SseReader(resp)


def test_a_revision_only_for_news() -> None:
    facts = Facts()
    feed = StatusFeed(facts.status)
    feed.refresh()
    assert feed.revision == 1
    facts.tick += 5
    feed.refresh()
    assert feed.revision == 1, "clocks and counters moved: same revision"
    facts.overall = OverallStatus.DEGRADED
    feed.refresh()
    assert feed.revision == 2
    assert feed.latest()[1].startswith(b"event: status\nid: 2\ndata: {")


def test_a_rate_is_news_when_it_moves_from_what_was_sent() -> None:
    facts = Facts(fps=30.0)
    feed = StatusFeed(facts.status)
    feed.refresh()
    for fps in (30.4, 29.6, 30.2, 31.4):
        facts.fps = fps
        feed.refresh()
    assert feed.revision == 1, "jitter within the band of the figure sent"
    facts.overall = OverallStatus.DEGRADED
    feed.refresh()
    assert feed.revision == 2
    assert b'"estimated_frame_rate":31.4' in feed.latest()[1], "an event carries what was measured"
    facts.fps = 31.8
    feed.refresh()
    assert feed.revision == 2, "compared with 31.4, the figure sent last"
    facts.fps = 0.0
    feed.refresh()
    assert feed.revision == 3, "a guest that stopped drawing"
    facts.fps = None
    feed.refresh()
    assert feed.revision == 4, "a figure that went away"


def test_nothing_is_computed_without_subscribers() -> None:
    facts = Facts()
    feed = StatusFeed(facts.status)
    for _ in range(10):
        feed.poke()
    assert facts.computed == 0


async def test_pokes_in_one_burst_compute_once() -> None:
    facts = Facts()
    feed = StatusFeed(facts.status)
    feed.subscribers = 1
    for _ in range(50):
        feed.poke()
    await asyncio.sleep(0)
    assert facts.computed == 1


async def test_first_event_then_changes_never_clocks() -> None:
    facts = Facts()
    feed = StatusFeed(facts.status, recheck=0.05)
    async with serve(feed, heartbeat=0.2) as url, subscribe(url) as (resp, reader):
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["x-heartbeat-interval"] == "0.2"
        name, ident, data = await reader.next_event()
        assert (name, ident) == ("status", 1)
        assert EmulatorStatus.model_validate_json(data).overall_status == "healthy"
        assert reader.retry == 1000

        # Only clocks move, through pokes and rechecks alike: heartbeats, no event.
        for _ in range(5):
            facts.tick += 1
            feed.poke()
            await asyncio.sleep(0.06)
        await reader.next_comment(2)
        assert feed.revision == 1

        facts.overall = OverallStatus.UNHEALTHY
        facts.reasons = ["QEMU is not running (killed by SIGKILL)"]
        feed.poke()
        name, ident, data = await reader.next_event(2)
        assert (name, ident) == ("status", 2)
        assert json.loads(data)["reasons"] == facts.reasons


async def test_a_change_reached_by_time_alone_is_sent() -> None:
    """Nobody pokes (e.g. no frame for 10 s is a matter of time): the recheck finds it."""
    facts = Facts()
    feed = StatusFeed(facts.status, recheck=0.1)
    async with serve(feed, heartbeat=5) as url, subscribe(url) as (_, reader):
        await reader.next_event()
        facts.overall = OverallStatus.DEGRADED
        name, ident, _ = await reader.next_event(2)
        assert (name, ident) == ("status", 2)


async def test_heartbeats_while_quiet() -> None:
    feed = StatusFeed(Facts().status)
    async with serve(feed, heartbeat=0.1) as url, subscribe(url) as (_, reader):
        await reader.next_event()
        started = asyncio.get_running_loop().time()
        for _ in range(3):
            assert await reader.next_comment(2) == ": keep-alive"
        assert asyncio.get_running_loop().time() - started < 2


async def test_subscribers_are_capped_and_counted_back() -> None:
    feed = StatusFeed(Facts().status)
    async with serve(feed, heartbeat=0.1, max_subscribers=2) as url:
        async with subscribe(url) as (_, one), subscribe(url) as (_, two):
            await one.next_event()
            await two.next_event()
            async with httpx.AsyncClient(timeout=5) as client:
                refused = await client.get(url)
            assert refused.status_code == 503
            assert refused.headers["retry-after"]
            assert feed.subscribers == 2
        async with asyncio.timeout(5):
            while feed.subscribers:  # the server notices the closed connections
                await asyncio.sleep(0.02)
        async with subscribe(url) as (_, three):
            await three.next_event()


async def test_a_slow_subscriber_is_dropped_not_buffered() -> None:
    """A subscriber whose writes stop draining is dropped after the write timeout; nothing
    is queued for it meanwhile (events are state: the next write would be the latest)."""
    facts = Facts()
    feed = StatusFeed(facts.status)
    sent: list[bytes] = []
    stuck = asyncio.Event()

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])
            if len(sent) > 1:
                await stuck.wait()  # the peer's window is full: this write never completes

    async def receive() -> dict:
        await asyncio.Event().wait()
        return {}

    response = StatusStream(feed, heartbeat=0.05, write_timeout=0.2)
    call = asyncio.ensure_future(response({"type": "http"}, receive, send))
    for overall in (OverallStatus.DEGRADED, OverallStatus.HEALTHY) * 20:
        facts.overall = overall
        feed.poke()
        await asyncio.sleep(0.005)
    async with asyncio.timeout(3):
        await call
    assert feed.subscribers == 0
    assert len(sent) == 2, "the first event, then one write that never drained"


@pytest.mark.parametrize("heartbeat", ["0", "301", "x"])
def test_heartbeat_setting_is_checked(heartbeat: str, tmp_path) -> None:
    from emulator.cli import _parser, settings_from
    from emulator.errors import SettingsError

    args = _parser().parse_args(
        ["run", "--disk", "d", "--state-dir", str(tmp_path), "--status-heartbeat", heartbeat]
    )
    with pytest.raises(SettingsError, match="heartbeat"):
        settings_from(args, env={})


def test_the_stream_rate_has_the_same_band() -> None:
    from emulator.models import with_published_rates
    from tests.support.builders import instance, with_stream

    health = with_stream(instance("a")).health
    assert health is not None and health.stream is not None
    sent = health.stream.frames_per_second
    assert sent == 24.0

    def at(fps: float | None) -> EmulatorStatus:
        assert health is not None and health.stream is not None
        stream = health.stream.model_copy(update={"frames_per_second": fps})
        return health.model_copy(update={"stream": stream})

    held = with_published_rates(health, at(24.9))
    assert held.stream is not None and held.stream.frames_per_second == 24.0
    assert with_published_rates(health, at(24.9)).video == health.video
    moved = with_published_rates(health, at(26.0))
    assert moved.stream is not None and moved.stream.frames_per_second == 26.0
    gone = with_published_rates(health, at(None))
    assert gone.stream is not None and gone.stream.frames_per_second is None

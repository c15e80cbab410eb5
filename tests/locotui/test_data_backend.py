"""BackendClient and FleetFeeds against a real ``loco-backend`` process (static discovery)
probing real HTTP servers that serve EmulatorStatus JSON (tests/support/fake_emulator)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backend.models import (
    InstanceEvent,
    InstanceStatus,
    RemediationEvent,
    RemediationStatus,
    SnapshotEvent,
)
from emulator.models import OverallStatus
from locotui.data.backend_client import BackendClient, MalformedEvent
from locotui.data.errors import (
    BadResponse,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    Unreachable,
)
from locotui.data.feeds import FleetFeeds
from locotui.data.fleet import FleetModel, Source
from locotui.data.link import Backoff, LinkChange, LinkState
from locotui.data.remediation import OFF
from tests.support.backend import CONSOLE_DATA_ARGS, BackendProcess
from tests.support.fake_emulator import FakeEmulators, write_static
from tests.support.ports import free_port
from tests.support.waiting import eventually, wait_until

FAST = Backoff(initial=0.05, maximum=0.3)


@pytest.fixture
async def fake() -> AsyncIterator[FakeEmulators]:
    emus = FakeEmulators(["loco-0", "loco-1"], token="sekrit")
    async with emus:
        yield emus


@pytest.fixture
async def backend(tmp_path: Path, fake: FakeEmulators) -> AsyncIterator[BackendProcess]:
    static = write_static(tmp_path / "static.yaml", fake)
    async with BackendProcess.static(static, token="sekrit", timing=CONSOLE_DATA_ARGS) as proc:
        yield proc


async def next_matching(
    events: AsyncIterator[Any], predicate: Any, timeout: float = 10.0, seen: list[Any] | None = None
) -> Any:
    async with asyncio.timeout(timeout):
        async for item in events:
            if seen is not None:
                seen.append(item)
            if predicate(item):
                return item
    raise AssertionError("stream ended")


async def test_reads_etag_thumbnail_and_not_found(backend: BackendProcess) -> None:
    async with BackendClient(backend.url) as client:
        first = await client.list_instances()
        assert first.changed and first.etag
        assert [i.name for i in first.fleet.items] == ["loco-0", "loco-1"]
        inst = await client.get_instance("loco-0")
        assert inst.name == "loco-0" and inst.health_url
        png = await client.thumbnail("loco-0", width=64)
        assert png.startswith(b"\x89PNG")
        with pytest.raises(NotFound, match="no instance named 'nope'"):
            await client.get_instance("nope")
        health = await client.health()
        assert health.instances == 2


async def test_etag_not_modified_returns_the_cached_list(backend: BackendProcess) -> None:
    async with BackendClient(backend.url) as client:
        # Probes may change the fleet between two calls; an unchanged pair comes quickly.
        async with asyncio.timeout(10):
            while True:
                a = await client.list_instances()
                b = await client.list_instances()
                if not b.changed:
                    break
        assert b.fleet is a.fleet and b.etag == a.etag


async def test_mutations_need_the_token_and_are_rate_limited(
    backend: BackendProcess, fake: FakeEmulators
) -> None:
    async with BackendClient(backend.url) as anon:
        with pytest.raises(Unauthorized, match=r"missing bearer token.*LOCOTUI_CONTROL_TOKEN"):
            await anon.reset("loco-0")
    async with BackendClient(backend.url, token="wrong") as wrong:
        with pytest.raises(Forbidden, match="the control token is wrong"):
            await wrong.reset("loco-0")
    async with BackendClient(backend.url, token="sekrit") as client:
        result = await client.reset("loco-0")
        assert result.ok and result.action == "reset" and fake.instances["loco-0"].resets == 1
        with pytest.raises(RateLimited) as err:
            await client.reset("loco-0")
        assert err.value.retry_after is not None and err.value.retry_after >= 1
        assert "try again" in str(err.value)
        restarted = await client.restart("loco-1")
        assert restarted.ok and fake.instances["loco-1"].restarts == 1
        with pytest.raises(NotFound):
            await client.restart("ghost")


async def test_mutations_refused_when_the_backend_has_no_token(
    tmp_path: Path, fake: FakeEmulators
) -> None:
    static = write_static(tmp_path / "s.yaml", fake)
    async with (
        BackendProcess.static(static, timing=CONSOLE_DATA_ARGS) as proc,
        BackendClient(proc.url, token="x") as client,
    ):
        with pytest.raises(Forbidden, match="mutations are disabled"):
            await client.reset("loco-0")


async def test_unreachable_backend_is_one_clear_line() -> None:
    port = free_port()
    async with BackendClient(f"http://127.0.0.1:{port}", timeout=1) as client:
        with pytest.raises(Unreachable) as err:
            await client.list_instances()
    assert str(err.value) == (
        f"backend http://127.0.0.1:{port} unreachable: "
        "connection refused (is loco-backend running?)"
    )


async def test_logs_tail_and_follow(tmp_path: Path, fake: FakeEmulators) -> None:
    log = tmp_path / "loco-0.log"
    log.write_text("".join(f'{{"level":"info","message":"line {i}"}}\n' for i in range(10)))
    static = write_static(tmp_path / "s.yaml", fake, extra={"loco-0": {"log_file": str(log)}})
    async with (
        BackendProcess.static(static, timing=CONSOLE_DATA_ARGS) as proc,
        BackendClient(proc.url) as client,
    ):
        lines = await client.logs("loco-0", tail=3)
        assert lines == [f'{{"level":"info","message":"line {i}"}}' for i in (7, 8, 9)]
        follow = client.follow_logs("loco-0", tail=1)
        got: list[str] = []
        async with asyncio.timeout(10):
            got.append(await anext(follow))
            with log.open("a") as fh:
                fh.write("plain new line\n")
            got.append(await anext(follow))
        await follow.aclose()
        assert got == ['{"level":"info","message":"line 9"}', "plain new line"]
        with pytest.raises(NotFound, match="no registered log file"):
            await client.logs("loco-1")


async def test_summary_events_feed_the_model(backend: BackendProcess, fake: FakeEmulators) -> None:
    """The console's stream: the summary form, applied to the model like the full one."""
    from backend.models import SummaryEvent, SummarySnapshotEvent

    model = FleetModel()
    async with BackendClient(backend.url) as client:
        events = client.events(backoff=Backoff(initial=0.05, maximum=0.3), summary=True)
        snap = await next_matching(events, lambda e: isinstance(e, SummarySnapshotEvent))
        model.apply_event(snap)
        assert [e.name for e in model.view()] == ["loco-0", "loco-1"]
        fake.instances["loco-1"].overall_status = OverallStatus.UNHEALTHY
        fake.instances["loco-1"].reasons = ["display inactive"]
        changed = await next_matching(
            events,
            lambda e: (
                isinstance(e, SummaryEvent)
                and e.instance.name == "loco-1"
                and e.instance.status is InstanceStatus.UNHEALTHY
            ),
        )
        model.apply_event(changed)
        entry = model.get("loco-1")
        assert entry is not None and entry.status is InstanceStatus.UNHEALTHY
        assert entry.summary.reason == "display inactive" and entry.full is None
        full = await client.get_instance("loco-1")
        model.set_full(full)
        assert entry.full_current and entry.full is not None and entry.full.health is not None
        await events.aclose()


async def test_events_snapshot_changes_and_reconnect_after_restart(
    backend: BackendProcess, fake: FakeEmulators
) -> None:
    async with BackendClient(backend.url) as client:
        events = client.events(backoff=Backoff(initial=0.05, maximum=0.3), idle_timeout=5)
        seen: list[Any] = []
        snap = await next_matching(events, lambda e: isinstance(e, SnapshotEvent), seen=seen)
        assert [i.name for i in snap.fleet.items] == ["loco-0", "loco-1"]
        states = [e.state for e in seen if isinstance(e, LinkChange)]
        assert states == [LinkState.CONNECTING, LinkState.CONNECTED]

        fake.instances["loco-1"].overall_status = OverallStatus.UNHEALTHY
        fake.instances["loco-1"].reasons = ["display inactive"]
        changed = await next_matching(
            events,
            lambda e: (
                isinstance(e, InstanceEvent)
                and e.instance.name == "loco-1"
                and e.instance.status is InstanceStatus.UNHEALTHY
            ),
        )
        assert changed.instance.status_reason == "display inactive"

        # The backend dies abruptly and comes back on the same port.
        await backend.akill()
        lost = await next_matching(
            events, lambda e: isinstance(e, LinkChange) and e.state is LinkState.RECONNECTING
        )
        assert lost.error and lost.retry_in is not None and 0 < lost.retry_in <= 0.3
        seen = []
        await next_matching(
            events,
            lambda e: (
                isinstance(e, LinkChange) and e.state is LinkState.RECONNECTING and e.attempt >= 2
            ),
            seen=seen,
        )
        assert any(
            "connection refused" in (e.error or "") for e in seen if isinstance(e, LinkChange)
        )
        await backend.astart()
        snap = await next_matching(events, lambda e: isinstance(e, SnapshotEvent))
        assert {i.name for i in snap.fleet.items} == {"loco-0", "loco-1"}
        await events.aclose()


async def test_feeds_keep_the_fleet_model_current(
    backend: BackendProcess, fake: FakeEmulators
) -> None:
    fleet = FleetModel(max_rate=50)
    async with BackendClient(backend.url) as client:
        feeds = FleetFeeds(fleet, backend=client, backoff=lambda: Backoff(0.05, 0.3))
        await feeds.start()
        try:
            await eventually(lambda: fleet.live and len(fleet) == 2, what="connected fleet")
            fake.instances["loco-0"].overall_status = OverallStatus.DEGRADED
            await eventually(
                lambda: fleet.get("loco-0").status is InstanceStatus.DEGRADED,  # type: ignore[union-attr]
                what="degraded loco-0",
            )
            await backend.astop()
            await eventually(lambda: not fleet.live, what="link lost")
            link = fleet.links[Source.BACKEND]
            assert link.error and link.state in (LinkState.RECONNECTING, LinkState.CONNECTING)
            # Last-known data stays visible while disconnected.
            assert len(fleet) == 2
            await backend.astart()
            await eventually(lambda: fleet.live, what="reconnected")
            assert fleet.links[Source.BACKEND].error is None
        finally:
            await feeds.stop()
        assert fleet.links[Source.BACKEND].state is LinkState.STOPPED


# --------------------------------------------------------------------------- remediation

# The policy on, quick to act on the test image (the fake supervisors' profile).
REMEDIATION = [
    "--remediation", "--remediation-cooldown", "0.1", "--remediation-thresholds",
    "testimage.bad_for=0.3,testimage.watch_reset=60,testimage.recovered_for=0.3",
]  # fmt: skip


async def test_remediation_state_pause_resume_and_timeline(
    tmp_path: Path, fake: FakeEmulators
) -> None:
    static = write_static(tmp_path / "s.yaml", fake)
    async with BackendProcess.static(
        static, token="sekrit", extra=REMEDIATION, timing=CONSOLE_DATA_ARGS
    ) as proc:
        async with BackendClient(proc.url) as anon:
            state = await anon.remediation()
            assert state.enabled and state.leader and not state.paused
            with pytest.raises(Unauthorized, match="LOCOTUI_CONTROL_TOKEN"):
                await anon.pause_remediation(60)
        async with BackendClient(proc.url, token="wrong") as wrong:
            with pytest.raises(Forbidden, match="the control token is wrong"):
                await wrong.resume_remediation()
        async with BackendClient(proc.url, token="sekrit") as client:
            paused = await client.pause_remediation(60, "moving racks")
            assert paused.paused and paused.paused_reason == "moving racks"
            assert paused.paused_until is not None and paused.paused_by == "127.0.0.1"
            assert (await client.remediation()).paused
            forever = await client.pause_remediation()  # no body fields: until resumed
            assert forever.paused and forever.paused_until is None
            assert not (await client.resume_remediation()).paused
            timeline = await wait_until(
                lambda: client.timeline("loco-0"),
                lambda t: t[-1].text == "healthy",
                deadline=10,
                what="the first probe on the timeline",
            )
            assert [e.kind for e in timeline] == ["status"] * len(timeline), timeline
            assert timeline[0].text == "unknown: not probed yet" and timeline[-1].by is None
            with pytest.raises(NotFound, match="no instance named 'ghost'"):
                await client.timeline("ghost")


async def test_remediation_off_or_missing_reads_as_off(
    backend: BackendProcess,
) -> None:
    async with BackendClient(backend.url, token="sekrit") as client:
        assert await client.remediation() == OFF
        with pytest.raises(ServerError, match=r"off on this backend.*--remediation"):
            await client.pause_remediation(15)
    # A backend older than the feature: no such route at all.
    missing = raw_server(
        b'{"detail":"Not Found"}', status="404 Not Found", ctype="application/json"
    )
    async with missing as url, BackendClient(url, token="t", timeout=1) as client:
        assert await client.remediation() == OFF
        with pytest.raises(NotFound, match="this backend has no automatic recovery"):
            await client.resume_remediation()


async def test_feeds_read_the_policy_on_connect_and_see_a_pause_end_by_itself(
    tmp_path: Path, fake: FakeEmulators
) -> None:
    static = write_static(tmp_path / "s.yaml", fake)
    fleet = FleetModel(max_rate=50)
    async with (
        BackendProcess.static(
            static, token="sekrit", extra=REMEDIATION, timing=CONSOLE_DATA_ARGS
        ) as proc,
        BackendClient(proc.url, token="sekrit") as client,
    ):
        # Nothing but the connect and the pause's end may cause a read here.
        feeds = FleetFeeds(fleet, backend=client, remediation_every=300, remediation_settle=0.05)
        await feeds.start()
        try:
            await eventually(lambda: fleet.remediation is not None, what="the policy read")
            assert fleet.remediation.enabled and not fleet.remediation.paused  # type: ignore[union-attr]
            # Paused elsewhere (another console) for about a second: the next read is due
            # just after it ends, not 300 s later.
            paused = await client.pause_remediation(0.02, "short")
            feeds.refresh_remediation()
            await eventually(lambda: fleet.remediation == paused, what="the pause seen")
            await eventually(
                lambda: not fleet.remediation.paused,  # type: ignore[union-attr]
                timeout=8,
                what="the pause's end seen without any event",
            )
        finally:
            await feeds.stop()


class BurstBackend:
    """A backend whose stream is a snapshot and then a burst of decisions, and whose
    policy reads are counted."""

    base_url = "http://burst"

    def __init__(self, decisions: int) -> None:
        self.decisions = decisions
        self.reads = 0

    async def events(self, **_: Any) -> AsyncIterator[Any]:
        yield LinkChange(LinkState.CONNECTING)
        yield LinkChange(LinkState.CONNECTED)
        yield SnapshotEvent.model_validate_json(SNAPSHOT.split(b"data: ")[1])
        for seq in range(self.decisions):
            yield RemediationEvent(
                seq=seq + 2, instance=f"loco-{seq}", action="reset", reason="display is blank",
                outcome="acted", rung="reset", at="2024-01-01T00:00:00Z",
            )  # fmt: skip
        await asyncio.Event().wait()

    async def remediation(self) -> RemediationStatus:
        self.reads += 1
        return OFF.model_copy(update={"enabled": True})


async def test_a_burst_of_decisions_is_one_read_of_the_policy() -> None:
    fleet = FleetModel(max_rate=50)
    backend = BurstBackend(decisions=40)
    feeds = FleetFeeds(fleet, backend=backend, remediation_every=300, remediation_settle=0.2)  # type: ignore[arg-type]
    await feeds.start()
    try:
        await eventually(lambda: fleet.decisions_total == 40, what="the burst applied")
        await eventually(lambda: fleet.remediation is not None, what="the policy read")
        await asyncio.sleep(0.5)  # anything still pending would have read by now
        # The connect and the 40 decisions arrive within one settle interval: one read.
        assert backend.reads == 1, backend.reads
    finally:
        await feeds.stop()


# --------------------------------------------------------------------------- raw SSE server


@contextlib.asynccontextmanager
async def raw_server(
    body: bytes, *, status: str = "200 OK", ctype: str = "text/event-stream"
) -> AsyncIterator[str]:
    """A tiny real HTTP server answering every request with ``body``; an event stream is
    then kept open (silent), anything else is closed after the body."""
    stream = ctype == "text/event-stream"
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await reader.readuntil(b"\r\n\r\n")
            length = "" if stream else f"content-length: {len(body)}\r\nconnection: close\r\n"
            head = f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\n{length}\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
            if stream:
                await reader.read()  # until the client goes away
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for w in writers:
            w.close()
        await server.wait_closed()


SNAPSHOT = (
    b'event: snapshot\nid: 1\ndata: {"type":"snapshot","seq":1,"fleet":{"items":[],'
    b'"generated_at":"2024-01-01T00:00:00Z","revision":1,"discovery":{"source":"static","ok":true}}}\n\n'
)


async def test_malformed_events_are_yielded_not_raised_and_silence_reconnects() -> None:
    body = SNAPSHOT + b"event: instance\ndata: {broken\n\n" + b": keep-alive\n\n"
    async with raw_server(body) as url, BackendClient(url) as client:
        events = client.events(backoff=Backoff(initial=0.05, maximum=0.1), idle_timeout=0.5)
        seen: list[Any] = []
        bad = await next_matching(events, lambda e: isinstance(e, MalformedEvent), seen=seen)
        assert bad.event == "instance" and "broken" in bad.data
        assert any(isinstance(e, SnapshotEvent) for e in seen)
        lost = await next_matching(
            events, lambda e: isinstance(e, LinkChange) and e.state is LinkState.RECONNECTING
        )
        assert "silent for 0.5s" in (lost.error or "")
        await events.aclose()


async def test_a_non_sse_answer_and_http_errors_are_reported() -> None:
    async with raw_server(b"<html>", ctype="text/html") as url, BackendClient(url) as client:
        events = client.events(reconnect=False)
        with pytest.raises(Unreachable, match="backend sent text/html"):
            async for _ in events:
                pass
    body = b'{"error":"internal_error","message":"boom"}'
    error_500 = raw_server(body, status="500 Internal Server Error", ctype="application/json")
    async with error_500 as url, BackendClient(url, timeout=1) as client:
        with pytest.raises(ServerError, match="HTTP 500: boom"):
            await client.get_instance("x")
    wrong_shape = raw_server(b'{"items": 3}', ctype="application/json")
    async with wrong_shape as url, BackendClient(url, timeout=1) as client:
        with pytest.raises(BadResponse, match="unexpected answer from the backend"):
            await client.list_instances()


async def test_unauthorized_stream_fails_without_retrying() -> None:
    body = b'{"error":"unauthorized","message":"no"}'
    refused = raw_server(body, status="401 Unauthorized", ctype="application/json")
    async with refused as url, BackendClient(url) as client:
        items = [item async for item in client.events(backoff=FAST)]
    assert items[-1].state is LinkState.FAILED and "refused" in items[-1].error

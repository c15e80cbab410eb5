"""The HTTP API against a served backend whose static fleet points at fake supervisors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from backend.models import (
    FLEET_EVENT_ADAPTER,
    ActionResult,
    BackendHealth,
    ErrorBody,
    Instance,
    InstanceEvent,
    InstanceList,
    InstanceSource,
    InstanceStatus,
    InstanceSummaryList,
    ReadinessReport,
    RemovedEvent,
    SnapshotEvent,
    StreamSummary,
)
from backend.runtime import build_runtime
from emulator.models import OverallStatus, StreamFacts, StreamState
from tests.backend.helpers import JsonLines, backend_for, serve, settings
from tests.support.fake_emulator import FakeEmulators, write_static
from tests.support.sse import SseReader
from tests.support.waiting import eventually

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def fake() -> FakeEmulators:
    async with FakeEmulators(["loco-0", "loco-1", "loco-2"], token=TOKEN) as f:
        yield f  # type: ignore[misc]


def healthy(runtime: object, n: int = 3) -> bool:
    items = runtime.fleet.instances()  # type: ignore[attr-defined]
    return len(items) == n and all(i.status is InstanceStatus.HEALTHY for i in items)


def error(resp: httpx.Response, status: int, code: str) -> ErrorBody:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = ErrorBody.model_validate_json(resp.content)
    assert body.error == code and body.message
    return body


async def test_list_get_and_etag(tmp_path: Path, fake: FakeEmulators) -> None:
    async with backend_for(write_static(tmp_path / "f.yaml", fake)) as (runtime, client):
        await eventually(lambda: healthy(runtime), fleet=runtime.fleet, what="3 healthy")
        resp = await client.get("/api/instances")
        assert resp.status_code == 200
        fleet = InstanceList.model_validate_json(resp.content)
        assert [i.name for i in fleet.items] == ["loco-0", "loco-1", "loco-2"]
        assert fleet.discovery.synced and fleet.discovery.ok
        one = fleet.items[0]
        assert one.source == "static" and one.fps == 25.0 and one.health is not None
        assert one.health_url == fake.url("loco-0") and one.vnc == "127.0.0.1:5900"
        assert one.breaker.state == "closed" and not one.stale

        # ETag / If-None-Match: 304 while nothing changes; 200 with a new tag after a change
        runtime.prober.enabled = False
        await runtime.prober.close()
        resp = await client.get("/api/instances")
        etag = resp.headers["etag"]
        again = await client.get("/api/instances", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        listed = await client.get("/api/instances", headers={"If-None-Match": f'"x", W/{etag}'})
        assert listed.status_code == 304
        runtime.fleet.probe_failed("loco-1", "synthetic")
        changed = await client.get("/api/instances", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag

        resp = await client.get("/api/instances/loco-1")
        inst = Instance.model_validate_json(resp.content)
        assert inst.name == "loco-1" and inst.status is InstanceStatus.DEGRADED and inst.stale
        error(await client.get("/api/instances/nope"), 404, "not_found")
        error(await client.get("/no/such/route"), 404, "not_found")
        error(await client.delete("/api/instances"), 405, "method_not_allowed")


async def test_stream_facts_pass_through(tmp_path: Path, fake: FakeEmulators) -> None:
    stream = StreamFacts(
        state=StreamState.PLAYING,
        width=1024,
        height=768,
        max_fps=30,
        frames_per_second=24.5,
        dropped={"encode": 3},
        destination="10.0.0.9:5004",
        viewers=2,
    )
    fake.instances["loco-1"].stream = stream
    async with backend_for(write_static(tmp_path / "f.yaml", fake)) as (runtime, client):
        await eventually(lambda: healthy(runtime), fleet=runtime.fleet, what="3 healthy")
        inst = Instance.model_validate_json((await client.get("/api/instances/loco-1")).content)
        assert inst.health is not None and inst.health.stream == stream
        other = Instance.model_validate_json((await client.get("/api/instances/loco-0")).content)
        assert other.health is not None and other.health.stream is None
        metrics = (await client.get("/metrics")).text
        assert 'loco_backend_instance_stream_fps{instance="loco-1"} 24.5' in metrics
        assert 'loco_backend_instance_stream_fps{instance="loco-0"}' not in metrics
        # The summary list carries what a tile's stream mark needs, no more.
        summary = await client.get("/api/instances", params={"view": "summary"})
        by_name = {
            i.name: i for i in InstanceSummaryList.model_validate_json(summary.content).items
        }
        assert by_name["loco-1"].stream == StreamSummary(state=StreamState.PLAYING, fps=24.5)
        assert by_name["loco-0"].stream is None


async def test_summary_list_is_small_and_has_its_own_etag(
    tmp_path: Path, fake: FakeEmulators
) -> None:
    async with backend_for(write_static(tmp_path / "f.yaml", fake)) as (runtime, client):
        await eventually(lambda: healthy(runtime), fleet=runtime.fleet, what="3 healthy")
        runtime.prober.enabled = False
        await runtime.prober.close()
        full = await client.get("/api/instances")
        summary = await client.get("/api/instances", params={"view": "summary"})
        assert summary.status_code == 200
        listed = InstanceSummaryList.model_validate_json(summary.content)
        assert [i.name for i in listed.items] == ["loco-0", "loco-1", "loco-2"]
        assert listed.revision == InstanceList.model_validate_json(full.content).revision
        one = listed.items[0]
        assert one.status is InstanceStatus.HEALTHY and one.fps == 25.0 and not one.stale
        assert one.restarts == 0 and one.breaker == "closed"
        raw = json.loads(summary.content)["items"][0]
        assert "stale" not in raw and "breaker" not in raw, "defaults are left out"
        assert len(summary.content) * 5 < len(full.content)
        etag = summary.headers["etag"]
        assert etag != full.headers["etag"], "one tag per form"
        same = await client.get("/api/instances?view=summary", headers={"If-None-Match": etag})
        assert same.status_code == 304
        other = await client.get("/api/instances", headers={"If-None-Match": etag})
        assert other.status_code == 200, "a summary's tag does not match the full list"
        runtime.fleet.probe_failed("loco-1", "synthetic")
        changed = await client.get("/api/instances?view=summary", headers={"If-None-Match": etag})
        assert changed.status_code == 200
        item = InstanceSummaryList.model_validate_json(changed.content).items[1]
        assert item.status is InstanceStatus.DEGRADED and item.stale
        assert item.reason and "synthetic" in item.reason
        error(await client.get("/api/instances?view=tiny"), 422, "invalid_request")


async def test_the_summary_event_stream(tmp_path: Path, fake: FakeEmulators) -> None:
    from backend.models import SUMMARY_EVENT_ADAPTER, SummaryEvent, SummarySnapshotEvent

    async with backend_for(write_static(tmp_path / "f.yaml", fake)) as (runtime, client):
        await eventually(lambda: healthy(runtime), fleet=runtime.fleet, what="3 healthy")
        runtime.prober.enabled = False
        await runtime.prober.close()
        params = {"view": "summary"}
        async with client.stream("GET", "/api/events", params=params, timeout=30) as events:
            reader = SseReader(events)
            kind, _, data = await reader.next_event()
            snapshot = SUMMARY_EVENT_ADAPTER.validate_json(data)
            assert kind == "summary_snapshot" and isinstance(snapshot, SummarySnapshotEvent)
            assert len(snapshot.fleet.items) == 3 and snapshot.fleet.items[0].fps == 25.0
            runtime.fleet.probe_failed("loco-2", "synthetic")
            kind, seq, data = await reader.next_event()
            event = SUMMARY_EVENT_ADAPTER.validate_json(data)
            assert kind == "summary" and isinstance(event, SummaryEvent)
            assert event.instance.name == "loco-2" and event.instance.stale
            assert seq == runtime.fleet.seq
        error(await client.get("/api/events?view=tiny"), 422, "invalid_request")


def test_summary_of_a_pod_instance() -> None:
    from datetime import UTC, datetime

    from backend.models import BreakerInfo, BreakerState, InstanceSource, PodFacts

    started = datetime(2026, 1, 1, tzinfo=UTC)
    inst = Instance(
        name="loco-0",
        source=InstanceSource.KUBERNETES,
        status=InstanceStatus.UNHEALTHY,
        status_reason="supervisor unreachable, circuit open",
        pod=PodFacts(phase="Running", ready=False, restarts=2, node="n1", start_time=started),
        breaker=BreakerInfo(state=BreakerState.OPEN, since=started),
        stale=True,
    )
    s = inst.summary()
    assert (s.phase, s.ready, s.restarts, s.node, s.started_at) == (
        "Running",
        False,
        2,
        "n1",
        started,
    )
    assert s.breaker is BreakerState.OPEN and s.breaker_since == started and s.stale
    assert s.reason == "supervisor unreachable, circuit open"


async def test_status_change_reaches_the_list(tmp_path: Path, fake: FakeEmulators) -> None:
    async with backend_for(write_static(tmp_path / "f.yaml", fake)) as (runtime, client):
        await eventually(lambda: healthy(runtime), fleet=runtime.fleet, what="3 healthy")
        fake.instances["loco-2"].overall_status = OverallStatus.UNHEALTHY
        fake.instances["loco-2"].reasons = ["QEMU exited (signal 9)"]

        def unhealthy() -> bool:
            inst = runtime.fleet.get("loco-2")
            return inst is not None and inst.status is InstanceStatus.UNHEALTHY

        await eventually(unhealthy, fleet=runtime.fleet, what="loco-2 unhealthy")
        resp = await client.get("/api/instances/loco-2")
        inst = Instance.model_validate_json(resp.content)
        assert inst.status_reason == "QEMU exited (signal 9)"
        assert not inst.stale, "fresh data saying unhealthy is not stale"


async def test_thumbnail_proxy_cache_and_errors(tmp_path: Path, fake: FakeEmulators) -> None:
    async with backend_for(write_static(tmp_path / "f.yaml", fake)) as (_runtime, client):
        resp = await client.get("/api/instances/loco-0/thumbnail.png", params={"width": 64})
        assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
        assert resp.content.startswith(b"\x89PNG")
        again = await client.get("/api/instances/loco-0/thumbnail.png", params={"width": 64})
        assert again.content == resp.content
        assert fake.instances["loco-0"].thumbnails == 1, "second request served from cache"
        await client.get("/api/instances/loco-0/thumbnail.png", params={"width": 80})
        assert fake.instances["loco-0"].thumbnails == 2, "another width is another picture"
        error(
            await client.get("/api/instances/loco-0/thumbnail.png?width=5"), 422, "invalid_request"
        )
        error(await client.get("/api/instances/zz/thumbnail.png"), 404, "not_found")
        fake.instances["loco-1"].frame_ready = False
        body = error(
            await client.get("/api/instances/loco-1/thumbnail.png"), 503, "upstream_unavailable"
        )
        assert "503" in body.message
        await fake.stop()
        resp = await client.get("/api/instances/loco-2/thumbnail.png")
        # The prober keeps running: depending on whether it has opened loco-2's breaker yet,
        # the dead supervisor is either tried (502, why) or refused at once (503, circuit open).
        if resp.status_code == 503:
            body = error(resp, 503, "unreachable")
            assert "circuit open" in body.message
        else:
            body = error(resp, 502, "upstream_error")
            assert "cannot connect" in body.message


async def test_sse_snapshot_then_changes_in_order(tmp_path: Path, fake: FakeEmulators) -> None:
    path = write_static(tmp_path / "f.yaml", fake)
    async with backend_for(path) as (runtime, client):
        await eventually(lambda: healthy(runtime), fleet=runtime.fleet, what="3 healthy")
        async with client.stream("GET", "/api/events") as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            reader = SseReader(resp)
            name, ident, data = await reader.next_event()
            snap = FLEET_EVENT_ADAPTER.validate_json(data)
            assert name == "snapshot" and isinstance(snap, SnapshotEvent) and snap.seq == ident
            assert reader.retry == 2000
            assert {i.name for i in snap.fleet.items} == {"loco-0", "loco-1", "loco-2"}
            # a change on an emulator, then an instance removed from the file
            fake.instances["loco-1"].overall_status = OverallStatus.DEGRADED
            last = ident
            saw_degraded = False
            while not saw_degraded:
                name, ident, data = await reader.next_event()
                assert ident == last + 1, "ids increase by one, nothing skipped"
                last = ident
                event = FLEET_EVENT_ADAPTER.validate_json(data)
                assert isinstance(event, InstanceEvent) and event.type == name
                saw_degraded = (
                    event.instance.name == "loco-1"
                    and event.instance.status is InstanceStatus.DEGRADED
                )
            write_static(path, fake, ["loco-0", "loco-1"])
            while True:
                name, ident, data = await reader.next_event()
                assert ident == last + 1
                last = ident
                event = FLEET_EVENT_ADAPTER.validate_json(data)
                if isinstance(event, RemovedEvent):
                    assert event.name == "loco-2"
                    break
            # keep-alive comments flow while nothing changes
            runtime.prober.enabled = False
            await runtime.prober.close()
            assert await reader.next_comment(timeout=3) == ": keep-alive"


async def test_mutations_auth(tmp_path: Path, fake: FakeEmulators) -> None:
    path = write_static(tmp_path / "f.yaml", fake)
    with JsonLines("backend.audit") as audit:
        async with backend_for(path, control_token=TOKEN) as (_runtime, client):
            resp = await client.post("/api/instances/loco-0/reset")
            error(resp, 401, "unauthorized")
            assert resp.headers["www-authenticate"].startswith("Bearer")
            basic = {"Authorization": "Basic Zm9vOmJhcg=="}
            error(
                await client.post("/api/instances/loco-0/reset", headers=basic), 401, "unauthorized"
            )
            wrong = {"Authorization": "Bearer wrong"}
            error(await client.post("/api/instances/loco-0/reset", headers=wrong), 403, "forbidden")
            error(await client.post("/api/instances/nope/reset", headers=AUTH), 404, "not_found")
            assert fake.instances["loco-0"].resets == 0
            resp = await client.post("/api/instances/loco-0/reset", headers=AUTH)
            assert resp.status_code == 200, resp.text
            result = ActionResult.model_validate_json(resp.content)
            assert result.ok and result.action == "reset" and result.instance == "loco-0"
            assert fake.instances["loco-0"].resets == 1
            resp = await client.post("/api/instances/loco-1/restart", headers=AUTH)
            assert resp.status_code == 200 and fake.instances["loco-1"].restarts == 1
            assert ActionResult.model_validate_json(resp.content).action == "restart"

    lines = audit.parsed()
    got = [
        (x["context"]["action"], x["context"]["instance"], x["context"]["result"]) for x in lines
    ]
    assert got == [
        ("reset", "loco-0", "unauthorized"),
        ("reset", "loco-0", "unauthorized"),
        ("reset", "loco-0", "forbidden"),
        ("reset", "nope", "not_found"),
        ("reset", "loco-0", "ok"),
        ("restart", "loco-1", "ok"),
    ]
    assert all(TOKEN not in line and "wrong" not in line for line in audit.lines)
    assert all(x["context"]["client"] == "127.0.0.1" for x in lines)
    assert all(len(x["request_id"]) == 32 for x in lines), "each line carries the request id"
    assert len({x["request_id"] for x in lines}) == len(lines)


async def test_mutations_refused_without_a_configured_token(
    tmp_path: Path, fake: FakeEmulators
) -> None:
    async with backend_for(write_static(tmp_path / "f.yaml", fake)) as (_runtime, client):
        for headers in ({}, AUTH, {"Authorization": "Bearer"}):
            body = error(
                await client.post("/api/instances/loco-0/restart", headers=headers),
                403,
                "control_disabled",
            )
            assert "LOCO_CONTROL_TOKEN" in body.message
        assert fake.instances["loco-0"].restarts == 0


async def test_rate_limit_per_instance(tmp_path: Path, fake: FakeEmulators) -> None:
    path = write_static(tmp_path / "f.yaml", fake)
    async with backend_for(path, control_token=TOKEN, action_interval=30) as (_r, client):
        assert (await client.post("/api/instances/loco-0/reset", headers=AUTH)).status_code == 200
        resp = await client.post("/api/instances/loco-0/restart", headers=AUTH)
        error(resp, 429, "rate_limited")
        assert 1 <= int(resp.headers["retry-after"]) <= 30
        # other instances are not affected
        assert (await client.post("/api/instances/loco-1/reset", headers=AUTH)).status_code == 200
        assert fake.instances["loco-0"].resets == 1 and fake.instances["loco-0"].restarts == 0


async def test_upstream_refusal_is_explained(tmp_path: Path, fake: FakeEmulators) -> None:
    path = write_static(tmp_path / "f.yaml", fake)
    async with backend_for(path, control_token="other-token") as (_r, client):
        body = error(
            await client.post(
                "/api/instances/loco-0/reset", headers={"Authorization": "Bearer other-token"}
            ),
            502,
            "upstream_refused",
        )
        assert "LOCO_CONTROL_TOKEN" in body.message


async def test_request_id_health_ready_metrics(tmp_path: Path, fake: FakeEmulators) -> None:
    async with backend_for(write_static(tmp_path / "f.yaml", fake)) as (runtime, client):
        resp = await client.get("/health", headers={"X-Request-ID": "abc-123"})
        assert resp.headers["x-request-id"] == "abc-123"
        h = BackendHealth.model_validate_json(resp.content)
        assert h.discovery == "static" and h.instances == 3 and (h.rss_bytes or 0) > 0
        generated = await client.get("/health", headers={"X-Request-ID": "bad id; with spaces"})
        assert (
            generated.headers["x-request-id"] != "bad id"
            and len(generated.headers["x-request-id"]) == 32
        )
        await eventually(lambda: runtime.fleet.discovery.synced, fleet=runtime.fleet)
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ReadinessReport.model_validate_json(ready.content).checks["discovery_synced"].ok
        await client.get("/api/instances/loco-0")
        await client.get("/api/instances/does-not-exist")
        text = (await client.get("/metrics")).text
        assert (
            'http_request_duration_seconds_count{method="GET",'
            'route="/api/instances/{name}",status_code="200"}'
        ) in text
        assert 'route="/api/instances/{name}",status_code="404"' in text
        assert "does-not-exist" not in text, "raw paths never become labels"
        for name in (
            "loco_backend_active_connections",
            "loco_backend_instances{",
            "loco_backend_circuit_breaker_state{",
            "loco_backend_probe_duration_seconds",
            "loco_backend_instance_fps{",
            "loco_backend_discovery_up",
        ):
            assert name in text, name


async def test_ready_is_503_until_discovery_synced(tmp_path: Path) -> None:
    runtime = build_runtime(settings(discovery=InstanceSource.LOCAL, local_dir=tmp_path))
    from backend.api.app import create_app

    app = create_app(runtime)  # lifespan not run: discovery never synced
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.get("/ready")
        assert resp.status_code == 503
        report = ReadinessReport.model_validate_json(resp.content)
        assert not report.ready and not report.checks["discovery_synced"].ok
    async with serve(runtime) as url, httpx.AsyncClient(base_url=url) as client:
        await eventually(lambda: runtime.fleet.discovery.synced, fleet=runtime.fleet)
        assert (await client.get("/ready")).status_code == 200


async def test_logs_tail_and_follow(tmp_path: Path, fake: FakeEmulators) -> None:
    log_file = tmp_path / "loco-0.log"
    log_file.write_text("".join(f"line {n}\n" for n in range(10)))
    path = write_static(tmp_path / "f.yaml", fake, extra={"loco-0": {"log_file": str(log_file)}})
    async with backend_for(path) as (_runtime, client):
        resp = await client.get("/api/instances/loco-0/logs", params={"tail": 3})
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
        assert resp.text == "line 7\nline 8\nline 9\n"
        assert (await client.get("/api/instances/loco-0/logs?tail=0")).text == ""
        error(await client.get("/api/instances/loco-1/logs"), 404, "no_log")
        async with client.stream(
            "GET", "/api/instances/loco-0/logs", params={"tail": 2, "follow": "true"}
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            reader = SseReader(stream)
            assert (await reader.next_event())[2] == "line 8"
            assert (await reader.next_event())[2] == "line 9"
            with log_file.open("a") as fh:
                fh.write("appended\n")
            assert (await reader.next_event())[2] == "appended"

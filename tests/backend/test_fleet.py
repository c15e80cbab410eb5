"""The fleet view: events in order, no duplicates, cached list bytes, stale marking."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import backend.fleet as fleet_module
from backend.discovery.base import Target
from backend.fleet import Fleet
from backend.metrics import BackendMetrics
from backend.models import (
    FLEET_EVENT_ADAPTER,
    DiscoveryState,
    InstanceEvent,
    InstanceList,
    InstanceSource,
    InstanceStatus,
    PodFacts,
    RemovedEvent,
    SnapshotEvent,
)
from emulator.models import EmulatorStatus, OverallStatus, QemuFacts, VideoFacts

SRC = InstanceSource.STATIC


def target(name: str, url: str = "http://127.0.0.1:9") -> Target:
    return Target(name=name, source=SRC, health_url=url)


def body(status: OverallStatus = OverallStatus.HEALTHY, fps: float = 20.0) -> EmulatorStatus:
    return EmulatorStatus(
        instance="x",
        overall_status=status,
        qemu_healthy=True,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        supervisor_uptime_seconds=1,
        qemu=QemuFacts(),
        video=VideoFacts(estimated_frame_rate=fps),
    )


def parse(chunk: bytes) -> object:
    lines = chunk.decode().strip().split("\n")
    fields = dict(line.split(": ", 1) for line in lines)
    event = FLEET_EVENT_ADAPTER.validate_json(fields["data"])
    assert fields["event"] == event.type
    assert int(fields["id"]) == event.seq
    return event


def new_fleet() -> Fleet:
    return Fleet(SRC, DiscoveryState(source=SRC, ok=True), BackendMetrics())


def test_sync_publishes_ordered_events_and_removes_missing() -> None:
    fleet = new_fleet()
    fleet.sync([target("b"), target("a")])
    fleet.sync([target("a"), target("c")])
    events = [parse(chunk) for _, chunk in fleet.events_after(0) or []]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [(e.type, getattr(e, "name", None) or e.instance.name) for e in events]
    assert kinds == [("instance", "b"), ("instance", "a"), ("removed", "b"), ("instance", "c")]
    assert sorted(fleet.names()) == ["a", "c"]


def test_unchanged_data_publishes_nothing() -> None:
    fleet = new_fleet()
    fleet.sync([target("a")])
    fleet.probe_succeeded("a", body())
    seq = fleet.seq
    fleet.sync([target("a")])
    fleet.upsert(target("a"))
    fleet.discovery_state(DiscoveryState(source=SRC, ok=True))
    fleet.breaker_changed("a", fleet.get("a").breaker)  # type: ignore[union-attr]
    assert fleet.seq == seq
    # a probe that changes something real is published at once
    fleet.probe_succeeded("a", body(fps=10))
    assert fleet.seq == seq + 1


def test_clock_only_changes_are_never_published() -> None:
    fleet = new_fleet()
    fleet.sync([target("a")])
    fleet.probe_succeeded("a", body())
    seq = fleet.seq
    for second in range(1, 20):
        later = body().model_copy(
            update={
                "timestamp": datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC),
                "supervisor_uptime_seconds": 1 + second,
                "video": VideoFacts(estimated_frame_rate=20.0, frames_total=20 * second),
            }
        )
        fleet.probe_succeeded("a", later)
    assert fleet.seq == seq, "only clocks and counters moved: no event, ever"
    assert fleet.get("a").last_probe_at is not None  # type: ignore[union-attr]
    fleet.probe_succeeded("a", body(status=OverallStatus.DEGRADED))
    assert fleet.seq == seq + 1, "a status change is published at once"


def test_a_jittering_frame_rate_is_published_when_it_moves() -> None:
    """An animated guest's figure wiggles every window: not news, until it has moved from
    what was published by the band (a slow drift included); reaching 0 always is."""
    fleet = new_fleet()
    fleet.sync([target("a")])
    fleet.probe_succeeded("a", body(fps=30.0))
    seq = fleet.seq
    for fps in (30.4, 29.7, 30.3, 29.6, 30.2):
        fleet.probe_succeeded("a", body(fps=fps))
    assert fleet.seq == seq, "jitter inside the band: no event"
    inst = fleet.get("a")
    assert inst is not None and inst.fps == 30.0, "the published figure is kept"
    fleet.probe_succeeded("a", body(fps=31.4))
    assert fleet.seq == seq, "drifting, still inside 5 % of 30"
    fleet.probe_succeeded("a", body(fps=31.6))
    assert fleet.seq == seq + 1 and fleet.get("a").fps == 31.6  # type: ignore[union-attr]
    fleet.probe_succeeded("a", body(fps=0.3))
    fleet.probe_succeeded("a", body(fps=0.0))
    assert fleet.seq == seq + 3, "a guest that stopped drawing is news"


def test_the_backend_and_the_supervisor_agree_on_what_is_news() -> None:
    """The fleet's clock-only part of a health body is the supervisor's own definition: a
    change the supervisor's stream would not send is one the fleet would not publish, and
    the other way round."""
    from emulator.models import CLOCK_FIELDS, DiskFacts, significant_json

    assert fleet_module._VOLATILE["health"] == CLOCK_FIELDS
    disk = DiskFacts(image="b", format="raw", virtual_size=1, overlay="o", overlay_size=1)
    base = body().model_copy(update={"disk": disk})
    clock_only = base.model_copy(
        update={
            "timestamp": datetime(2026, 1, 2, tzinfo=UTC),
            "supervisor_uptime_seconds": 99,
            "qemu": QemuFacts(uptime_seconds=98, qmp_latency_ms=3.0),
            "video": base.video.model_copy(
                update={
                    "last_frame_age_seconds": 0.3,
                    "frames_total": 1234,
                    "changed_at": datetime(2026, 1, 2, tzinfo=UTC),
                }
            ),
            "disk": disk.model_copy(update={"overlay_size": 5, "free_bytes": 7}),
        }
    )
    news = base.model_copy(update={"reasons": ["something happened"]})
    still = base.video.model_copy(update={"still_since": datetime(2026, 1, 1, tzinfo=UTC)})
    stopped = base.model_copy(update={"video": still})
    for changed, published in ((clock_only, False), (news, True), (stopped, True)):
        fleet = new_fleet()
        fleet.sync([target("a")])
        fleet.probe_succeeded("a", base)
        seq = fleet.seq
        fleet.probe_succeeded("a", changed)
        assert (fleet.seq > seq) is published
        assert (significant_json(changed) != significant_json(base)) is published


def test_list_body_cached_until_change_and_valid() -> None:
    fleet = new_fleet()
    fleet.sync([target("b"), target("a")])
    body1, etag1 = fleet.list_body()
    assert fleet.list_body()[0] is body1  # same bytes object: serialized once
    parsed = InstanceList.model_validate_json(body1)
    assert [i.name for i in parsed.items] == ["a", "b"]
    assert parsed.revision == fleet.seq
    fleet.probe_succeeded("a", body())
    body2, etag2 = fleet.list_body()
    assert etag2 != etag1 and body2 != body1


def test_snapshot_and_gap_detection() -> None:
    fleet = Fleet(SRC, DiscoveryState(source=SRC, ok=True), event_buffer=3)
    fleet.sync([target(f"i{n}") for n in range(5)])
    assert fleet.events_after(0) is None  # buffer moved on: a snapshot is needed
    assert [s for s, _ in fleet.events_after(3) or []] == [4, 5]
    assert fleet.events_after(5) == []
    seq, chunk = fleet.snapshot_event()
    snap = parse(chunk)
    assert isinstance(snap, SnapshotEvent) and snap.seq == seq == 5
    assert len(snap.fleet.items) == 5


def test_probe_failure_keeps_last_known_health_marked_stale() -> None:
    fleet = new_fleet()
    fleet.sync([target("a")])
    fleet.probe_succeeded("a", body(fps=17))
    inst = fleet.get("a")
    assert inst is not None and inst.status is InstanceStatus.HEALTHY and inst.fps == 17
    fleet.probe_failed("a", "cannot connect")
    inst = fleet.get("a")
    assert inst is not None
    assert inst.status is InstanceStatus.DEGRADED
    assert inst.health is not None and inst.health.video.estimated_frame_rate == 17
    assert inst.fps is None  # no invented current frame rate
    assert inst.stale and inst.stale_since is not None and inst.last_error == "cannot connect"
    fleet.probe_succeeded("a", body())
    inst = fleet.get("a")
    assert inst is not None and not inst.stale and inst.stale_since is None


def test_discovery_outage_marks_everything_stale_then_recovers() -> None:
    fleet = Fleet(
        InstanceSource.KUBERNETES, DiscoveryState(source=InstanceSource.KUBERNETES, ok=True)
    )
    pod = PodFacts(phase="Running", ready=True)
    fleet.sync([Target("p0", InstanceSource.KUBERNETES, "http://127.0.0.1:9", pod=pod)])
    fleet.discovery_state(DiscoveryState(source=InstanceSource.KUBERNETES, ok=False, error="down"))
    inst = fleet.get("p0")
    assert inst is not None and inst.stale and "pod facts" in (inst.stale_reason or "")
    events = [parse(c) for _, c in fleet.events_after(1) or []]
    assert [e.type for e in events] == ["discovery", "instance"]
    fleet.discovery_state(DiscoveryState(source=InstanceSource.KUBERNETES, ok=True, synced=True))
    inst = fleet.get("p0")
    assert inst is not None and not inst.stale


def test_new_address_is_a_new_target() -> None:
    fleet = new_fleet()
    seen: list[str] = []

    class Obs:
        def target_changed(self, t: Target) -> None:
            seen.append(f"changed:{t.name}:{t.health_url}")

        def target_removed(self, name: str) -> None:
            seen.append(f"removed:{name}")

    fleet.add_observer(Obs())
    fleet.sync([target("a", "http://h:1")])
    fleet.probe_succeeded("a", body())
    fleet.upsert(Target("a", SRC, "http://h:1", vnc="h:5900"))  # same address: no re-probe
    fleet.upsert(target("a", "http://h:2"))
    inst = fleet.get("a")
    assert inst is not None and inst.health is None and inst.status is InstanceStatus.UNKNOWN
    fleet.remove("a")
    assert seen == ["changed:a:http://h:1", "changed:a:http://h:2", "removed:a"]
    last = parse((fleet.events_after(fleet.seq - 1) or [])[0][1])
    assert isinstance(last, RemovedEvent) and last.name == "a"


def test_status_metrics_follow_the_fleet() -> None:
    metrics = BackendMetrics()
    fleet = Fleet(SRC, DiscoveryState(source=SRC, ok=True), metrics)
    fleet.sync([target("a"), target("b")])
    fleet.probe_succeeded("a", body(fps=12.5))

    def value(name: str, labels: dict[str, str]) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert value("loco_backend_instances", {"status": "healthy"}) == 1
    assert value("loco_backend_instances", {"status": "unknown"}) == 1
    assert value("loco_backend_instance_fps", {"instance": "a"}) == 12.5
    fleet.remove("a")
    assert value("loco_backend_instances", {"status": "healthy"}) == 0
    assert value("loco_backend_instance_fps", {"instance": "a"}) is None


def test_instance_info_follows_the_node() -> None:
    """One loco_backend_instance_info series per instance, with the node it runs on now."""
    metrics = BackendMetrics()
    fleet = Fleet(SRC, DiscoveryState(source=SRC, ok=True), metrics)

    def pod(node: str | None) -> Target:
        return Target(
            name="p",
            source=InstanceSource.KUBERNETES,
            health_url="http://10.0.0.1:8080",
            pod=PodFacts(phase="Running", node=node),
        )

    def series() -> dict[str, str]:
        (family,) = (f for f in metrics.registry.collect() if f.name == "loco_backend_instance")
        return {s.labels["instance"]: s.labels["node"] for s in family.samples if s.value == 1}

    fleet.sync([pod(None), target("s")])
    assert series() == {"p": "", "s": ""}  # not scheduled yet; static instances have no node
    fleet.upsert(pod("node-a"))
    assert series() == {"p": "node-a", "s": ""}
    fleet.upsert(pod("node-b"))  # rescheduled: the old node's series goes
    assert series() == {"p": "node-b", "s": ""}
    fleet.remove("p")
    assert series() == {"s": ""}


def test_instance_event_embeds_exact_instance_json() -> None:
    fleet = new_fleet()
    fleet.sync([target("a")])
    ((_, chunk),) = fleet.events_after(0) or []
    event = parse(chunk)
    assert isinstance(event, InstanceEvent)
    data = json.loads(chunk.decode().split("data: ", 1)[1])
    assert json.dumps(data["instance"], separators=(",", ":")).encode() == fleet.instance_json("a")


def test_the_summary_stream_hears_only_of_changes_to_summaries() -> None:
    from backend.models import SUMMARY_EVENT_ADAPTER, SummaryEvent, SummarySnapshotEvent

    fleet = new_fleet()
    fleet.sync([target("a")])
    fleet.probe_succeeded("a", body())
    seq = fleet.seq
    # The picture's size is in the health body, not in the overview.
    wider = body().model_copy(update={"video": VideoFacts(estimated_frame_rate=20.0, width=640)})
    fleet.probe_succeeded("a", wider)
    assert fleet.seq == seq + 1, "published in full"
    assert fleet.events_after(seq, summary=True) == [], "not in the summary form"
    fleet.probe_succeeded("a", body(fps=12.5))
    ((got, chunk),) = fleet.events_after(seq, summary=True) or []
    assert got == seq + 2
    data = chunk.decode().split("data: ", 1)[1]
    event = SUMMARY_EVENT_ADAPTER.validate_json(data)
    assert isinstance(event, SummaryEvent) and event.instance.fps == 12.5
    assert "event: summary\n" in chunk.decode()
    _, snap = fleet.snapshot_event(summary=True)
    data = snap.decode().split("data: ", 1)[1]
    snapshot = SUMMARY_EVENT_ADAPTER.validate_json(data)
    assert isinstance(snapshot, SummarySnapshotEvent)
    assert [i.name for i in snapshot.fleet.items] == ["a"]

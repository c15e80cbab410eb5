"""The fleet model, driven with real wire-model objects (no transport)."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import timedelta

import pytest

from backend.models import (
    DiscoveryEvent,
    DiscoveryState,
    InstanceEvent,
    InstanceSource,
    InstanceStatus,
    PodFacts,
    RemediationEvent,
    RemediationInfo,
    RemediationStatus,
    RemovedEvent,
    SnapshotEvent,
)
from locotui.data.backend_client import MalformedEvent, _parse_event
from locotui.data.fleet import FilterError, FleetModel, Origin, SortKey, Source
from locotui.data.kube_client import KubePod, pod_instance
from locotui.data.link import LinkChange, LinkState
from tests.support.builders import NOW, fleet_list, instance


def make_fleet(**kw: object) -> FleetModel:
    fleet = FleetModel(**kw)  # type: ignore[arg-type]
    fleet.apply_event(
        SnapshotEvent(
            seq=1,
            fleet=fleet_list(
                [
                    instance("loco-emulator-0", fps=30.0, node="node-a", restarts=0),
                    instance(
                        "loco-emulator-1",
                        InstanceStatus.DEGRADED,
                        fps=3.0,
                        node="node-b",
                        restarts=4,
                        reason="frame rate low",
                    ),
                    instance(
                        "loco-emulator-2",
                        InstanceStatus.UNHEALTHY,
                        fps=None,
                        node="node-b",
                        restarts=1,
                        started=NOW + timedelta(minutes=5),
                    ),
                    instance("loco-emulator-10", InstanceStatus.STARTING, fps=0.0, node="node-c"),
                ]
            ),
        )
    )
    return fleet


def names(fleet: FleetModel) -> list[str]:
    return [e.name for e in fleet.view()]


def test_snapshot_instance_removed_discovery_events() -> None:
    fleet = make_fleet()
    assert len(fleet) == 4
    assert fleet.revision == 1
    # Natural order: 10 after 2.
    assert names(fleet) == [
        "loco-emulator-0",
        "loco-emulator-1",
        "loco-emulator-2",
        "loco-emulator-10",
    ]
    fleet.apply_event(InstanceEvent(seq=2, instance=instance("loco-emulator-3")))
    assert fleet.get("loco-emulator-3") is not None
    fleet.apply_event(RemovedEvent(seq=3, name="loco-emulator-0"))
    assert fleet.get("loco-emulator-0") is None
    fleet.apply_event(
        DiscoveryEvent(
            seq=4,
            discovery=DiscoveryState(source=InstanceSource.KUBERNETES, ok=False, error="API down"),
        )
    )
    assert fleet.discovery is not None and fleet.discovery.error == "API down"
    # A snapshot replaces everything: names it lacks are dropped.
    fleet.apply_event(SnapshotEvent(seq=9, fleet=fleet_list([instance("loco-emulator-1")], 9)))
    assert names(fleet) == ["loco-emulator-1"]
    assert fleet.get("loco-emulator-1").status is InstanceStatus.HEALTHY  # type: ignore[union-attr]


def test_filter_substring_regex_and_bad_regex() -> None:
    fleet = make_fleet()
    fleet.set_filter("node-b")
    assert names(fleet) == ["loco-emulator-1", "loco-emulator-2"]
    fleet.set_filter("DEGRADED")  # status, case-insensitive
    assert names(fleet) == ["loco-emulator-1"]
    fleet.set_filter("frame rate")  # status reason
    assert names(fleet) == ["loco-emulator-1"]
    fleet.set_filter(r"/emulator-(0|10)$/")
    assert names(fleet) == ["loco-emulator-0", "loco-emulator-10"]
    with pytest.raises(FilterError, match="bad regular expression"):
        fleet.set_filter("/emulator-(/")
    assert fleet.filter_text == r"/emulator-(0|10)$/"  # the previous filter stays
    fleet.set_filter("")
    assert len(fleet.view()) == 4


def test_sort_keys_and_unhealthy_only() -> None:
    fleet = make_fleet()
    fleet.set_sort(SortKey.STATUS)
    assert names(fleet) == [
        "loco-emulator-2",
        "loco-emulator-1",
        "loco-emulator-10",
        "loco-emulator-0",
    ]
    fleet.set_sort(SortKey.FPS)
    # Unknown fps first (worst), then lowest.
    assert names(fleet) == [
        "loco-emulator-2",
        "loco-emulator-10",
        "loco-emulator-1",
        "loco-emulator-0",
    ]
    fleet.set_sort(SortKey.RESTARTS)
    assert names(fleet)[0] == "loco-emulator-1"
    fleet.set_sort(SortKey.AGE)
    assert names(fleet)[0] == "loco-emulator-2"  # youngest first
    fleet.set_sort(SortKey.NAME, reverse=True)
    assert names(fleet)[0] == "loco-emulator-10"
    assert fleet.cycle_sort() is SortKey.STATUS
    fleet.set_sort(SortKey.NAME, reverse=False)
    fleet.set_unhealthy_only(True)
    assert names(fleet) == ["loco-emulator-1", "loco-emulator-2", "loco-emulator-10"]
    assert fleet.counts()[InstanceStatus.HEALTHY] == 1  # counts ignore the view


def test_selection_and_targets() -> None:
    fleet = make_fleet()
    assert fleet.targets("loco-emulator-1") == ["loco-emulator-1"]
    assert fleet.targets("nope") == []
    assert fleet.toggle("loco-emulator-2") is True
    fleet.select(["loco-emulator-0", "ghost"])  # unknown names are ignored
    assert fleet.selection == {"loco-emulator-0", "loco-emulator-2"}
    assert fleet.targets("loco-emulator-1") == ["loco-emulator-0", "loco-emulator-2"]
    fleet.set_filter("node-b")
    fleet.select_visible()
    assert fleet.selection == {"loco-emulator-0", "loco-emulator-1", "loco-emulator-2"}
    # A removed instance leaves the selection.
    fleet.apply_event(RemovedEvent(seq=5, name="loco-emulator-2"))
    assert "loco-emulator-2" not in fleet.selection
    fleet.clear_selection()
    assert fleet.targets(None) == []


def test_malformed_input_becomes_errors_not_exceptions() -> None:
    fleet = make_fleet()
    bad = _parse_event(
        "instance",
        '{"type":"instance","seq":7,"instance":{"name":"loco-emulator-1","status":"on fire"}}',
    )
    assert isinstance(bad, MalformedEvent) and bad.name == "loco-emulator-1"
    fleet.apply_event(bad)
    entry = fleet.get("loco-emulator-1")
    assert entry is not None and entry.error and "malformed" in entry.error
    assert fleet.links[Source.BACKEND].malformed == 1
    # Not JSON at all; unknown event type; a stray object.
    fleet.apply_event(_parse_event("instance", "{not json"))
    fleet.apply_event(_parse_event("weird", '{"type":"weird","seq":1}'))
    fleet.apply_event(object())
    assert fleet.links[Source.BACKEND].malformed == 4
    fleet.apply_instance_json({"name": "loco-emulator-0", "source": "kubernetes"})  # no status
    assert "malformed" in (fleet.get("loco-emulator-0").error or "")  # type: ignore[union-attr]
    assert len(fleet) == 4
    # A good update clears the entry's error.
    fleet.apply_event(InstanceEvent(seq=8, instance=instance("loco-emulator-1")))
    assert fleet.get("loco-emulator-1").error is None  # type: ignore[union-attr]
    # Errored entries stay visible under "unhealthy only" even if their status is healthy.
    fleet.set_unhealthy_only(True)
    assert "loco-emulator-0" in names(fleet)


def decision(seq: int, name: str, action: str = "reset", outcome: str = "acted") -> str:
    """A remediation event as the backend sends it on /api/events."""
    return RemediationEvent(
        seq=seq,
        instance=name,
        action=action,  # type: ignore[arg-type]
        reason="display is blank",
        outcome=outcome,  # type: ignore[arg-type]
        rung="reset",
        at=NOW,
    ).model_dump_json()


def test_remediation_decisions_are_kept_not_reported_as_unexpected() -> None:
    fleet = FleetModel(decision_points=3)
    fleet.apply_event(SnapshotEvent(seq=1, fleet=fleet_list([instance("loco-emulator-1")])))
    version = fleet.version
    first = _parse_event("remediation", decision(2, "loco-emulator-1"))
    assert isinstance(first, RemediationEvent)
    fleet.apply_event(first)
    link = fleet.links[Source.BACKEND]
    assert link.error is None and link.malformed == 0
    assert fleet.version > version  # the UI hears about it
    assert [d.action for d in fleet.decisions] == ["reset"]
    # A burst: the deque keeps the newest; a reader catches up from where it was.
    new, seen = fleet.decisions_since(0)
    assert [d.seq for d in new] == [2] and seen == 1
    for seq in range(3, 8):
        fleet.apply_event(_parse_event("remediation", decision(seq, "loco-emulator-1")))
    assert len(fleet.decisions) == 3 and fleet.decisions_total == 6
    new, seen = fleet.decisions_since(seen)
    assert [d.seq for d in new] == [5, 6, 7] and seen == 6  # 3 and 4 fell out
    assert fleet.decisions_since(seen) == ([], 6)
    assert fleet.links[Source.BACKEND].malformed == 0


def test_remediation_state_and_who_needs_a_person() -> None:
    fleet = make_fleet()
    assert fleet.remediation is None and fleet.needing_a_person() == []
    gave_up = instance("loco-emulator-10", InstanceStatus.DEGRADED).model_copy(
        update={"remediation": RemediationInfo(rung="needs_person", since=NOW)}
    )
    watching = instance("loco-emulator-2", InstanceStatus.DEGRADED).model_copy(
        update={"remediation": RemediationInfo(rung="reset", since=NOW)}
    )
    fleet.apply_event(InstanceEvent(seq=2, instance=gave_up))
    fleet.apply_event(InstanceEvent(seq=3, instance=watching))
    assert [e.name for e in fleet.needing_a_person()] == ["loco-emulator-10"]
    status = RemediationStatus(enabled=True, leader=True, dry_run=False, paused=False)
    fleet.set_remediation(status)
    version = fleet.version
    fleet.set_remediation(status.model_copy())  # the same answer again: no change
    assert fleet.version == version and fleet.remediation == status


def test_history_ring_buffers_are_bounded_and_time_sampled() -> None:
    wall = [1000.0]
    fleet = FleetModel(history_points=5, status_history_points=3, wall_clock=lambda: wall[0])
    for i in range(20):
        wall[0] += 1.0
        status = InstanceStatus.HEALTHY if i % 2 else InstanceStatus.DEGRADED
        fleet.apply_event(InstanceEvent(seq=i, instance=instance("a", status, fps=float(i))))
    e = fleet.get("a")
    assert e is not None
    assert e.fps_values() == [15.0, 16.0, 17.0, 18.0, 19.0]
    assert len(e.status_history) == 3
    # Updates faster than the sample interval replace the last sample instead of adding.
    wall[0] += 0.1
    fleet.apply_event(InstanceEvent(seq=30, instance=instance("a", fps=99.0)))
    assert e.fps_values() == [15.0, 16.0, 17.0, 18.0, 99.0]
    assert e.fps_values(2) == [18.0, 99.0]


def test_links_and_data_age() -> None:
    clock = [100.0]
    fleet = FleetModel(clock=lambda: clock[0])
    assert fleet.data_age() is None
    fleet.apply_event(LinkChange(LinkState.CONNECTING))
    fleet.apply_event(LinkChange(LinkState.RECONNECTING, error="refused", retry_in=4.0))
    link = fleet.links[Source.BACKEND]
    assert link.state is LinkState.RECONNECTING and link.error == "refused"
    assert link.retry_in(now=101.0) == pytest.approx(3.0)
    fleet.apply_event(LinkChange(LinkState.CONNECTING))
    assert link.error == "refused"  # kept while trying again
    fleet.apply_event(LinkChange(LinkState.CONNECTED))
    assert link.error is None and fleet.live
    fleet.apply_event(SnapshotEvent(seq=1, fleet=fleet_list([instance("a")])))
    clock[0] = 107.5
    assert fleet.data_age() == pytest.approx(7.5)


def test_kubernetes_fallback_entries_are_marked() -> None:
    fleet = make_fleet()
    pods = [
        KubePod("loco-emulator-0", "loco", "u0", PodFacts(phase="Running", ready=True)),
        KubePod(
            "loco-emulator-1",
            "loco",
            "u1",
            PodFacts(phase="Pending", waiting_reason="ContainerCreating"),
        ),
        KubePod(
            "loco-emulator-2", "loco", "u2", PodFacts(phase="Running", ready=True, deleting=True)
        ),
    ]
    fps_before = fleet.get("loco-emulator-0").fps_values()  # type: ignore[union-attr]
    fleet.apply_pods(pod_instance(p) for p in pods)
    assert names(fleet) == ["loco-emulator-0", "loco-emulator-1", "loco-emulator-2"]
    e0 = fleet.get("loco-emulator-0")
    assert e0 is not None and e0.origin is Origin.KUBERNETES
    assert e0.full is not None and e0.full.health is None and e0.summary.stale
    assert e0.status is InstanceStatus.UNKNOWN and "health unknown" in (e0.summary.reason or "")
    assert e0.fps_values() == fps_before  # history survives the switch of source
    assert fleet.get("loco-emulator-1").status is InstanceStatus.STARTING  # type: ignore[union-attr]
    assert fleet.get("loco-emulator-2").status is InstanceStatus.UNHEALTHY  # type: ignore[union-attr]
    fleet.apply_pod_change("DELETED", pod_instance(pods[2]))
    assert fleet.get("loco-emulator-2") is None


async def test_notifications_coalesce_bursts_and_respect_the_rate() -> None:
    fleet = FleetModel(max_rate=10.0)
    calls: list[float] = []
    unsubscribe = fleet.subscribe(lambda: calls.append(time.monotonic()))
    # A burst of 500 changes in one go: one notification.
    for i in range(500):
        fleet.apply_event(InstanceEvent(seq=i, instance=instance(f"i{i % 50}", fps=float(i))))
    seen = await asyncio.wait_for(fleet.wait_changed(0), 2)
    assert seen == fleet.version
    assert len(calls) == 1
    # A steady stream for 0.6 s (a change every 5 ms): at most 10 per second.
    start = time.monotonic()
    while time.monotonic() - start < 0.6:
        fleet.apply_event(InstanceEvent(seq=1, instance=instance("i1", fps=time.monotonic())))
        await asyncio.sleep(0.005)
    await asyncio.wait_for(fleet.wait_changed(seen), 2)
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert 2 <= len(calls) <= 9  # ~6 at 10/s; fewer only if the loop itself stalls
    assert all(g >= 0.09 for g in gaps), gaps
    # No change, no notification; unsubscribing stops calls.
    n = len(calls)
    unsubscribe()
    fleet.set_filter("x")
    await asyncio.wait_for(fleet.wait_changed(fleet.version - 1), 2)
    assert len(calls) == n
    assert fleet.notifications == n + 1


async def test_a_failing_subscriber_does_not_stop_others() -> None:
    fleet = FleetModel()
    got: list[int] = []

    def broken() -> None:
        raise RuntimeError("widget bug")

    fleet.subscribe(broken)
    fleet.subscribe(lambda: got.append(fleet.version))
    fleet.set_filter("a")
    await asyncio.wait_for(fleet.wait_changed(0), 2)
    assert got == [fleet.version]


def test_ages_come_from_absolute_moments_not_frozen_durations() -> None:
    """The backend does not resend a health body because its clocks moved, so an age is
    computed from when QEMU started (older supervisors: timestamp minus uptime)."""
    from emulator.models import EmulatorStatus, QemuFacts, VideoFacts
    from locotui.data.fleet import qemu_started_at, supervisor_started_at

    body = EmulatorStatus(
        instance="a",
        overall_status="healthy",
        qemu_healthy=True,
        timestamp=NOW,
        supervisor_uptime_seconds=100.0,
        qemu=QemuFacts(running=True, uptime_seconds=40.0),
        video=VideoFacts(),
    )
    assert qemu_started_at(body) == NOW - timedelta(seconds=40)
    assert supervisor_started_at(body) == NOW - timedelta(seconds=100)
    started = NOW - timedelta(hours=3)
    newer = body.model_copy(
        update={
            "qemu": body.qemu.model_copy(update={"started_at": started}),
            "supervisor_started_at": started,
        }
    )
    assert qemu_started_at(newer) == started == supervisor_started_at(newer)
    assert qemu_started_at(None) is None

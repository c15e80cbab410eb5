"""The fleet's events: Kubernetes' and the backend's timelines, merged newest first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from backend.models import TimelineEntry
from locotui.data.errors import Forbidden, Unreachable
from locotui.data.events import EVENT_FIELDS, from_kube, from_timeline, gather, matches, merge
from locotui.data.kube_client import KubeEvent
from locotui.data.query import parse_query
from tests.support.builders import NOW


def kev(minutes: int, reason: str, message: str, kind: str = "Warning", obj: str = "Pod/loco-1"):  # type: ignore[no-untyped-def]
    return KubeEvent(
        type=kind,
        reason=reason,
        message=message,
        count=2,
        last_seen=NOW - timedelta(minutes=minutes),
        source="kubelet",
        involved=obj,
    )


def tl(minutes: int, kind: str, text: str, by: str | None = None) -> TimelineEntry:
    return TimelineEntry(at=NOW - timedelta(minutes=minutes), kind=kind, text=text, by=by)  # type: ignore[arg-type]


def test_conversions() -> None:
    e = from_kube(kev(3, "OOMKilling", "Memory cgroup out of memory", kind="Normal"))
    assert e is not None and e.name == "loco-1" and e.origin == "kube" and e.warning
    other = from_kube(kev(1, "SuccessfulCreate", "created pod", "Normal", "StatefulSet/loco"))
    assert other is not None and other.name == "StatefulSet/loco" and not other.warning
    assert from_kube(KubeEvent("Normal", "x", "y", 1, None, None)) is None
    status = from_timeline("loco-2", tl(5, "status", "degraded: display is blank"))
    assert (status.origin, status.reason, status.warning) == ("status", "degraded", True)
    healthy = from_timeline("loco-2", tl(4, "status", "healthy"))
    assert healthy.reason == "healthy" and not healthy.warning
    auto = from_timeline("loco-2", tl(2, "remediation", "reset (acted): blank", "remediation"))
    assert (auto.origin, auto.reason, auto.by) == ("auto", "reset", "remediation")
    person = from_timeline("loco-2", tl(1, "action", "reset: system_reset sent", "10.0.0.3"))
    assert (person.origin, person.reason) == ("action", "reset")


def test_merge_is_newest_first_without_duplicates_and_filterable() -> None:
    kube = [e for e in (from_kube(kev(10, "Evicted", "node low on memory")),) if e]
    timeline = [
        from_timeline("loco-1", tl(m, "status", t))
        for m, t in ((12, "healthy"), (9, "unhealthy: qemu exited"))
    ]
    events = merge(kube, timeline, timeline)
    assert [(e.origin, e.reason) for e in events] == [
        ("status", "unhealthy"),
        ("kube", "Evicted"),
        ("status", "healthy"),
    ]
    assert [e.reason for e in matches(parse_query("source:kube", fields=EVENT_FIELDS), events)] == [
        "Evicted"
    ]
    assert len(matches(parse_query("!source:kube type:warning", fields=EVENT_FIELDS), events)) == 1
    assert len(merge(timeline, limit=1)) == 1


class Backend:
    async def timeline(self, name: str) -> list[TimelineEntry]:
        if name == "loco-9":
            raise Unreachable("backend unreachable: refused", source="backend")
        return [tl(5, "status", f"degraded: {name} slow")]


class Kube:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    async def namespace_events(self) -> list[KubeEvent]:
        if self.error:
            raise self.error
        return [kev(1, "FailedScheduling", "0/3 nodes are available")]


async def test_gather_merges_and_notes_what_is_missing() -> None:
    result = await gather(["loco-1", "loco-2"], backend=Backend(), kube=Kube())
    assert [e.origin for e in result.events] == ["kube", "status", "status"]
    assert result.notes == []
    result = await gather(["loco-1", "loco-9"], backend=Backend(), kube=None)
    assert [e.name for e in result.events] == ["loco-1"]
    assert result.notes == [
        "no Kubernetes events (no kubeconfig)",
        "1 timelines not read (e.g. loco-9: backend unreachable: refused)",
    ]
    denied: Any = Kube(Forbidden('events is forbidden: cannot list "events"', source="kubernetes"))
    result = await gather([], backend=None, kube=denied)
    assert result.events == [] and "forbidden" in result.notes[0]

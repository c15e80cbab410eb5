"""The fleet's events in one list, newest first: what Kubernetes says happened in the
namespace (evictions, OOM kills, failed scheduling, probe failures, pods started and
killed) merged with what the backend recorded of each instance (status changes, the
automatic recovery's decisions, people's resets and restarts — the incident timelines).

Pure: :func:`from_kube` and :func:`from_timeline` turn each source's records into
:class:`FleetEvent`; :func:`merge` sorts and de-duplicates them; :data:`EVENT_FIELDS`
are the fields the view's filter may name (the fleet filter's language,
:mod:`locotui.data.query`). :func:`gather` fetches both sources (a failing one becomes a
note, never an exception).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from backend.models import TimelineEntry
from locotui.data.errors import DataError
from locotui.data.kube_client import KubeEvent
from locotui.data.query import Query

__all__ = [
    "EVENT_FIELDS",
    "EventsResult",
    "FleetEvent",
    "from_kube",
    "from_timeline",
    "gather",
    "matches",
    "merge",
]

Origin = Literal["kube", "status", "auto", "action"]

EVENT_FIELDS: Mapping[str, str] = {
    "name": "the instance (or object) it is about",
    "source": "kube, status, auto (the automatic recovery), action (a person)",
    "reason": "Kubernetes' reason (OOMKilled, FailedScheduling, Unhealthy, Evicted, ...)",
    "text": "the message",
    "type": "warning or normal",
    "by": "who: the recovery, a person's address, a Kubernetes component",
}

# Kubernetes reasons that mean trouble even when the event's type is Normal.
_TROUBLE = frozenset(
    {"OOMKilling", "OOMKilled", "Evicted", "Preempting", "FailedScheduling", "BackOff", "Killing"}
)


@dataclass(frozen=True)
class FleetEvent:
    at: datetime
    origin: Origin
    name: str
    """The instance, or ``Kind/name`` for an object that is not an emulator pod."""
    reason: str
    text: str
    warning: bool = False
    by: str | None = None
    count: int = 1

    def fields(self) -> dict[str, str]:
        return {
            "name": self.name,
            "source": self.origin,
            "reason": self.reason,
            "text": self.text,
            "type": "warning" if self.warning else "normal",
            "by": self.by or "",
        }


def from_kube(event: KubeEvent) -> FleetEvent | None:
    """A Kubernetes event (None when it has no time: it cannot be placed)."""
    if event.last_seen is None:
        return None
    return FleetEvent(
        at=event.last_seen,
        origin="kube",
        name=event.pod or event.involved or "?",
        reason=event.reason,
        text=event.message,
        warning=event.type == "Warning" or event.reason in _TROUBLE,
        by=event.source,
        count=event.count,
    )


def from_timeline(name: str, entry: TimelineEntry) -> FleetEvent:
    """One line of an instance's incident timeline from the backend. Its reason is the
    line's first word: the new status (``degraded: display is blank``), the recovery's
    rung (``reset (acted): ...``) or the action (``reset: system_reset sent``)."""
    origin: Origin = {"status": "status", "remediation": "auto", "action": "action"}[entry.kind]
    first = entry.text.split(":", 1)[0].split(" ", 1)[0]
    warning = origin == "auto" or (origin == "status" and first not in ("healthy", "starting"))
    return FleetEvent(
        at=entry.at,
        origin=origin,
        name=name,
        reason=first,
        text=entry.text,
        warning=warning,
        by=entry.by,
    )


def merge(*sources: Iterable[FleetEvent], limit: int = 1000) -> list[FleetEvent]:
    """Newest first, the same record from two fetches once, at most ``limit``."""
    seen: set[tuple[datetime, str, str, str]] = set()
    out: list[FleetEvent] = []
    for event in sorted(
        (e for source in sources for e in source),
        key=lambda e: e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC),
        reverse=True,
    ):
        key = (event.at, event.origin, event.name, event.text)
        if key in seen:
            continue
        seen.add(key)
        out.append(event)
        if len(out) >= limit:
            break
    return out


def matches(query: Query, events: Sequence[FleetEvent]) -> list[FleetEvent]:
    return [e for e in events if not query or query.matches(e.fields())]


@dataclass(frozen=True)
class EventsResult:
    events: list[FleetEvent]
    notes: list[str]
    """Why a source is missing (no Kubernetes, a refusal, timelines that failed)."""


async def gather(
    names: Sequence[str],
    *,
    backend: Any | None,
    kube: Any | None,
    concurrency: int = 8,
    limit: int = 1000,
) -> EventsResult:
    """The namespace's Kubernetes events and each instance's timeline, merged.

    Timelines are fetched a few at a time (one request per instance: the backend has no
    fleet-wide history); instances whose timeline fails are counted in a note.
    """
    notes: list[str] = []
    kube_events: list[FleetEvent] = []
    if kube is not None:
        try:
            kube_events = [e for k in await kube.namespace_events() if (e := from_kube(k))]
        except DataError as exc:
            notes.append(f"Kubernetes events: {exc}")
    else:
        notes.append("no Kubernetes events (no kubeconfig)")
    timeline_events: list[FleetEvent] = []
    failed: dict[str, str] = {}
    if backend is not None:
        limiter = asyncio.Semaphore(concurrency)

        async def one(name: str) -> None:
            async with limiter:
                try:
                    entries = await backend.timeline(name)
                except DataError as exc:
                    failed[name] = str(exc)
                    return
            timeline_events.extend(from_timeline(name, t) for t in entries)

        await asyncio.gather(*(one(n) for n in names))
    else:
        notes.append("no backend timelines (no backend)")
    if failed:
        first = next(iter(failed.items()))
        notes.append(f"{len(failed)} timelines not read (e.g. {first[0]}: {first[1]})")
    return EventsResult(merge(kube_events, timeline_events, limit=limit), notes)

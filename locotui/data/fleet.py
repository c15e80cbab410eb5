"""The in-memory fleet model the UI renders: instances, history, connections, view state.

Sources write into one :class:`FleetModel`; widgets only read it:

* the backend's event stream: :meth:`FleetModel.apply_event` (snapshot / instance /
  removed / discovery / remediation, or a
  :class:`~locotui.data.backend_client.MalformedEvent`); in the summary form
  (``summary_snapshot`` / ``summary``) each entry has the instance's summary only, and its
  full form (:attr:`Entry.full`, with the health body) is fetched where it is shown in
  detail (:meth:`FleetModel.set_full`),
* the automatic recovery's state, read from the backend now and then
  (:meth:`FleetModel.set_remediation`; the feeds do it),
* the Kubernetes fallback (backend gone): :meth:`FleetModel.apply_pods` /
  :meth:`FleetModel.apply_pod_change` — pods shown without emulator health, each
  :class:`Entry` marked ``origin == Origin.KUBERNETES``,
* connection states of every source: :meth:`FleetModel.set_link`.

View state (filter, sort, unhealthy-only, selection) lives here too, so the tiles and the
table views agree and the scriptable ``status`` command can reuse it.

Change notification coalesces bursts: every mutation bumps :attr:`FleetModel.version`;
subscribers (:meth:`FleetModel.subscribe`) are called on the event loop at most
``max_rate`` times per second, once per burst, however many changes the burst had; async
code can ``await model.wait_changed(seen_version)`` instead. Nothing here blocks or does
I/O. Malformed input never raises out of ``apply_*``: it becomes ``Entry.error`` of the
instance it was about, or the ``error`` of the source's :class:`Link`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from backend.models import (
    BreakerInfo,
    DiscoveryEvent,
    DiscoveryState,
    Instance,
    InstanceEvent,
    InstanceList,
    InstanceStatus,
    InstanceSummary,
    InstanceSummaryList,
    RemediationEvent,
    RemediationStatus,
    RemovedEvent,
    SnapshotEvent,
    SummaryEvent,
    SummarySnapshotEvent,
)
from emulator.models import EmulatorStatus
from locotui.data.link import LinkChange, LinkState
from locotui.data.query import FilterError, Query, parse_query
from locotui.data.remediation import needing_a_person

__all__ = [
    "SEVERITY",
    "Entry",
    "FilterError",
    "FleetModel",
    "Link",
    "Origin",
    "SortKey",
    "Source",
    "qemu_started_at",
    "supervisor_started_at",
]


class Source(StrEnum):
    BACKEND = "backend"
    KUBERNETES = "kubernetes"
    PROMETHEUS = "prometheus"


class Origin(StrEnum):
    """Where an entry's current data came from."""

    BACKEND = "backend"
    KUBERNETES = "kubernetes"
    """Kubernetes-only fallback: pod facts, no emulator health (status derived from the
    pod alone, reason says so)."""


class SortKey(StrEnum):
    NAME = "name"
    STATUS = "status"  # worst first (needing a person before all)
    FPS = "fps"  # lowest first (the slow ones are the interesting ones)
    RESTARTS = "restarts"  # most first
    AGE = "age"  # youngest first (just restarted)


# Worst first: the order an operator wants to read the fleet in.
SEVERITY: dict[InstanceStatus, int] = {
    InstanceStatus.UNHEALTHY: 0,
    InstanceStatus.DEGRADED: 1,
    InstanceStatus.UNKNOWN: 2,
    InstanceStatus.STARTING: 3,
    InstanceStatus.HEALTHY: 4,
}


@dataclass
class Link:
    """The state of one source's connection, for the status bar."""

    source: Source
    state: LinkState = LinkState.IDLE
    error: str | None = None
    """The last error (kept while reconnecting, cleared once connected)."""
    retry_at: float | None = None
    """``time.monotonic()`` of the next attempt while RECONNECTING."""
    since: float = 0.0
    """``time.monotonic()`` of the last state change."""
    last_data_at: float | None = None
    """``time.monotonic()`` of the last data received through this link."""
    detail: str | None = None
    malformed: int = 0
    """Malformed items received (each one also sets ``error``)."""

    def retry_in(self, now: float | None = None) -> float | None:
        if self.retry_at is None:
            return None
        return max(0.0, self.retry_at - (time.monotonic() if now is None else now))


def qemu_started_at(health: EmulatorStatus | None) -> datetime | None:
    """When the emulator's current QEMU started. The backend does not republish a health
    body when only its clocks moved, so an age is computed from this, never read from
    ``uptime_seconds`` (older supervisors: derived from it and the body's own timestamp)."""
    if health is None:
        return None
    if health.qemu.started_at is not None:
        return health.qemu.started_at
    if health.qemu.uptime_seconds is None:
        return None
    return health.timestamp.astimezone(UTC) - timedelta(seconds=health.qemu.uptime_seconds)


def supervisor_started_at(health: EmulatorStatus) -> datetime:
    """When the emulator's supervisor started (see :func:`qemu_started_at`)."""
    if health.supervisor_started_at is not None:
        return health.supervisor_started_at
    seconds = health.supervisor_uptime_seconds
    return health.timestamp.astimezone(UTC) - timedelta(seconds=seconds)


@dataclass
class Entry:
    """One instance as the UI shows it. The overview (tiles, table, header) reads only
    :attr:`summary`; the full instance is there when it came with the data (the Kubernetes
    fallback, the full event stream) or was fetched for the detail view."""

    name: str
    summary: InstanceSummary
    full: Instance | None = None
    """The instance with its health body, as of :attr:`full_for` (None: not fetched)."""
    full_for: InstanceSummary | None = None
    """The summary that was current when :attr:`full` was taken (is it up to date?)."""
    origin: Origin = Origin.BACKEND
    error: str | None = None
    """Why the latest update about this instance could not be used (malformed data)."""
    updated_at: float = 0.0
    """``time.monotonic()`` of the last update."""
    fps_history: deque[tuple[float, float | None]] = field(default_factory=deque)
    """(unix time, fps or None while unknown), oldest first, bounded."""
    status_history: deque[tuple[float, InstanceStatus]] = field(default_factory=deque)
    """(unix time, status) at every status *change*, oldest first, bounded."""
    breaker_history: deque[tuple[datetime, str, int]] = field(
        default_factory=lambda: deque(maxlen=50)
    )
    """(since, state, failures) at every circuit-breaker state change this session."""

    @property
    def status(self) -> InstanceStatus:
        return self.summary.status

    @property
    def fps(self) -> float | None:
        return self.summary.fps

    @property
    def healthy(self) -> bool:
        return self.summary.status is InstanceStatus.HEALTHY

    @property
    def restarts(self) -> int:
        """Pod restarts plus the supervisor's QEMU restarts (either means trouble)."""
        return self.summary.restarts

    @property
    def node(self) -> str | None:
        return self.summary.node

    @property
    def started_at(self) -> datetime | None:
        """When the instance (pod, else the QEMU process) started; None when unknown."""
        return self.summary.started_at

    @property
    def full_current(self) -> bool:
        """:attr:`full` shows what the summary does (nothing changed since it was taken)."""
        return self.full is not None and self.full_for is self.summary

    def fps_values(self, n: int | None = None) -> list[float]:
        """The last ``n`` fps samples for a sparkline (unknown samples as 0.0)."""
        values = [v if v is not None else 0.0 for _, v in self.fps_history]
        return values[-n:] if n else values


Callback = Callable[[], None]


class FleetModel:
    """See the module docstring. Not thread-safe: use it from the event loop only."""

    def __init__(
        self,
        *,
        history_points: int = 300,
        status_history_points: int = 100,
        decision_points: int = 100,
        max_rate: float = 10.0,
        sample_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.history_points = history_points
        self.status_history_points = status_history_points
        self.max_rate = max_rate
        self.sample_interval = sample_interval
        self._clock = clock
        self._wall = wall_clock
        self.entries: dict[str, Entry] = {}
        self.discovery: DiscoveryState | None = None
        self.links: dict[Source, Link] = {s: Link(s, since=clock()) for s in Source}
        self.revision: int | None = None
        """The backend's fleet revision of the last snapshot/event applied."""
        self.remediation: RemediationStatus | None = None
        """The automatic recovery's state as last read from the backend (None: not read
        yet; :data:`locotui.data.remediation.OFF` when the backend has it off or lacks it)."""
        self.decisions: deque[RemediationEvent] = deque(maxlen=decision_points)
        """The automatic recovery's recent decisions, oldest first (bounded)."""
        self.decisions_total = 0
        """Decisions received in this session (the deque keeps only the newest)."""
        # view state
        self._query = Query()
        self.views: dict[str, str] = {}
        """Saved filters by name (the config's ``[views]``), used as ``@name``."""
        self._sort_key = SortKey.NAME
        self._sort_reverse = False
        self._unhealthy_only = False
        self.selection: set[str] = set()
        self._view: tuple[int, list[Entry]] | None = None
        # notification
        self.version = 0
        self._subscribers: list[Callback] = []
        self._changed = asyncio.Event()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_flush = float("-inf")
        self._notified_version = 0
        self.notifications = 0
        """How many times subscribers were called (for tests and benchmarks)."""

    # ------------------------------------------------------------------ notification
    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Calls ``callback()`` after changes, at most ``max_rate`` times/s; returns an
        unsubscribe function. Called on the event loop; never concurrently."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    async def wait_changed(self, seen: int) -> int:
        """Waits until the notified version is > ``seen`` (coalesced like subscribers) and
        returns it. Bound it with ``asyncio.timeout`` where needed."""
        while self._notified_version <= seen:
            await self._changed.wait()
        return self._notified_version

    def _touch(self) -> None:
        self.version += 1
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # No loop (plain synchronous use, e.g. a test or a one-shot command): there is
            # nothing to coalesce with, so notify at once.
            self._flush()
            return
        if self._flush_handle is not None:
            return  # a flush is already scheduled; it will see this change too
        now = self._clock()
        delay = max(0.0, self._last_flush + 1.0 / self.max_rate - now)
        if delay == 0.0:
            # Defer to the next loop iteration anyway, so a burst applied in one go (a
            # snapshot of 200 instances) produces one notification, not two.
            self._flush_handle = loop.call_soon(self._flush)  # type: ignore[assignment]
        else:
            self._flush_handle = loop.call_later(delay, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self._notified_version == self.version:
            return
        self._last_flush = self._clock()
        self._notified_version = self.version
        self.notifications += 1
        self._changed.set()
        self._changed = asyncio.Event()
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:  # noqa: S112 - a broken widget must not stop the model
                continue

    def flush_now(self) -> None:
        """Delivers pending notifications immediately (e.g. before the app exits)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()

    # ------------------------------------------------------------------ links
    def set_link(self, source: Source | str, change: LinkChange | LinkState, **kw: Any) -> None:
        """Records a connection change of ``source`` (a LinkChange or a bare state)."""
        link = self.links[Source(source)]
        if isinstance(change, LinkState):
            change = LinkChange(change, **kw)
        now = self._clock()
        if change.state != link.state:
            link.since = now
        link.state = change.state
        if change.state is LinkState.CONNECTED:
            link.error = None
        elif change.error is not None:
            link.error = change.error
        link.retry_at = now + change.retry_in if change.retry_in is not None else None
        if change.detail is not None:
            link.detail = change.detail
        self._touch()

    def link_error(self, source: Source | str, message: str) -> None:
        """Records an error on a link without changing its state (e.g. malformed data)."""
        link = self.links[Source(source)]
        link.error = message
        link.malformed += 1
        self._touch()

    def data_age(self, now: float | None = None) -> float | None:
        """Seconds since any source last delivered data (None before the first)."""
        stamps = [ln.last_data_at for ln in self.links.values() if ln.last_data_at is not None]
        if not stamps:
            return None
        return max(0.0, (self._clock() if now is None else now) - max(stamps))

    @property
    def live(self) -> bool:
        """The backend stream is connected (else what is shown is last-known or fallback)."""
        return self.links[Source.BACKEND].state is LinkState.CONNECTED

    # ------------------------------------------------------------------ backend input
    def apply_event(self, event: Any) -> None:
        """Applies one item from :meth:`BackendClient.events` (events, LinkChange and
        MalformedEvent alike); anything unexpected is recorded as a link error."""
        from locotui.data.backend_client import MalformedEvent

        if isinstance(event, LinkChange):
            self.set_link(Source.BACKEND, event)
            return
        self.links[Source.BACKEND].last_data_at = self._clock()
        if isinstance(event, SnapshotEvent | SummarySnapshotEvent):
            self.apply_snapshot(event.fleet)
        elif isinstance(event, InstanceEvent):
            self._upsert(event.instance, Origin.BACKEND)
            self.revision = event.seq
            self._touch()
        elif isinstance(event, SummaryEvent):
            self._upsert_summary(event.instance, Origin.BACKEND)
            self.revision = event.seq
            self._touch()
        elif isinstance(event, RemovedEvent):
            self._remove(event.name)
            self._touch()
        elif isinstance(event, DiscoveryEvent):
            self.discovery = event.discovery
            self._touch()
        elif isinstance(event, RemediationEvent):
            # The instance's rung arrives as an instance event of its own; this is the
            # decision itself (what was done, or not, and why), kept for the UI to report.
            self.decisions.append(event)
            self.decisions_total += 1
            self._touch()
        elif isinstance(event, MalformedEvent):
            where = f"instance {event.name}: " if event.name else ""
            message = f"malformed {event.event or 'event'} from backend: {where}{event.error}"
            if event.name and event.name in self.entries:
                self.entries[event.name].error = message
            self.link_error(Source.BACKEND, message)
        else:
            self.link_error(Source.BACKEND, f"unexpected item from backend: {type(event).__name__}")

    def decisions_since(self, seen: int) -> tuple[list[RemediationEvent], int]:
        """The decisions received after the first ``seen`` of this session (as far as the
        deque still holds them), and the count to pass next time."""
        new = min(self.decisions_total - seen, len(self.decisions))
        if new <= 0:
            return [], self.decisions_total
        return list(self.decisions)[-new:], self.decisions_total

    def set_remediation(self, status: RemediationStatus) -> None:
        """The automatic recovery's state, as the backend answered it."""
        if status == self.remediation:
            return
        self.remediation = status
        self._touch()

    def needing_a_person(self) -> list[Entry]:
        """The entries the automatic recovery gave up on, in natural name order."""
        names = {i.name for i in needing_a_person(e.summary for e in self.entries.values())}
        return [self.entries[n] for n in sorted(names, key=_natural)]

    def apply_snapshot(self, fleet: InstanceList | InstanceSummaryList) -> None:
        """Replaces every entry with the backend's list, full or summary (history of kept
        names survives)."""
        names = {i.name for i in fleet.items}
        for gone in [n for n in self.entries if n not in names]:
            self._remove(gone)
        for item in fleet.items:
            if isinstance(item, Instance):
                self._upsert(item, Origin.BACKEND)
            else:
                self._upsert_summary(item, Origin.BACKEND)
        self.discovery = fleet.discovery
        self.revision = fleet.revision
        self.links[Source.BACKEND].last_data_at = self._clock()
        self._touch()

    def apply_instance_json(self, data: str | bytes | dict[str, Any]) -> None:
        """Parses and upserts one instance; a bad one becomes that entry's error."""
        try:
            inst = (
                Instance.model_validate(data)
                if isinstance(data, dict)
                else Instance.model_validate_json(data)
            )
        except ValidationError as exc:
            name = data.get("name") if isinstance(data, dict) else None
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
            loc = ".".join(str(p) for p in first.get("loc", ()))
            message = f"malformed instance data ({loc}: {first['msg']})"
            if isinstance(name, str) and name in self.entries:
                self.entries[name].error = message
            self.link_error(Source.BACKEND, message if not name else f"{name}: {message}")
            return
        self._upsert(inst, Origin.BACKEND)
        self._touch()

    def upsert(self, instance: Instance, origin: Origin = Origin.BACKEND) -> None:
        """Inserts or replaces one instance."""
        self._upsert(instance, origin)
        self._touch()

    def set_full(self, instance: Instance, taken_for: InstanceSummary | None = None) -> None:
        """The full form of an entry, fetched (``GET /api/instances/{name}``) when its
        summary was ``taken_for``; the summary itself stays what the stream said."""
        entry = self.entries.get(instance.name)
        if entry is None:
            return
        entry.full = instance
        entry.full_for = taken_for if taken_for is not None else entry.summary
        self._touch()

    # ------------------------------------------------------------------ kubernetes input
    def apply_pods(self, instances: Iterable[Instance]) -> None:
        """Replaces the fleet with Kubernetes-only instances (the fallback view).

        ``instances`` come from :meth:`KubeClient.pods_as_instances` (pod facts, no health).
        """
        items = list(instances)
        names = {i.name for i in items}
        for gone in [n for n in self.entries if n not in names]:
            self._remove(gone)
        for inst in items:
            self._upsert(inst, Origin.KUBERNETES)
        self.links[Source.KUBERNETES].last_data_at = self._clock()
        self._touch()

    def apply_pod_change(self, kind: str, instance: Instance) -> None:
        """One watch event of the fallback view: ADDED/MODIFIED upsert, DELETED removes."""
        if kind == "DELETED":
            self._remove(instance.name)
        else:
            self._upsert(instance, Origin.KUBERNETES)
        self.links[Source.KUBERNETES].last_data_at = self._clock()
        self._touch()

    # ------------------------------------------------------------------ internals
    def _upsert(self, inst: Instance, origin: Origin) -> None:
        entry = self._upsert_summary(inst.summary(), origin, inst.breaker)
        entry.full, entry.full_for = inst, entry.summary

    def _upsert_summary(
        self, s: InstanceSummary, origin: Origin, breaker: BreakerInfo | None = None
    ) -> Entry:
        now, wall = self._clock(), self._wall()
        entry = self.entries.get(s.name)
        if entry is None:
            entry = Entry(
                s.name,
                s,
                origin=origin,
                fps_history=deque(maxlen=self.history_points),
                status_history=deque(maxlen=self.status_history_points),
            )
            self.entries[s.name] = entry
        if entry.origin is not origin:
            # The full form came from the other source: it is not this one's to show.
            entry.full = entry.full_for = None
        entry.summary = s
        entry.origin = origin
        entry.error = None
        entry.updated_at = now
        if not entry.status_history or entry.status_history[-1][1] is not s.status:
            entry.status_history.append((wall, s.status))
        if not entry.breaker_history or entry.breaker_history[-1][1] != s.breaker.value:
            since = (breaker.since if breaker else s.breaker_since) or datetime.fromtimestamp(
                wall, UTC
            )
            failures = breaker.failures if breaker else 0
            entry.breaker_history.append((since, s.breaker.value, failures))
        if origin is Origin.BACKEND:
            # Backend updates can arrive many times a second; keep at most one sample per
            # sample_interval so the sparkline's x axis is roughly time.
            hist = entry.fps_history
            if hist and wall - hist[-1][0] < self.sample_interval:
                hist[-1] = (hist[-1][0], s.fps)
            else:
                hist.append((wall, s.fps))
        return entry

    def _remove(self, name: str) -> None:
        self.entries.pop(name, None)
        self.selection.discard(name)

    def clear(self) -> None:
        self.entries.clear()
        self.selection.clear()
        self.discovery = None
        self._touch()

    # ------------------------------------------------------------------ view state
    @property
    def filter_text(self) -> str:
        return self._query.text

    def set_filter(self, text: str) -> None:
        """Filters with the query language of :mod:`locotui.data.query`: terms that must
        all match, ``field:value`` (name, node, status, reason, source, rung, accel),
        ``!`` to invert, ``/regex/``, ``@view`` for a saved filter. Plain text matches any
        field, including the automatic recovery's rung (``needs``).

        Raises :class:`FilterError` for a bad query (the previous filter stays).
        """
        self._query = parse_query(text, self.views)
        self._touch()

    @staticmethod
    def filter_fields(entry: Entry) -> dict[str, str]:
        """What the filter's fields hold for ``entry``."""
        inst = entry.summary
        return {
            "name": entry.name,
            "node": entry.node or "",
            "status": inst.status.value,
            "reason": inst.reason or entry.error or "",
            "source": entry.origin.value,
            # "needs" finds the instances the automatic recovery gave up on.
            "rung": inst.remediation.rung.replace("_", " ") if inst.remediation else "",
            "accel": inst.accel or "",
        }

    @property
    def sort_key(self) -> SortKey:
        return self._sort_key

    @property
    def sort_reverse(self) -> bool:
        return self._sort_reverse

    def set_sort(self, key: SortKey | str, reverse: bool | None = None) -> None:
        self._sort_key = SortKey(key)
        if reverse is not None:
            self._sort_reverse = reverse
        self._touch()

    def cycle_sort(self) -> SortKey:
        keys = list(SortKey)
        self.set_sort(keys[(keys.index(self._sort_key) + 1) % len(keys)])
        return self._sort_key

    @property
    def unhealthy_only(self) -> bool:
        return self._unhealthy_only

    def set_unhealthy_only(self, value: bool) -> None:
        self._unhealthy_only = value
        self._touch()

    def matches(self, entry: Entry) -> bool:
        if self._unhealthy_only and entry.healthy and not entry.error:
            return False
        return not self._query or self._query.matches(self.filter_fields(entry))

    def _sort_tuple(self, e: Entry) -> tuple[Any, ...]:
        key = self._sort_key
        if key is SortKey.STATUS:
            # Worst first, and worse than any status: the ones nobody is fixing.
            rung = e.summary.remediation
            return (not (rung and rung.rung == "needs_person"), SEVERITY[e.status], e.name)
        if key is SortKey.FPS:
            # Unknown fps sorts first: it is worse than any number.
            return (e.fps is not None, e.fps or 0.0, e.name)
        if key is SortKey.RESTARTS:
            return (-e.restarts, e.name)
        if key is SortKey.AGE:
            started = e.started_at
            return (started is None, -(started.timestamp()) if started else 0.0, e.name)
        return (_natural(e.name),)

    def view(self) -> list[Entry]:
        """The entries to show: filtered, then sorted by the current key. Kept until the
        model changes (every change bumps :attr:`version`): the once-a-second repaint of
        an idle fleet of a thousand does not sort it again. Do not modify the list."""
        cached = self._view
        if cached is not None and cached[0] == self.version:
            return cached[1]
        shown = [e for e in self.entries.values() if self.matches(e)]
        shown.sort(key=self._sort_tuple, reverse=self._sort_reverse)
        self._view = (self.version, shown)
        return shown

    def counts(self) -> dict[InstanceStatus, int]:
        """Instances per status (all of them, ignoring the filter)."""
        out = dict.fromkeys(InstanceStatus, 0)
        for e in self.entries.values():
            out[e.status] += 1
        return out

    # ------------------------------------------------------------------ selection
    def select(self, names: str | Iterable[str]) -> None:
        for n in [names] if isinstance(names, str) else names:
            if n in self.entries:
                self.selection.add(n)
        self._touch()

    def deselect(self, names: str | Iterable[str]) -> None:
        for n in [names] if isinstance(names, str) else names:
            self.selection.discard(n)
        self._touch()

    def toggle(self, name: str) -> bool:
        """Toggles ``name``; returns whether it is now selected."""
        if name in self.selection:
            self.selection.discard(name)
        elif name in self.entries:
            self.selection.add(name)
        self._touch()
        return name in self.selection

    def select_visible(self) -> None:
        self.selection.update(e.name for e in self.view())
        self._touch()

    def clear_selection(self) -> None:
        self.selection.clear()
        self._touch()

    def targets(self, focused: str | None = None) -> list[str]:
        """What an action applies to: the selection (in view order) when there is one,
        else the focused instance."""
        if self.selection:
            order = {e.name: i for i, e in enumerate(self.view())}
            return sorted(self.selection, key=lambda n: (order.get(n, len(order)), n))
        return [focused] if focused and focused in self.entries else []

    def get(self, name: str) -> Entry | None:
        return self.entries.get(name)

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> Sequence[str]:
        return sorted(self.entries, key=_natural)


@functools.lru_cache(maxsize=8192)
def _natural(name: str) -> tuple[Any, ...]:
    """Sort key so loco-emulator-10 comes after loco-emulator-9."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))

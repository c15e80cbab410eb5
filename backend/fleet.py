"""The one in-memory view of the fleet, and the ordered stream of its changes.

Everything that changes what an operator sees goes through here, on the event loop
thread: discovery (targets appearing, changing, disappearing; discovery's own state), the
prober (health bodies, probe failures) and the breakers (state changes). Each change
re-derives the affected instance with the status rule and, only if its JSON differs,
publishes one event with the next sequence number.

Serialization happens once per change, not per request: each instance's JSON is kept as
bytes, the list body is assembled from those bytes on the first request after a change
(and kept with its ETag until the next change), and SSE events are stored pre-formatted.
PLATFORM.md measured that as the difference between ~4.7k and ~6.9k requests/s.

Change notification uses an :class:`asyncio.Event` that is replaced at every publish, so
any number of subscribers wake on a change without polling and without per-subscriber
queues; each subscriber remembers the last sequence number it sent and reads the bounded
event buffer from there (or gets a fresh snapshot when it fell too far behind).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import logging
import secrets
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from backend.discovery.base import Target
from backend.metrics import BackendMetrics
from backend.models import (
    BreakerInfo,
    BreakerState,
    DiscoveryState,
    Instance,
    InstanceSource,
    InstanceStatus,
    RemediationEvent,
    RemediationInfo,
    TimelineEntry,
)
from backend.status_rule import StatusInputs, derive_status
from emulator import sse
from emulator.jsonlog import log
from emulator.models import CLOCK_FIELDS, EmulatorStatus, with_published_rates

logger = logging.getLogger("backend.fleet")


class FleetObserver(Protocol):
    """Told when a target's address appears or changes, and when it goes away."""

    def target_changed(self, target: Target) -> None: ...

    def target_removed(self, name: str) -> None: ...


@dataclass(slots=True)
class _Record:
    target: Target
    health: EmulatorStatus | None = None
    probed: bool = False
    probe_ok: bool = False
    last_error: str | None = None
    last_probe_at: datetime | None = None
    last_ok_at: datetime | None = None
    failing_since: datetime | None = None
    breaker: BreakerInfo = field(default_factory=BreakerInfo)
    instance: Instance | None = None
    remediation: RemediationInfo | None = None
    link: str | None = None
    timeline: deque[TimelineEntry] = field(default_factory=lambda: deque(maxlen=TIMELINE))
    json: bytes = b""
    summary: bytes = b""  # the summary list's form (InstanceSummary)
    significant: bytes = b""  # the instance without its clock-driven fields


# Fields that change with every probe although nothing happened (clocks and counters): a
# change in these alone is never published, so the list and the events do not change
# because time passed. Before, every probe was an event: ~100 events and 130 kB of JSON a
# second at 200 instances, for no news. The health body's part is the supervisor's own
# definition (its status stream leaves out exactly these); whoever shows an age computes it
# from the absolute timestamps.
_VOLATILE: dict[str, Any] = {
    "last_probe_at": True,
    "last_ok_at": True,
    # A dead target's failed breaker trials change only these; the breaker's state and
    # since are kept across trials (backend.breaker), so the status does not flicker.
    "breaker": {"failures", "retry_at"},
    "health": CLOCK_FIELDS,
}
TIMELINE = 200
"""Entries kept per instance: status changes, the policy's and people's actions."""


class Fleet:
    def __init__(
        self,
        source: InstanceSource,
        discovery: DiscoveryState,
        metrics: BackendMetrics | None = None,
        event_buffer: int = 4096,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self._records: dict[str, _Record] = {}
        self._names: list[str] = []  # sorted; the list body is in name order
        self._epoch = secrets.token_hex(4)
        self._discovery = discovery
        self._discovery_json = discovery.model_dump_json().encode()
        self._discovery_stale_since: datetime | None = None
        self._observers: list[FleetObserver] = []
        self._seq = 0
        self._changed_at = datetime.now(UTC)
        # (seq, the event, its summary form or None when that stream leaves it out)
        self._events: deque[tuple[int, bytes, bytes | None]] = deque(maxlen=event_buffer)
        self._changed = asyncio.Event()
        self._list_cache: tuple[bytes, str] | None = None
        self._summary_cache: tuple[bytes, str] | None = None
        self._status_counts: Counter[InstanceStatus] = Counter()
        self._link_counts: Counter[str | None] = Counter()
        self._stale_count = 0

    # ------------------------------------------------------------------ observers
    def add_observer(self, observer: FleetObserver) -> None:
        self._observers.append(observer)

    # ------------------------------------------------------------------ discovery sink
    def sync(self, targets: list[Target]) -> None:
        """A complete list from discovery: upsert each, remove every instance not listed."""
        wanted = {t.name for t in targets}
        for name in [n for n in self._records if n not in wanted]:
            self.remove(name)
        for target in targets:
            self.upsert(target)

    def upsert(self, target: Target) -> None:
        rec = self._records.get(target.name)
        if rec is not None and rec.target == target:
            return
        if rec is None:
            rec = _Record(target=target)
            self._records[target.name] = rec
            bisect.insort(self._names, target.name)
            address_changed = probing_changed = True
        else:
            address_changed = rec.target.health_url != target.health_url
            # Probing starts or stops with it (a lost supervisor is not probed).
            probing_changed = address_changed or rec.target.lost != target.lost
            rec.target = target
            if address_changed:
                # A new address is a different supervisor process (a replaced pod): what
                # the old one said is not last-known data about the new one.
                rec.health = None
                rec.probed = rec.probe_ok = False
                rec.failing_since = None
                rec.last_error = None
                rec.breaker = BreakerInfo()
        self._rebuild(rec)
        if probing_changed:
            for obs in self._observers:
                obs.target_changed(target)

    def remove(self, name: str) -> None:
        rec = self._records.pop(name, None)
        if rec is None:
            return
        del self._names[bisect.bisect_left(self._names, name)]
        if rec.instance is not None:
            self._count(rec.instance, -1)
        for obs in self._observers:
            obs.target_removed(name)
        if self.metrics is not None:
            self.metrics.forget_target(name)
        data = json.dumps({"type": "removed", "seq": self._seq + 1, "name": name}).encode()
        self._publish("removed", data)

    def discovery_state(self, state: DiscoveryState) -> None:
        data = state.model_dump_json().encode()
        if data == self._discovery_json:
            return
        was_stale = self._discovery_stale_since is not None
        self._discovery = state
        self._discovery_json = data
        now_stale = not state.ok
        if now_stale and not was_stale:
            self._discovery_stale_since = datetime.now(UTC)
        elif not now_stale:
            self._discovery_stale_since = None
        if self.metrics is not None:
            self.metrics.discovery_up.set(1 if state.ok else 0)
            if state.last_sync is not None:
                self.metrics.discovery_last_sync.labels(state.source.value).set(
                    state.last_sync.timestamp()
                )
        seq = self._seq + 1
        self._publish("discovery", b'{"type":"discovery","seq":%d,"discovery":%s}' % (seq, data))
        if was_stale != now_stale:
            for rec in list(self._records.values()):
                self._rebuild(rec)

    # ------------------------------------------------------------------ prober input
    def probe_succeeded(self, name: str, health: EmulatorStatus, link: str = "probe") -> None:
        """A health body arrived: from a probe, or (``link="stream"``) on the status stream."""
        rec = self._records.get(name)
        if rec is None:
            return
        now = datetime.now(UTC)
        rec.link = link
        # A rate that only jitters keeps its published figure, so a probed emulator costs
        # an event no more often than a streaming one (whose supervisor applies the same).
        rec.health = with_published_rates(
            rec.instance.health if rec.instance is not None else None, health
        )
        rec.probed = rec.probe_ok = True
        rec.last_error = None
        rec.last_probe_at = rec.last_ok_at = now
        rec.failing_since = None
        self._rebuild(rec)

    def probe_failed(self, name: str, error: str) -> None:
        """A probe failed, or a status stream could not be opened or broke: either way the
        health is probed now (``link`` becomes ``probe``)."""
        rec = self._records.get(name)
        if rec is None:
            return
        now = datetime.now(UTC)
        rec.link = "probe"
        if rec.probe_ok or rec.failing_since is None:
            rec.failing_since = now
        rec.probed = True
        rec.probe_ok = False
        rec.last_error = error
        rec.last_probe_at = now
        self._rebuild(rec)

    def link_changed(self, name: str, link: str | None) -> None:
        """How ``name``'s health arrives now: ``stream``, ``probe``, or None (not watched)."""
        rec = self._records.get(name)
        if rec is None or rec.link == link:
            return
        rec.link = link
        self._rebuild(rec)

    # ------------------------------------------------------------------ remediation input
    def remediation_changed(self, name: str, info: RemediationInfo | None) -> None:
        """The automatic recovery's rung for ``name`` (None: not on the ladder)."""
        rec = self._records.get(name)
        if rec is None or rec.remediation == info:
            return
        rec.remediation = info
        self._rebuild(rec)

    def remediation_decided(self, event: RemediationEvent) -> None:
        """One decision of the automatic recovery: a fleet event of its own, and a line
        of the instance's timeline."""
        rec = self._records.get(event.instance)
        if rec is not None:
            rec.timeline.append(
                TimelineEntry(
                    at=event.at,
                    kind="remediation",
                    text=f"{event.action} ({event.outcome}): {event.reason}",
                    by="remediation",
                )
            )
        data = event.model_copy(update={"seq": self._seq + 1}).model_dump_json().encode()
        self._publish("remediation", data)

    def note_action(self, name: str, text: str, by: str | None) -> None:
        """A person's action on ``name`` (reset, restart, forget), for its timeline."""
        rec = self._records.get(name)
        if rec is not None:
            rec.timeline.append(
                TimelineEntry(at=datetime.now(UTC), kind="action", text=text, by=by)
            )

    def timeline(self, name: str) -> list[TimelineEntry] | None:
        rec = self._records.get(name)
        return list(rec.timeline) if rec is not None else None

    def breaker_changed(self, name: str, info: BreakerInfo) -> None:
        rec = self._records.get(name)
        if rec is None:
            return
        rec.breaker = info
        if info.state is BreakerState.HALF_OPEN and not rec.probe_ok:
            # A trial call is under way; its outcome (closed, or open again) is the news.
            return
        self._rebuild(rec)

    # ------------------------------------------------------------------ derivation
    def _derive(self, rec: _Record) -> Instance:
        t = rec.target
        status, reason = derive_status(
            StatusInputs(
                pod=t.pod,
                health=rec.health,
                probed=rec.probed,
                probe_ok=rec.probe_ok,
                breaker=rec.breaker.state,
                last_error=rec.last_error,
                lost=t.lost,
            )
        )
        stale_since: datetime | None = None
        reasons: list[str] = []
        health_fresh = (
            rec.probe_ok and rec.breaker.state is not BreakerState.OPEN and t.lost is None
        )
        if rec.health is not None and not health_fresh:
            if t.lost is not None:
                stale_since = t.lost_since
                reasons.append("health is last-known: supervisor lost")
            else:
                stale_since = rec.failing_since
                reasons.append("health is last-known: probes failing")
        if self._discovery_stale_since is not None:
            what = "pod facts" if t.pod is not None else "instance list"
            reasons.append(f"{what} last-known: discovery out of contact")
            if stale_since is None or self._discovery_stale_since < stale_since:
                stale_since = self._discovery_stale_since
        stale = bool(reasons)
        return Instance(
            name=t.name,
            source=t.source,
            status=status,
            status_reason=reason,
            pod=t.pod,
            health=rec.health,
            fps=rec.health.video.estimated_frame_rate if rec.health and health_fresh else None,
            breaker=rec.breaker,
            stale=stale,
            stale_since=stale_since if stale else None,
            stale_reason="; ".join(reasons) or None,
            last_error=rec.last_error,
            last_probe_at=rec.last_probe_at,
            last_ok_at=rec.last_ok_at,
            health_url=t.health_url,
            vnc=t.vnc,
            logs_available=bool(t.log_file) or t.source is InstanceSource.KUBERNETES,
            lost_since=t.lost_since,
            remediation=rec.remediation,
            link=rec.link,  # type: ignore[arg-type]
        )

    def _count(self, inst: Instance, delta: int) -> None:
        self._status_counts[inst.status] += delta
        self._stale_count += delta if inst.stale else 0
        self._link_counts[inst.link] += delta
        if self.metrics is not None:
            self.metrics.instances.labels(inst.status.value).set(self._status_counts[inst.status])
            self.metrics.stale_instances.set(self._stale_count)
            if inst.link is not None:
                self.metrics.status_links.labels(inst.link).set(self._link_counts[inst.link])

    def _rebuild(self, rec: _Record) -> None:
        inst = self._derive(rec)
        significant = inst.model_dump_json(exclude=_VOLATILE).encode()
        if significant == rec.significant:
            return
        data = inst.model_dump_json().encode()
        rec.significant = significant
        old = rec.instance
        if old is not None:
            self._count(old, -1)
        self._count(inst, +1)
        if old is None or old.status is not inst.status:
            rec.timeline.append(
                TimelineEntry(
                    at=datetime.now(UTC),
                    kind="status",
                    text=inst.status.value
                    + (f": {inst.status_reason}" if inst.status_reason else ""),
                )
            )
        if old is not None and old.status is not inst.status:
            log(
                logger,
                logging.INFO,
                "instance status changed",
                instance=inst.name,
                old=old.status.value,
                new=inst.status.value,
                reason=inst.status_reason,
            )
        rec.instance = inst
        rec.json = data
        summary = inst.summary().model_dump_json(exclude_defaults=True).encode()
        summary_changed = summary != rec.summary
        rec.summary = summary
        if self.metrics is not None:
            self.metrics.set_instance_node(inst.name, inst.pod.node if inst.pod else None)
            if inst.fps is None:
                with contextlib.suppress(KeyError):
                    self.metrics.fps.remove(inst.name)
            else:
                self.metrics.fps.labels(inst.name).set(inst.fps)
            stream = inst.health.stream if inst.health is not None and not inst.stale else None
            if stream is None or stream.frames_per_second is None:
                with contextlib.suppress(KeyError):
                    self.metrics.stream_fps.remove(inst.name)
            else:
                self.metrics.stream_fps.labels(inst.name).set(stream.frames_per_second)
        seq = self._seq + 1
        self._publish(
            "instance",
            b'{"type":"instance","seq":%d,"instance":%s}' % (seq, data),
            # Summary subscribers hear of the change only when their form of it changed.
            b'{"type":"summary","seq":%d,"instance":%s}' % (seq, summary)
            if summary_changed
            else None,
        )

    def _publish(
        self, event: str, data: bytes, summary: bytes | Literal[False] | None = False
    ) -> None:
        """Appends an event to the buffer. ``summary`` is its data in the summary stream's
        form (event type ``summary``): None leaves it out of that stream, False (the
        default) means the same event in both."""
        self._seq += 1
        self._changed_at = datetime.now(UTC)
        full = sse.event(event, self._seq, data)
        brief = full if summary is False else None
        if summary:
            brief = sse.event("summary", self._seq, summary)
        self._events.append((self._seq, full, brief))
        self._list_cache = self._summary_cache = None
        if self.metrics is not None:
            self.metrics.fleet_events.labels(event).inc()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # ------------------------------------------------------------------ reads
    @property
    def seq(self) -> int:
        return self._seq

    @property
    def discovery(self) -> DiscoveryState:
        return self._discovery

    def __len__(self) -> int:
        return len(self._records)

    def names(self) -> Iterable[str]:
        return self._records.keys()

    def target(self, name: str) -> Target | None:
        rec = self._records.get(name)
        return rec.target if rec is not None else None

    def get(self, name: str) -> Instance | None:
        rec = self._records.get(name)
        return rec.instance if rec is not None else None

    def instance_json(self, name: str) -> bytes | None:
        rec = self._records.get(name)
        return rec.json if rec is not None else None

    def instances(self) -> list[Instance]:
        return [
            rec.instance
            for rec in (self._records[n] for n in self._names)
            if rec.instance is not None
        ]

    def list_body(self) -> tuple[bytes, str]:
        """The ``InstanceList`` JSON and its ETag, built at most once per change."""
        if self._list_cache is None:
            self._list_cache = self._assemble([self._records[n].json for n in self._names], "")
        return self._list_cache

    def summary_body(self) -> tuple[bytes, str]:
        """The ``InstanceSummaryList`` JSON and its ETag, built at most once per change."""
        if self._summary_cache is None:
            items = [self._records[n].summary for n in self._names]
            self._summary_cache = self._assemble(items, "-s")
        return self._summary_cache

    def _assemble(self, items: list[bytes], form: str) -> tuple[bytes, str]:
        generated = json.dumps(self._changed_at.isoformat().replace("+00:00", "Z"))
        body = b'{"items":[%s],"generated_at":%s,"revision":%d,"discovery":%s}' % (
            b",".join(items),
            generated.encode(),
            self._seq,
            self._discovery_json,
        )
        # The sequence number identifies the content within this process; the epoch makes
        # tags of an earlier process (same numbers, other content) never match. Cheaper
        # than hashing a megabyte on every change of a large fleet. Each form has its own.
        return body, f'"{self._epoch}-{self._seq}{form}"'

    def snapshot_event(self, summary: bool = False) -> tuple[int, bytes]:
        """A snapshot SSE event of the current fleet (``snapshot``, or with ``summary``
        ``summary_snapshot`` of the summary list), and the seq it stands at."""
        body, _ = self.summary_body() if summary else self.list_body()
        kind = b"summary_snapshot" if summary else b"snapshot"
        seq = self._seq
        return seq, sse.event(
            kind.decode(), seq, b'{"type":"%s","seq":%d,"fleet":%s}' % (kind, seq, body)
        )

    def events_after(self, seq: int, summary: bool = False) -> list[tuple[int, bytes]] | None:
        """Buffered events with a sequence number above ``seq``, in order (with
        ``summary``, in the summary stream's form: changes that leave an instance's summary
        as it was are left out, so its sequence numbers have gaps).

        None means the subscriber is too far behind (the buffer moved on): it needs a new
        snapshot rather than a stream with a hole in it.
        """
        if seq >= self._seq:
            return []
        if not self._events or seq + 1 < self._events[0][0]:
            return None
        start = seq + 1 - self._events[0][0]
        column = 2 if summary else 1
        return [
            (item[0], chunk)
            for item in itertools.islice(self._events, start, None)
            if (chunk := item[column]) is not None
        ]

    async def wait_for_change(self, after_seq: int) -> None:
        """Returns once an event after ``after_seq`` exists (callers bound it with a timeout)."""
        if self._seq > after_seq:
            return
        await self._changed.wait()

"""The backend's wire contract: the JSON that ``loco-backend`` serves.

Defined once, here, next to its producer; the TUI imports these models to parse what it
reads. The emulator's own ``/health`` body is embedded unchanged as
:class:`emulator.models.EmulatorStatus` (never redefined here).

Stability: fields are only ever added (with defaults), never renamed or removed, so an
older TUI keeps parsing a newer backend. Unknown fields are ignored on parse.

Server-sent events on ``GET /api/events`` carry one of the :data:`FleetEvent` models as the
JSON ``data`` of each event; the SSE ``event:`` name equals the model's ``type`` field and
the SSE ``id:`` equals its ``seq``. Parse with ``FLEET_EVENT_ADAPTER.validate_json(data)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from emulator.models import EmulatorStatus, StreamState

__all__ = [
    "FLEET_EVENT_ADAPTER",
    "SUMMARY_EVENT_ADAPTER",
    "ActionResult",
    "BackendHealth",
    "BreakerInfo",
    "BreakerState",
    "DiscoveryEvent",
    "DiscoveryMode",
    "DiscoveryState",
    "ErrorBody",
    "FleetEvent",
    "Instance",
    "InstanceEvent",
    "InstanceList",
    "InstanceSource",
    "InstanceStatus",
    "InstanceSummary",
    "InstanceSummaryList",
    "NamespaceSource",
    "PauseRequest",
    "PodCondition",
    "PodFacts",
    "ReadinessCheck",
    "ReadinessReport",
    "RemediationEvent",
    "RemediationInfo",
    "RemediationStatus",
    "RemovedEvent",
    "SnapshotEvent",
    "SummaryEvent",
    "SummarySnapshotEvent",
    "TimelineEntry",
]


class _Wire(BaseModel):
    # Ignore unknown fields so an older client parses a newer server's output.
    model_config = ConfigDict(extra="ignore")


class InstanceSource(StrEnum):
    """Where the backend learned about an instance (also the discovery mode)."""

    KUBERNETES = "kubernetes"
    STATIC = "static"
    LOCAL = "local"


DiscoveryMode = InstanceSource


class InstanceStatus(StrEnum):
    """The one derived status of an instance; see ``backend/status_rule.py`` for the rule."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    STARTING = "starting"
    UNKNOWN = "unknown"


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class NamespaceSource(StrEnum):
    """Which rule chose the Kubernetes namespace (first match wins, in this order)."""

    FLAG = "flag"
    ENV = "env"
    SERVICE_ACCOUNT = "service_account"
    KUBECONFIG = "kubeconfig"
    DEFAULT = "default"


class PodCondition(_Wire):
    type: str = Field(description="e.g. Ready, ContainersReady, PodScheduled, Initialized")
    status: str = Field(description="True, False or Unknown")
    reason: str | None = None
    message: str | None = None
    last_transition_time: datetime | None = None


class PodFacts(_Wire):
    """What Kubernetes says about the pod (kubernetes discovery only)."""

    phase: str | None = Field(None, description="Pending, Running, Succeeded, Failed, Unknown")
    ready: bool = Field(False, description="The pod's Ready condition is True")
    restarts: int = Field(0, description="Sum of container restart counts")
    node: str | None = None
    ip: str | None = None
    start_time: datetime | None = Field(
        None, description="When the kubelet started the pod; age = now - start_time"
    )
    created_at: datetime | None = None
    deleting: bool = Field(False, description="The pod has a deletionTimestamp (terminating)")
    waiting_reason: str | None = Field(
        None, description="A container's waiting reason, e.g. CrashLoopBackOff, ImagePullBackOff"
    )
    last_restart_reason: str | None = Field(
        None,
        description="How a container last ended before it was restarted (its lastState), "
        "e.g. 'Error (exit 137)' after a failed liveness probe, 'OOMKilled (exit 137)'",
    )
    last_restart_at: datetime | None = Field(None, description="When that container ended")
    uid: str | None = None
    resource_version: str | None = None
    conditions: list[PodCondition] = Field(default_factory=list)


class BreakerInfo(_Wire):
    """The circuit breaker in front of this instance's supervisor."""

    state: BreakerState = BreakerState.CLOSED
    failures: int = Field(0, description="Consecutive failed calls (reset by one success)")
    since: datetime | None = Field(None, description="When the breaker entered this state")
    retry_at: datetime | None = Field(
        None, description="While open: when the next call will be let through (half-open trial)"
    )


def _seconds(when: datetime | None) -> datetime | None:
    """``when`` to the whole second: what an age needs, in fewer bytes."""
    return None if when is None else when.replace(microsecond=0)


class RemediationInfo(_Wire):
    """Where an instance stands on the remediation ladder (absent while all is well)."""

    rung: Literal["reset", "restart", "needs_person"] = Field(
        description="reset or restart: that action was taken and the policy is watching; "
        "needs_person: the policy gave up on it"
    )
    since: datetime = Field(description="When this rung began")
    reason: str | None = Field(None, description="Why the instance was found bad")
    actions_last_hour: int = Field(0, description="Actions the policy took on it in an hour")


class Instance(_Wire):
    """One emulator as the backend sees it."""

    def summary(self) -> InstanceSummary:
        """The instance in the summary list's form."""
        pod, health = self.pod, self.health
        phase = None
        started = None
        if pod is not None:
            phase = "Terminating" if pod.deleting else pod.waiting_reason or pod.phase
            started = pod.start_time or pod.created_at
        qemu = None
        if health is not None:
            q = health.qemu
            qemu = q.qmp_status or ("running" if q.running else "not running")
            if started is None:
                started = q.started_at
                if started is None and q.uptime_seconds is not None:  # an older supervisor
                    started = health.timestamp - timedelta(seconds=q.uptime_seconds)
        reason = self.status_reason
        if reason is None and health is not None and health.reasons:
            reason = health.reasons[0]
        closed = self.breaker.state is BreakerState.CLOSED
        return InstanceSummary(
            name=self.name,
            source=self.source,
            status=self.status,
            reason=reason or self.last_error,
            stale=self.stale,
            stale_since=_seconds(self.stale_since),
            fps=self.fps,
            measuring=(
                self.fps is None
                and not self.stale
                and health is not None
                and health.video.estimated_frame_rate is None
                and self.status in (InstanceStatus.HEALTHY, InstanceStatus.STARTING)
            ),
            breaker=self.breaker.state,
            breaker_since=None if closed else _seconds(self.breaker.since),
            phase=phase,
            ready=pod.ready if pod is not None else None,
            restarts=(pod.restarts if pod else 0) + (health.qemu.restarts if health else 0),
            started_at=_seconds(started),
            node=pod.node if pod is not None else None,
            qemu=qemu,
            crash_loop=health is not None and health.qemu.crash_loop,
            lost_since=_seconds(self.lost_since),
            remediation=self.remediation,
            watched=self.health_url is not None,
            accel=health.qemu.accel if health is not None else None,
            stream=(
                StreamSummary(state=health.stream.state, fps=health.stream.frames_per_second)
                if health is not None and health.stream is not None
                else None
            ),
        )

    name: str
    source: InstanceSource
    status: InstanceStatus = Field(description="Derived by the documented status rule")
    status_reason: str | None = Field(
        None, description="Why the status is what it is, short and human-readable"
    )
    pod: PodFacts | None = Field(None, description="Kubernetes pod facts; null for static/local")
    health: EmulatorStatus | None = Field(
        None, description="The emulator's last /health body (last-known when stale)"
    )
    fps: float | None = Field(
        None, description="Current frame rate; null when no fresh health is available"
    )
    breaker: BreakerInfo = Field(default_factory=BreakerInfo)
    stale: bool = Field(False, description="Some of what is shown is last-known, not current")
    stale_since: datetime | None = None
    stale_reason: str | None = Field(
        None, description="What is stale: the health probe failing, or discovery out of contact"
    )
    last_error: str | None = Field(None, description="Most recent probe or discovery error")
    last_probe_at: datetime | None = Field(
        None, description="When the last probe finished, or the last status arrived on the stream"
    )
    last_ok_at: datetime | None = Field(
        None, description="When a probe last succeeded, or the last status arrived on the stream"
    )
    link: Literal["stream", "probe"] | None = Field(
        None,
        description="How the emulator's health arrives: stream (its supervisor's status "
        "stream is open: changes are pushed), probe (polled: a supervisor without the stream, "
        "or the stream could not be opened and is retried with backoff); null when the "
        "supervisor is not watched (lost, or probing off)",
    )
    health_url: str | None = Field(None, description="Base URL of the emulator's supervisor")
    vnc: str | None = Field(None, description="host:port of the instance's VNC server")
    logs_available: bool = Field(
        False, description="GET /api/instances/{name}/logs can serve this instance's log"
    )
    lost_since: datetime | None = Field(
        None,
        description="Set when the supervisor is gone without unregistering (local discovery): "
        "since when it is known lost; status_reason says why. DELETE the instance to forget it",
    )
    remediation: RemediationInfo | None = Field(
        None, description="The automatic recovery's rung for this instance, when it is on one"
    )


class DiscoveryState(_Wire):
    source: InstanceSource
    ok: bool = Field(description="The last discovery attempt succeeded")
    synced: bool = Field(False, description="Discovery has completed at least one full sync")
    last_sync: datetime | None = Field(None, description="When the last full sync completed")
    error: str | None = None
    namespace: str | None = Field(None, description="Kubernetes namespace (kubernetes only)")
    namespace_source: NamespaceSource | None = None
    detail: str | None = Field(
        None, description="Where discovery looks: static file, local directory, or API server"
    )


class InstanceList(_Wire):
    """Body of ``GET /api/instances``; items sorted by name."""

    items: list[Instance]
    generated_at: datetime = Field(description="When this view of the fleet last changed")
    revision: int = Field(0, description="Increases with every change of the fleet")
    discovery: DiscoveryState


class StreamSummary(_Wire):
    """The emulator's video stream as the summary list has it: what a tile's mark needs.
    The rest (bitrate, drops, viewers, where it goes) is in the full health."""

    state: StreamState
    fps: float | None = Field(
        None, description="Encoded frames per second leaving the encoder; null until measured"
    )


class InstanceSummary(_Wire):
    """One instance as the summary list has it: what a fleet overview shows (the console's
    tiles and table), without the health body. Fields at their default are left out of the
    JSON (a healthy instance is about 150 bytes); the full instance is
    ``GET /api/instances/{name}``. Moments are whole seconds: whoever shows an age computes
    it from them."""

    name: str
    source: InstanceSource
    status: InstanceStatus
    reason: str | None = Field(
        None,
        description="Why: the status reason, else the emulator's first reason, else the last error",
    )
    stale: bool = Field(False, description="Some of what is shown is last-known")
    stale_since: datetime | None = None
    fps: float | None = None
    measuring: bool = Field(
        False, description="The emulator is live but has not measured its frame rate yet"
    )
    breaker: BreakerState = BreakerState.CLOSED
    breaker_since: datetime | None = Field(None, description="While not closed: since when")
    phase: str | None = Field(
        None,
        description="Kubernetes only: the pod's phase, its waiting reason, or Terminating",
    )
    ready: bool | None = Field(None, description="Kubernetes only: the pod is Ready")
    restarts: int = Field(0, description="Pod restarts plus the supervisor's QEMU restarts")
    started_at: datetime | None = Field(
        None, description="When the pod started, else the current QEMU process"
    )
    node: str | None = None
    qemu: str | None = Field(
        None,
        description="QEMU's state as its supervisor reports it (QMP status, or running / not "
        "running); null without a health body",
    )
    crash_loop: bool = Field(False, description="The supervisor gave up restarting QEMU")
    lost_since: datetime | None = Field(
        None, description="The supervisor is gone without unregistering, since then"
    )
    remediation: RemediationInfo | None = None
    watched: bool = Field(
        False, description="The backend knows the supervisor's address (pictures can be asked)"
    )
    accel: str | None = Field(
        None, description="Accelerator QEMU runs with (tcg or kvm); null without a health body"
    )
    stream: StreamSummary | None = Field(
        None, description="The video stream; null when the emulator does not stream (or no body)"
    )


class InstanceSummaryList(_Wire):
    """Body of ``GET /api/instances?view=summary``; items sorted by name."""

    items: list[InstanceSummary]
    generated_at: datetime = Field(description="When this view of the fleet last changed")
    revision: int = Field(0, description="Increases with every change of the fleet")
    discovery: DiscoveryState


class SnapshotEvent(_Wire):
    """First event on every /api/events stream: replace everything you have with this."""

    type: Literal["snapshot"] = "snapshot"
    seq: int
    fleet: InstanceList


class InstanceEvent(_Wire):
    """An instance appeared or changed: insert or replace it by name."""

    type: Literal["instance"] = "instance"
    seq: int
    instance: Instance


class RemovedEvent(_Wire):
    """An instance is gone from discovery: drop it."""

    type: Literal["removed"] = "removed"
    seq: int
    name: str


class DiscoveryEvent(_Wire):
    """Discovery's own state changed (e.g. the Kubernetes API became unreachable)."""

    type: Literal["discovery"] = "discovery"
    seq: int
    discovery: DiscoveryState


class RemediationEvent(_Wire):
    """A decision of the automatic recovery: what it did (or would do, or could not do)
    to which instance, and why."""

    type: Literal["remediation"] = "remediation"
    seq: int
    instance: str
    action: Literal["reset", "restart", "give_up", "recovered"]
    reason: str
    outcome: Literal[
        "acted", "dry_run", "skipped_paused", "skipped_budget", "skipped_cooldown", "failed"
    ]
    rung: str = Field(description="The instance's rung after the decision")
    at: datetime
    detail: str | None = Field(None, description="The action's answer, or why it failed")


FleetEvent = Annotated[
    SnapshotEvent | InstanceEvent | RemovedEvent | DiscoveryEvent | RemediationEvent,
    Field(discriminator="type"),
]
FLEET_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(FleetEvent)


class SummarySnapshotEvent(_Wire):
    """``/api/events?view=summary``: the first event, the fleet in the summary form."""

    type: Literal["summary_snapshot"] = "summary_snapshot"
    seq: int
    fleet: InstanceSummaryList


class SummaryEvent(_Wire):
    """``/api/events?view=summary``: an instance appeared or its summary changed."""

    type: Literal["summary"] = "summary"
    seq: int
    instance: InstanceSummary


SummaryFleetEvent = Annotated[
    SummarySnapshotEvent | SummaryEvent | RemovedEvent | DiscoveryEvent | RemediationEvent,
    Field(discriminator="type"),
]
SUMMARY_EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(SummaryFleetEvent)


class RemediationStatus(_Wire):
    """Body of ``GET /api/remediation``."""

    enabled: bool
    leader: bool = Field(description="This replica is the one that acts")
    identity: str | None = Field(None, description="This replica's name in the election")
    holder: str | None = Field(
        None, description="The replica that acts now (the Lease holder; this one locally)"
    )
    dry_run: bool
    paused: bool
    paused_since: datetime | None = None
    paused_until: datetime | None = Field(None, description="When the pause ends by itself")
    paused_reason: str | None = None
    paused_by: str | None = Field(None, description="Who paused it (client address)")
    in_remediation: int = 0
    needing_a_person: list[str] = Field(default_factory=list)
    max_actions_per_hour: int = 0
    max_fraction: float = 0.0
    cooldown_seconds: float = 0.0


class PauseRequest(_Wire):
    """Body of ``POST /api/remediation/pause`` (all optional)."""

    minutes: float | None = Field(
        None, gt=0, le=7 * 24 * 60, description="Resume by itself after this long"
    )
    reason: str | None = Field(None, max_length=500, description="Why (shown and audited)")


class TimelineEntry(_Wire):
    """One line of an instance's incident timeline."""

    at: datetime
    kind: Literal["status", "remediation", "action"]
    text: str
    by: str | None = Field(None, description="remediation, a person's client address, ...")


class ActionResult(_Wire):
    """Body of ``POST /api/instances/{name}/reset`` and ``/restart``, and of
    ``DELETE /api/instances/{name}`` (forget a lost instance)."""

    ok: bool
    action: Literal["reset", "restart", "forget"]
    instance: str
    message: str
    at: datetime


class ErrorBody(_Wire):
    """Body of every error response."""

    error: str = Field(description="Machine-readable code, e.g. not_found, unauthorized")
    message: str = Field(description="What went wrong, for a person")
    detail: Any | None = None


class BackendHealth(_Wire):
    """Body of ``GET /health``."""

    status: Literal["ok"] = "ok"
    version: str
    uptime_seconds: float
    rss_bytes: int | None
    discovery: InstanceSource
    discovery_ok: bool
    instances: int
    python: str


class ReadinessCheck(_Wire):
    ok: bool
    detail: str | None = None


class ReadinessReport(_Wire):
    """Body of ``GET /ready`` (200 when ready, 503 otherwise)."""

    ready: bool
    checks: dict[str, ReadinessCheck]

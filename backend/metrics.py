"""Prometheus metrics of one backend process.

Each app gets its own :class:`CollectorRegistry` so tests can build several apps in one
process without "duplicated timeseries" errors. The backend runs as one process (the state
Enum does not work in prometheus-client's multiprocess mode), which DESIGN.md requires.
Project-specific names start with ``loco_backend_``; the HTTP latency histogram keeps the
conventional name ``http_request_duration_seconds`` so stock dashboards work.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info

from backend.models import BreakerState, InstanceStatus

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class BackendMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route", "status_code"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.active_connections = Gauge(
            "loco_backend_active_connections",
            "HTTP requests in progress, including open event streams",
            registry=r,
        )
        self.sse_clients = Gauge("loco_backend_sse_clients", "Open /api/events streams", registry=r)
        self.instances = Gauge(
            "loco_backend_instances", "Instances by derived status", ["status"], registry=r
        )
        for status in InstanceStatus:
            self.instances.labels(status.value).set(0)
        self.stale_instances = Gauge(
            "loco_backend_stale_instances", "Instances showing last-known data", registry=r
        )
        self.breaker_state = Enum(
            "loco_backend_circuit_breaker_state",
            "Circuit breaker state per target",
            ["target"],
            states=[s.value for s in BreakerState],
            registry=r,
        )
        self.breaker_failures = Gauge(
            "loco_backend_circuit_breaker_failures",
            "Consecutive failures counted by the breaker",
            ["target"],
            registry=r,
        )
        self.discovery_sync_duration = Histogram(
            "loco_backend_discovery_sync_duration_seconds",
            "Time a full discovery sync (list) took",
            ["source"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.discovery_last_sync = Gauge(
            "loco_backend_discovery_last_sync_timestamp_seconds",
            "Unix time of the last successful full sync",
            ["source"],
            registry=r,
        )
        self.discovery_errors = Counter(
            "loco_backend_discovery_errors",
            "Discovery failures (API unreachable, bad answers, unreadable files)",
            ["source", "kind"],
            registry=r,
        )
        self.discovery_relists = Counter(
            "loco_backend_discovery_relists",
            "Full relists, by reason (start, resync, gone, error)",
            ["source", "reason"],
            registry=r,
        )
        self.discovery_up = Gauge(
            "loco_backend_discovery_up", "1 while discovery is in contact", registry=r
        )
        self.probe_duration = Histogram(
            "loco_backend_probe_duration_seconds",
            "Latency of emulator /health probes",
            ["result"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.status_links = Gauge(
            "loco_backend_status_links",
            "Instances by how their health arrives: stream (pushed by the supervisor) or "
            "probe (polled)",
            ["mode"],
            registry=r,
        )
        for mode in ("stream", "probe"):
            self.status_links.labels(mode).set(0)
        self.stream_failures = Counter(
            "loco_backend_status_stream_failures",
            "Status streams that could not be opened or ended badly, by reason (refused, "
            "unsupported, busy, broken, silent)",
            ["reason"],
            registry=r,
        )
        self.fps = Gauge(
            "loco_backend_instance_fps",
            "Frame rate each emulator reports (absent while its health is stale)",
            ["instance"],
            registry=r,
        )
        self.stream_fps = Gauge(
            "loco_backend_instance_stream_fps",
            "Frames per second each emulator's video stream sends, measured by its "
            "supervisor (absent when it does not stream or its health is stale)",
            ["instance"],
            registry=r,
        )
        # Which node each instance runs on, as an info metric: dashboards join it onto the
        # per-instance gauges (fps by node) instead of every gauge carrying a node label.
        # No namespace label: the backend watches its own namespace only, which is the
        # scrape target's, and a "namespace" label would clash with the one Prometheus adds.
        self.instance_info = Info(
            "loco_backend_instance",
            "One series per instance the backend knows; node is where its pod runs "
            "(empty until it is scheduled, and for static and local instances)",
            ["instance"],
            registry=r,
        )
        self.actions = Counter(
            "loco_backend_actions",
            "Reset/restart requests by outcome",
            ["action", "result"],
            registry=r,
        )
        self.fleet_events = Counter(
            "loco_backend_fleet_events",
            "Change events published to streams",
            ["type"],
            registry=r,
        )
        # The automatic recovery (docs/recovery.md); the alerting rules name these.
        self.remediation_actions = Counter(
            "loco_remediation_actions",
            "Decisions of the automatic recovery, by action, reason and outcome",
            ["action", "reason", "outcome"],
            registry=r,
        )
        self.remediation_enabled = Gauge(
            "loco_remediation_enabled", "1 when the automatic recovery is on", registry=r
        )
        self.remediation_leader = Gauge(
            "loco_remediation_leader",
            "1 on the replica that acts (the Lease holder, or the only backend)",
            registry=r,
        )
        self.remediation_paused = Gauge(
            "loco_remediation_paused", "1 while the automatic recovery is paused", registry=r
        )
        self.remediation_paused_since = Gauge(
            "loco_remediation_paused_since_timestamp_seconds",
            "Unix time the current pause began (0 when not paused)",
            registry=r,
        )
        self.remediation_pause_until = Gauge(
            "loco_remediation_pause_until_timestamp_seconds",
            "Unix time the current pause was planned to end (0: open-ended or not paused)",
            registry=r,
        )
        self.remediation_in_progress = Gauge(
            "loco_remediation_in_progress",
            "Instances on the reset or restart rung now",
            registry=r,
        )
        self.remediation_needs_person = Gauge(
            "loco_remediation_needs_person",
            "1 for each instance the automatic recovery gave up on",
            ["instance"],
            registry=r,
        )
        self._needing: set[str] = set()

    def set_breaker(self, target: str, state: BreakerState, failures: int) -> None:
        self.breaker_state.labels(target).state(state.value)
        self.breaker_failures.labels(target).set(failures)

    def remediation_action(self, action: str, reason: str, outcome: str) -> None:
        self.remediation_actions.labels(action, reason, outcome).inc()

    def set_remediation_pause(self, pause: object | None) -> None:
        since = getattr(pause, "since", None)
        until = getattr(pause, "until", None)
        self.remediation_paused.set(1 if pause is not None else 0)
        self.remediation_paused_since.set(since.timestamp() if since else 0)
        self.remediation_pause_until.set(until.timestamp() if until else 0)

    def set_remediation_cases(self, in_progress: int, needing: list[str]) -> None:
        self.remediation_in_progress.set(in_progress)
        for name in self._needing - set(needing):
            with contextlib.suppress(KeyError):
                self.remediation_needs_person.remove(name)
        for name in needing:
            self.remediation_needs_person.labels(name).set(1)
        self._needing = set(needing)

    def set_instance_node(self, name: str, node: str | None) -> None:
        # Replaces the instance's one series, so a pod that moves leaves no old node behind.
        self.instance_info.labels(name).info({"node": node or ""})

    def forget_target(self, target: str) -> None:
        # Removed instances must not linger as series (pods churn; names are unbounded).
        for metric in (
            self.breaker_state,
            self.breaker_failures,
            self.fps,
            self.stream_fps,
            self.instance_info,
        ):
            with contextlib.suppress(KeyError):
                metric.remove(target)

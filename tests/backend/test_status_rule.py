"""The status rule, row by row (backend/status_rule.py's table)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.models import BreakerState, InstanceStatus, PodFacts
from backend.status_rule import StatusInputs, derive_status
from emulator.models import EmulatorStatus, OverallStatus, QemuFacts, VideoFacts

S = InstanceStatus


def health(status: OverallStatus, reasons: list[str] | None = None) -> EmulatorStatus:
    return EmulatorStatus(
        instance="x",
        overall_status=status,
        qemu_healthy=status is OverallStatus.HEALTHY,
        reasons=reasons or [],
        timestamp=datetime.now(UTC),
        supervisor_uptime_seconds=1.0,
        qemu=QemuFacts(),
        video=VideoFacts(),
    )


def pod(phase: str = "Running", ready: bool = True, **kw: object) -> PodFacts:
    return PodFacts(phase=phase, ready=ready, **kw)


H = health(OverallStatus.HEALTHY)
OK = {"probed": True, "probe_ok": True}
FAILED = {"probed": True, "probe_ok": False, "last_error": "cannot connect"}
NEVER = {"probed": False, "probe_ok": False}
CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

CASES = [
    # (row, pod, health, probe, breaker, expected status, reason fragment)
    (
        "1 failed pod beats a healthy body",
        pod("Failed", False),
        H,
        OK,
        CLOSED,
        S.UNHEALTHY,
        "Failed",
    ),
    ("1 succeeded pod", pod("Succeeded", False), H, OK, CLOSED, S.UNHEALTHY, "Succeeded"),
    ("2 terminating", pod(deleting=True), H, OK, CLOSED, S.UNHEALTHY, "terminating"),
    ("3 pending", pod("Pending", False), None, NEVER, CLOSED, S.STARTING, "pending"),
    (
        "3 pending says why",
        pod("Pending", False, waiting_reason="ImagePullBackOff"),
        None,
        NEVER,
        CLOSED,
        S.STARTING,
        "ImagePullBackOff",
    ),
    ("4 unknown phase", pod("Unknown", False), H, OK, CLOSED, S.UNKNOWN, "Unknown"),
    ("0 lost supervisor", None, H, {**OK, "lost": "gone"}, CLOSED, S.UNHEALTHY, "lost: gone"),
    ("5 open breaker, pod", pod(), H, FAILED, OPEN, S.UNHEALTHY, "circuit open"),
    ("5 open breaker, static", None, H, FAILED, OPEN, S.UNHEALTHY, "cannot connect"),
    ("6 not probed, pod not ready", pod(ready=False), None, NEVER, CLOSED, S.STARTING, "not Ready"),
    ("6 not probed, pod ready", pod(), None, NEVER, CLOSED, S.UNKNOWN, "not probed"),
    ("6 not probed, static", None, None, NEVER, CLOSED, S.UNKNOWN, "not probed"),
    ("7 failed with last-known body", None, H, FAILED, CLOSED, S.DEGRADED, "probe failed"),
    ("5 half-open trial after failures", None, H, FAILED, HALF, S.UNHEALTHY, "circuit open"),
    (
        "7 failed, pod not ready, no body",
        pod(ready=False),
        None,
        FAILED,
        CLOSED,
        S.STARTING,
        "not Ready",
    ),
    ("7 failed, no body", None, None, FAILED, CLOSED, S.UNKNOWN, "cannot connect"),
    ("8 healthy but pod not ready", pod(ready=False), H, OK, CLOSED, S.DEGRADED, "not Ready"),
    ("9 healthy", pod(), H, OK, CLOSED, S.HEALTHY, None),
    ("9 healthy static", None, H, OK, CLOSED, S.HEALTHY, None),
    ("9 healthy in half-open trial", None, H, OK, HALF, S.HEALTHY, None),
    (
        "9 degraded with reasons",
        pod(),
        health(OverallStatus.DEGRADED, ["frame rate low"]),
        OK,
        CLOSED,
        S.DEGRADED,
        "frame rate low",
    ),
    ("9 starting", None, health(OverallStatus.STARTING), OK, CLOSED, S.STARTING, "starting"),
    (
        "9 unhealthy",
        pod(),
        health(OverallStatus.UNHEALTHY, ["QEMU exited"]),
        OK,
        CLOSED,
        S.UNHEALTHY,
        "QEMU exited",
    ),
    (
        "9 unhealthy even if pod not ready",
        pod(ready=False),
        health(OverallStatus.UNHEALTHY),
        OK,
        CLOSED,
        S.UNHEALTHY,
        "unhealthy",
    ),
]


@pytest.mark.parametrize(
    ("pod_facts", "body", "probe", "breaker", "expected", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_rule(
    pod_facts: PodFacts | None,
    body: EmulatorStatus | None,
    probe: dict[str, object],
    breaker: BreakerState,
    expected: InstanceStatus,
    reason: str | None,
) -> None:
    status, why = derive_status(StatusInputs(pod=pod_facts, health=body, breaker=breaker, **probe))  # type: ignore[arg-type]
    assert status is expected
    if reason is None:
        assert why is None
    else:
        assert why is not None and reason in why


def test_every_status_is_reachable() -> None:
    assert {c[5] for c in CASES} == set(InstanceStatus)

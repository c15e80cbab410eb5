"""The one rule that turns everything the backend knows into an instance's status.

Inputs: the pod (kubernetes discovery only), the outcome of the latest ``/health`` probe,
the emulator's last health body, and the circuit breaker in front of the supervisor.
The first matching row wins:

====  ==========================================================  ==========
 #    condition                                                   status
====  ==========================================================  ==========
 0    the supervisor is lost (local: gone without unregistering)  unhealthy
 1    pod phase is Failed or Succeeded                            unhealthy
 2    pod is terminating (has a deletionTimestamp)                unhealthy
 3    pod phase is Pending                                        starting
 4    pod phase is Unknown (node lost)                            unknown
 5    breaker is open or on its half-open trial (supervisor       unhealthy
      unreachable repeatedly; a trial is no news until it ends)
 6    no probe has finished yet                                   starting if the pod is
                                                                  not Ready, else unknown
 7    the latest probe failed (breaker closed or half-open)       degraded if a health body
                                                                  was seen before; starting
                                                                  if the pod is not Ready;
                                                                  else unknown
 8    the emulator reports ``healthy`` but the pod is not Ready   degraded
 9    otherwise: the emulator's own ``overall_status``            starting | healthy |
                                                                  degraded | unhealthy
====  ==========================================================  ==========

Why this order: Kubernetes facts about the pod's lifecycle beat anything the emulator said
earlier (a Failed pod is down whatever its last health said); an open breaker means several
consecutive probes failed, which is an outage, while a single failed probe is only a
degradation (the data shown is the last known, marked ``stale``). The emulator's own
verdict is used as soon as it is current, except that a pod that Kubernetes does not
consider Ready is at best degraded (its readiness probe disagrees). Discovery being out of
contact with the Kubernetes API never changes the status; it marks the instance ``stale``.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.models import BreakerState, InstanceStatus, PodFacts
from emulator.models import EmulatorStatus, OverallStatus


@dataclass(frozen=True, slots=True)
class StatusInputs:
    pod: PodFacts | None
    health: EmulatorStatus | None
    probed: bool
    """At least one probe has finished (successfully or not)."""
    probe_ok: bool
    """The latest finished probe succeeded."""
    breaker: BreakerState
    last_error: str | None = None
    lost: str | None = None
    """Why the supervisor is known to be gone (local discovery), if it is."""


_EMULATOR_TO_STATUS = {
    OverallStatus.STARTING: InstanceStatus.STARTING,
    OverallStatus.HEALTHY: InstanceStatus.HEALTHY,
    OverallStatus.DEGRADED: InstanceStatus.DEGRADED,
    OverallStatus.UNHEALTHY: InstanceStatus.UNHEALTHY,
}


def derive_status(i: StatusInputs) -> tuple[InstanceStatus, str | None]:
    """Applies the rule in the module docstring; returns the status and a short reason."""
    if i.lost is not None:
        return InstanceStatus.UNHEALTHY, f"lost: {i.lost}"
    pod = i.pod
    if pod is not None:
        if pod.phase in ("Failed", "Succeeded"):
            return InstanceStatus.UNHEALTHY, f"pod phase {pod.phase}"
        if pod.deleting:
            return InstanceStatus.UNHEALTHY, "pod is terminating"
        if pod.phase == "Pending":
            why = f" ({pod.waiting_reason})" if pod.waiting_reason else ""
            return InstanceStatus.STARTING, f"pod pending{why}"
        if pod.phase == "Unknown":
            return InstanceStatus.UNKNOWN, "pod phase Unknown (node not reporting)"
    pod_not_ready = pod is not None and not pod.ready
    if i.breaker is BreakerState.OPEN or (i.breaker is BreakerState.HALF_OPEN and not i.probe_ok):
        err = f": {i.last_error}" if i.last_error else ""
        return InstanceStatus.UNHEALTHY, f"supervisor unreachable, circuit open{err}"
    if not i.probed:
        if pod_not_ready:
            return InstanceStatus.STARTING, _not_ready_reason(pod)
        return InstanceStatus.UNKNOWN, "not probed yet"
    if not i.probe_ok:
        err = f": {i.last_error}" if i.last_error else ""
        if i.health is not None:
            return InstanceStatus.DEGRADED, f"health probe failed{err}"
        if pod_not_ready:
            return InstanceStatus.STARTING, _not_ready_reason(pod)
        return InstanceStatus.UNKNOWN, f"health probe failed{err}"
    assert i.health is not None, "a successful probe always carries a health body"
    status = _EMULATOR_TO_STATUS[i.health.overall_status]
    if status is InstanceStatus.HEALTHY and pod_not_ready:
        return InstanceStatus.DEGRADED, _not_ready_reason(pod)
    if status is InstanceStatus.HEALTHY:
        return status, None
    reason = "; ".join(i.health.reasons[:2]) if i.health.reasons else None
    return status, reason or f"emulator reports {i.health.overall_status.value}"


def _not_ready_reason(pod: PodFacts | None) -> str:
    if pod is not None and pod.waiting_reason:
        return f"pod not Ready ({pod.waiting_reason})"
    return "pod not Ready"

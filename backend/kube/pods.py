"""A pod's JSON as the facts this project uses (pure functions, no I/O).

Raw JSON rather than the client's models: several times cheaper to parse, and the same
field names everywhere. The supervisor's address follows the conventions
(:mod:`backend.kube.conventions`): ``http://<pod IP>:<container port named health>``
(8080 when none is named), unless the ``lego-loco.io/health-url`` annotation overrides it
(simulated pods bound to local supervisors); VNC likewise with the port named ``vnc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backend.kube.conventions import (
    ANNOTATION_HEALTH_URL,
    ANNOTATION_LOG_FILE,
    ANNOTATION_VNC_ADDRESS,
    DEFAULT_HEALTH_PORT,
    DEFAULT_VNC_PORT,
)
from backend.models import PodCondition, PodFacts


def parse_time(value: Any) -> datetime | None:
    """An API timestamp (``2024-05-01T10:00:00Z``) as an aware datetime, else None."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Pod:
    """One emulator pod: what Kubernetes says, and where its supervisor answers."""

    name: str
    namespace: str
    uid: str | None
    facts: PodFacts
    health_url: str | None = None
    vnc: str | None = None
    log_file: str | None = None
    owner_kind: str | None = None
    owner_name: str | None = None
    containers: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    resource_version: str | None = None


def named_port(pod: Mapping[str, Any], name: str) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return None


def _last_termination(statuses: list[dict[str, Any]]) -> tuple[str | None, datetime | None]:
    """The most recent ``lastState.terminated`` of the pod's containers: why and when."""
    latest: tuple[str | None, datetime | None] = (None, None)
    for cs in statuses:
        ended = (cs.get("lastState") or {}).get("terminated") or {}
        if not ended:
            continue
        reason = str(ended.get("reason") or "terminated")
        if ended.get("exitCode") is not None:
            reason += f" (exit {ended['exitCode']})"
        at = parse_time(ended.get("finishedAt"))
        if latest[0] is None or (at is not None and (latest[1] is None or at > latest[1])):
            latest = (reason, at)
    return latest


def pod_facts(pod: Mapping[str, Any]) -> PodFacts:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    conditions = [
        PodCondition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "Unknown")),
            reason=c.get("reason"),
            message=c.get("message"),
            last_transition_time=parse_time(c.get("lastTransitionTime")),
        )
        for c in status.get("conditions") or []
    ]
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    statuses = (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    waiting = next(
        (
            ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            for cs in statuses
            if ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        ),
        None,
    )
    last_reason, last_at = _last_termination(statuses)
    return PodFacts(
        phase=status.get("phase"),
        ready=ready,
        restarts=restarts,
        node=spec.get("nodeName"),
        ip=status.get("podIP"),
        start_time=parse_time(status.get("startTime")),
        created_at=parse_time(meta.get("creationTimestamp")),
        deleting=bool(meta.get("deletionTimestamp")),
        waiting_reason=waiting,
        last_restart_reason=last_reason,
        last_restart_at=last_at,
        uid=meta.get("uid"),
        resource_version=meta.get("resourceVersion"),
        conditions=conditions,
    )


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def parse_pod(obj: Mapping[str, Any], namespace: str) -> Pod:
    """Raises ``KeyError`` for an object without a name (never a pod the API sends)."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    facts = pod_facts(obj)
    health_url = annotations.get(ANNOTATION_HEALTH_URL)
    if health_url:
        health_url = health_url.rstrip("/")
    elif facts.ip:
        health_url = f"http://{_host(facts.ip)}:{named_port(obj, 'health') or DEFAULT_HEALTH_PORT}"
    vnc = annotations.get(ANNOTATION_VNC_ADDRESS)
    if not vnc and facts.ip:
        vnc = f"{_host(facts.ip)}:{named_port(obj, 'vnc') or DEFAULT_VNC_PORT}"
    spec = obj.get("spec") or {}
    owners = meta.get("ownerReferences") or []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    return Pod(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace") or namespace),
        uid=meta.get("uid"),
        facts=facts,
        health_url=health_url or None,
        vnc=vnc or None,
        log_file=annotations.get(ANNOTATION_LOG_FILE) or None,
        owner_kind=owner.get("kind") if owner else None,
        owner_name=owner.get("name") if owner else None,
        containers=tuple(str(c.get("name")) for c in spec.get("containers") or []),
        labels=dict(meta.get("labels") or {}),
        resource_version=meta.get("resourceVersion"),
    )

"""Server-side printing: meta.k8s.io/v1 Table responses, as ``kubectl get`` requests them.

Columns and cell formats follow pkg/printers/internalversion/printers.go so kubectl's
output looks like a real cluster's (NAME READY STATUS RESTARTS AGE for pods).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.kubesim.objects import Obj, age, get_path, human_duration, parse_rfc3339

Column = tuple[str, str, int, str]  # name, type, priority, description


def _col(name: str, type_: str = "string", priority: int = 0, description: str = "") -> Column:
    return (name, type_, priority, description)


CREATED = (
    "CreationTimestamp is a timestamp representing the server time when this object was created."
)
NAME_COL = _col("Name", priority=0, description="Name must be unique within a namespace.")


def pod_status_reason(pod: Obj) -> str:
    """The STATUS column: phase, or the reason a container waits/terminated, or Terminating."""
    status = pod.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state", {})
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_row(pod: Obj) -> list[object]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount", 0)) for cs in statuses)
    last_restart: float | None = None
    for cs in statuses:
        finished = get_path(cs, "lastState.terminated.finishedAt")
        if finished:
            ts = parse_rfc3339(finished)
            last_restart = ts if last_restart is None else max(last_restart, ts)
    restarts_cell = str(restarts)
    if last_restart is not None and restarts:
        restarts_cell = f"{restarts} ({human_duration(time.time() - last_restart)} ago)"
    gates = pod.get("spec", {}).get("readinessGates") or []
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        pod_status_reason(pod),
        restarts_cell,
        age(pod),
        pod.get("status", {}).get("podIP") or "<none>",
        pod.get("spec", {}).get("nodeName") or "<none>",
        pod.get("status", {}).get("nominatedNodeName") or "<none>",
        f"{len(gates)}" if gates else "<none>",
    ]


POD_COLUMNS = [
    NAME_COL,
    _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", description="The aggregate status of the containers in this pod."),
    _col(
        "Restarts",
        description=(
            "The number of times the containers in this pod have been restarted and when the "
            "last container in this pod has restarted."
        ),
    ),
    _col(
        "Age",
        description=CREATED,
    ),
    _col("IP", priority=1, description="podIP address allocated to the pod."),
    _col("Node", priority=1, description="Name of the Node this pod is scheduled on."),
    _col(
        "Nominated Node",
        priority=1,
        description="nominatedNodeName is the name of the node when the pod preempts.",
    ),
    _col(
        "Readiness Gates",
        priority=1,
        description="If specified, all readiness gates will be evaluated for pod readiness.",
    ),
]


def _sts_row(sts: Obj) -> list[object]:
    containers = get_path(sts, "spec.template.spec.containers") or []
    return [
        sts["metadata"]["name"],
        f"{sts.get('status', {}).get('readyReplicas', 0)}/{sts.get('spec', {}).get('replicas', 1)}",
        age(sts),
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
    ]


STS_COLUMNS = [
    NAME_COL,
    _col("Ready", description="Number of the pod with ready state"),
    _col(
        "Age",
        description=CREATED,
    ),
    _col("Containers", priority=1, description="Names of each container in the template."),
    _col("Images", priority=1, description="Images referenced by each container in the template."),
]


def _ns_row(ns: Obj) -> list[object]:
    return [ns["metadata"]["name"], ns.get("status", {}).get("phase", "Active"), age(ns)]


NS_COLUMNS = [
    NAME_COL,
    _col("Status", description="The status of the namespace"),
    _col(
        "Age",
        description=CREATED,
    ),
]


def _event_row(ev: Obj) -> list[object]:
    last = ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")
    first = ev.get("firstTimestamp") or last
    io = ev.get("involvedObject", {})
    source = ev.get("source", {})
    src = source.get("component", "")
    if source.get("host"):
        src += f", {source['host']}"
    return [
        human_duration(time.time() - parse_rfc3339(last)) if last else "<unknown>",
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{io.get('kind', '').lower()}/{io.get('name', '')}",
        io.get("fieldPath", ""),
        src,
        ev.get("message", ""),
        human_duration(time.time() - parse_rfc3339(first)) if first else "<unknown>",
        int(ev.get("count", 1)),
        ev["metadata"]["name"],
    ]


EVENT_COLUMNS = [
    _col(
        "Last Seen",
        description="The time at which the most recent occurrence of this event was recorded.",
    ),
    _col(
        "Type",
        description="Type of this event (Normal, Warning), new types could be added in the future.",
    ),
    _col(
        "Reason",
        description=(
            "This should be a short, machine understandable string that gives the reason for "
            "the transition into the object's current status."
        ),
    ),
    _col("Object", description="The object that this event is about."),
    _col("Subobject", priority=1, description="The field of the object this event is about."),
    _col("Source", priority=1, description="The component reporting this event."),
    _col("Message", description="A human-readable description of the status of this operation."),
    _col("First Seen", priority=1, description="The time at which the event was first recorded."),
    _col("Count", "integer", 1, "The number of times this event has occurred."),
    _col("Name", priority=1, description="Name must be unique within a namespace."),
]

PRINTERS: dict[str, tuple[list[Column], Callable[[Obj], list[object]]]] = {
    "pods": (POD_COLUMNS, _pod_row),
    "apps/statefulsets": (STS_COLUMNS, _sts_row),
    "namespaces": (NS_COLUMNS, _ns_row),
    "events": (EVENT_COLUMNS, _event_row),
}


def _row_object(obj: Obj, api_version: str, kind: str, include: str) -> Obj | None:
    if include == "None":
        return None
    if include == "Object":
        return {"kind": kind, "apiVersion": api_version, **obj}
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(
    resource_key: str,
    api_version: str,
    kind: str,
    objects: list[Obj],
    list_meta: Obj,
    include_object: str = "Metadata",
    with_columns: bool = True,
) -> Obj:
    columns, row_fn = PRINTERS.get(
        resource_key,
        (
            [NAME_COL, _col("Created At", "date", description="CreationTimestamp")],
            lambda o: [o["metadata"]["name"], o["metadata"].get("creationTimestamp", "")],
        ),
    )
    rows = []
    for obj in objects:
        row: Obj = {"cells": row_fn(obj)}
        ro = _row_object(obj, api_version, kind, include_object)
        if ro is not None:
            row["object"] = ro
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {
                "name": n,
                "type": t,
                "format": "name" if n == "Name" else "",
                "description": d,
                "priority": p,
            }
            for (n, t, p, d) in columns
        ]
        if with_columns
        else [],
        "rows": rows,
    }

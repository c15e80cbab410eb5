"""Shared helpers for Kubernetes object JSON: timestamps, uids, Status bodies, durations."""

from __future__ import annotations

import copy
import time
import uuid
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]


def now_rfc3339(ts: float | None = None) -> str:
    """metav1.Time: second precision, always UTC with a 'Z' suffix."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(ts: float) -> str:
    """The kubelet's log timestamp format (RFC3339Nano, trailing zeros kept at 9 digits)."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    nanos = round((ts - int(ts)) * 1e9) % 1_000_000_000
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def parse_rfc3339(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def new_uid() -> str:
    return str(uuid.uuid4())


def deep(obj: Obj) -> Obj:
    """Objects leave the store only as copies, so callers can never mutate stored state."""
    return copy.deepcopy(obj)


def status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """A metav1.Status failure body, the shape client-go and the Python client parse."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def success_status(details: Obj | None = None) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details is not None:
        body["details"] = details
    return body


def get_path(obj: Any, dotted: str) -> Any:
    """Follow 'a.b.c' through nested dicts; None when any step is missing."""
    cur = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur

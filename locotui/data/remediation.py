"""The backend's automatic recovery ("remediation") as the console reads and words it.

Plain text only (no widgets, no colours): the console's header and dialogs style these
strings, and the scriptable commands print them as they are.

* :data:`OFF` — the state of a backend whose recovery is off, or that has none (a backend
  older than the feature answers ``GET /api/remediation`` with 404: that is "off" too).
* :func:`policy_summary` — one short phrase: ``off``, ``on``, ``on (dry run)``,
  ``PAUSED until 14:05Z (by 10.0.0.3: moving racks)`` (with the date for a pause of 12
  hours or more).
* :func:`needing_a_person` — the instances the policy gave up on (their rung).
* :func:`pause_request` — a pause as typed (minutes as text or a number, a reason),
  checked against the backend's own wire model, so a bad value is refused before it is
  sent, with the backend's limits.
* :func:`describe_pause` / :func:`describe_resume` — the exact confirmation texts.

Times are UTC with a ``Z``, as on the detail screen: a pause is shared by every console
and replica, whatever time zone each operator is in.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import ValidationError

from backend.models import Instance, InstanceSummary, PauseRequest, RemediationStatus

__all__ = [
    "AUTO_RECOVERY",
    "OFF",
    "PAUSE_PRESETS",
    "clock_time",
    "describe_pause",
    "describe_resume",
    "needing_a_person",
    "pause_request",
    "policy_state",
    "policy_summary",
]

AUTO_RECOVERY = "auto-recovery"
"""What a pause or resume acts on (the policy, not an instance): its target in progress
reports and the audit log."""

OFF = RemediationStatus(enabled=False, leader=False, dry_run=False, paused=False)

PAUSE_PRESETS: tuple[float | None, ...] = (15, 60, 240, None)
"""Durations an operator picks from (minutes; None: until resumed)."""


LONG_PAUSE = timedelta(hours=12)
"""A pause at least this long ends on another day, so its end is given with the date."""


def clock_time(when: datetime, *, with_date: bool = False) -> str:
    """``14:05Z``, or ``2025-03-15 14:05Z`` ``with_date``."""
    when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    return f"{when:%Y-%m-%d %H:%M}Z" if with_date else f"{when:%H:%M}Z"


def policy_state(status: RemediationStatus | None) -> str:
    """``unknown`` (not read yet), ``off``, ``paused``, ``dry_run`` or ``on``."""
    if status is None:
        return "unknown"
    if not status.enabled:
        return "off"
    if status.paused:
        return "paused"
    return "dry_run" if status.dry_run else "on"


def _paused_by(status: RemediationStatus) -> str:
    by, reason = status.paused_by, status.paused_reason
    if by:
        return f" (by {by}: {reason})" if reason else f" (by {by})"
    return f" ({reason})" if reason else ""


def policy_summary(status: RemediationStatus | None) -> str:
    """One short phrase for the policy's state (see the module docstring)."""
    state = policy_state(status)
    if status is None or state in ("unknown", "off"):
        return state
    if state == "paused":
        end, start = status.paused_until, status.paused_since
        long = end is not None and start is not None and end - start >= LONG_PAUSE
        until = f"until {clock_time(end, with_date=long)}" if end else "until resumed"
        return f"PAUSED {until}{_paused_by(status)}"
    return "on (dry run)" if state == "dry_run" else "on"


_OnLadder = TypeVar("_OnLadder", Instance, InstanceSummary)


def needing_a_person(instances: Iterable[_OnLadder]) -> list[_OnLadder]:
    """The instances the automatic recovery gave up on, in the order given."""
    return [
        i for i in instances if i.remediation is not None and i.remediation.rung == "needs_person"
    ]


def pause_request(minutes: str | float | None, reason: str | None = None) -> PauseRequest:
    """A pause as typed; empty minutes mean "until resumed". Raises ``ValueError`` with one
    line saying what is wrong."""
    text = str(minutes).strip() if minutes is not None else ""
    try:
        value = float(text) if text else None
    except ValueError:
        raise ValueError(f"minutes must be a number, got {text!r}") from None
    try:
        return PauseRequest(minutes=value, reason=(reason or "").strip() or None)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        if field == "minutes":
            # The backend's own limits (gt=0, le=one week), said in minutes.
            raise ValueError(
                "minutes must be more than 0 and at most 10080 (a week); leave it empty "
                "to pause until resumed"
            ) from None
        raise ValueError(f"{field}: {first['msg']}") from None


def describe_pause(request: PauseRequest, now: datetime) -> str:
    """The confirmation text of a pause (what will happen, and when it ends)."""
    if request.minutes is None:
        ends = "It stays paused until someone resumes it."
    else:
        length = timedelta(minutes=request.minutes)
        ends = (
            f"It resumes by itself at {clock_time(now + length, with_date=length >= LONG_PAUSE)}."
        )
    amount = (
        f"for {request.minutes:g} minute{'s' if request.minutes != 1 else ''}"
        if request.minutes is not None
        else "until resumed"
    )
    return (
        f"Pause automatic recovery {amount}? {ends} Meanwhile instances that go bad are "
        "reported, not reset or restarted; every console and replica sees the pause."
    )


def describe_resume(status: RemediationStatus | None, bad: int = 0) -> str:
    """The confirmation text of a resume; ``bad``: instances not healthy now."""
    since = ""
    if status is not None and status.paused:
        since = f" (now {policy_summary(status)})"
    acted = (
        f" {bad} instance{'s are' if bad != 1 else ' is'} not healthy now and may be reset soon."
        if bad
        else ""
    )
    return (
        f"Resume automatic recovery{since}? Instances that stay bad are reset, then restarted, "
        f"within the policy's budgets, from now on.{acted}"
    )

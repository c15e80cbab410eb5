"""What the operator is told when the automatic recovery decides something.

The fleet model keeps the decisions (``RemediationEvent``); the app turns the new ones into
notices after each coalesced repaint, so a burst of decisions (a fleet-wide incident) is a
handful of notices, not one per instance:

* a give-up is an *alert*, one per instance, kept in the banner (a person must act, and a
  toast is gone before anyone reads it);
* resets and restarts done (or that a dry run would do), failures to do them, and
  recoveries are short toasts, one per kind of decision, naming the instances;
* decisions not carried out (paused, over a budget, cooling down) are only on the
  instance's timeline (detail screen): while paused, everyone knows nothing is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Literal

from backend.models import RemediationEvent
from locotui.data.actions import name_list

__all__ = ["Notice", "notices"]

Severity = Literal["information", "warning", "error"]

# (action, outcome) → (the toast, with {names} for the instances; its severity). Decisions
# not listed are not toasted.
_TOASTS: dict[tuple[str, str], tuple[str, Severity]] = {
    ("reset", "acted"): ("auto-recovery reset {names}", "information"),
    ("restart", "acted"): ("auto-recovery restarted {names}", "warning"),
    ("reset", "dry_run"): ("auto-recovery would reset {names} (dry run)", "information"),
    ("restart", "dry_run"): ("auto-recovery would restart {names} (dry run)", "information"),
    ("reset", "failed"): ("auto-recovery could not reset {names}", "error"),
    ("restart", "failed"): ("auto-recovery could not restart {names}", "error"),
    ("recovered", "acted"): ("{names} recovered", "information"),
}


@dataclass(frozen=True)
class Notice:
    text: str
    severity: Severity
    alert: bool = False
    """Kept in the banner (not only a toast)."""


def notices(decisions: Sequence[RemediationEvent]) -> list[Notice]:
    """The notices for ``decisions`` (oldest first), in the order they first occur."""
    out: list[Notice] = []
    groups: dict[tuple[str, str], list[RemediationEvent]] = {}
    for d in decisions:
        if d.action == "give_up":
            when = d.at.astimezone(UTC)
            out.append(
                Notice(
                    f"{when:%H:%M}Z {d.instance} needs a person: the automatic recovery gave "
                    f"up ({d.reason})",
                    "error",
                    alert=True,
                )
            )
        elif (d.action, d.outcome) in _TOASTS:
            groups.setdefault((d.action, d.outcome), []).append(d)
    for key, group in groups.items():
        template, severity = _TOASTS[key]
        names = list(dict.fromkeys(d.instance for d in group))
        text = template.format(names=name_list(names))
        if len(group) == 1:
            # One decision: there is room to say why (or what went wrong).
            only = group[0]
            why = only.detail if only.outcome == "failed" and only.detail else only.reason
            text += f": {why}"
        out.append(Notice(text, severity))
    return out

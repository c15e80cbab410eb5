"""Fleet figures: frame rate by node (and by accelerator), and the fleet's SLO.

Pure functions over the fleet model's entries (anything with ``name``, ``fps``, ``node``,
``status`` and ``summary.accel``), tested without a UI.

**By node**: the median and the 10th percentile of the measured frame rates of the
instances on each node, and which of them are *stuck*: far below their own node's
median (under half of it). A slow or throttled node drags its median down; one stuck
guest leaves the median alone and shows up as an outlier — the two call for different
actions (move work off the node / restart that one instance). The verdict says which.

**SLO**: the share of instances that are healthy *and* draw at least the target frame
rate, against an objective (e.g. 95 %). Its burn rate over a window — how fast the
error budget goes, ``(1 - SLI) / (1 - objective)``; 1 spends it exactly over the
period, above 1 faster — comes from Prometheus (:mod:`locotui.data.history`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from backend.models import InstanceStatus

__all__ = [
    "GroupRate",
    "Slo",
    "burn_rate",
    "fleet_slo",
    "percentile",
    "rates_by_accel",
    "rates_by_node",
]

STUCK_SHARE = 0.5
"""An instance under this share of its node's median frame rate is an outlier."""


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100) with linear interpolation between the nearest
    ranks (numpy's default), so p10 of a small group is not just its minimum."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class GroupRate:
    """The frame rates of one node (or accelerator)."""

    key: str
    instances: int
    measured: int
    """Instances with a frame rate (the others are starting, lost or unreachable)."""
    median: float | None
    p10: float | None
    minimum: float | None
    below_target: int
    target_fps: float
    stuck: tuple[str, ...]
    """Instances far below this group's median: outliers, not the node."""

    @property
    def verdict(self) -> str:
        if self.median is None:
            return "no frame rates"
        if self.median < self.target_fps:
            return "node slow"  # the middle of the group is under target, not one guest
        if self.stuck:
            return f"{len(self.stuck)} stuck"
        if self.below_target:
            return f"{self.below_target} below target"
        return "ok"


def _group(entries: Iterable[Any], key: Callable[[Any], str], target_fps: float) -> list[GroupRate]:
    groups: dict[str, list[Any]] = {}
    for entry in entries:
        groups.setdefault(key(entry), []).append(entry)
    out = []
    for name, members in groups.items():
        rates = {e.name: e.fps for e in members if e.fps is not None}
        values = list(rates.values())
        median = statistics.median(values) if values else None
        stuck = tuple(sorted(n for n, v in rates.items() if median and v < median * STUCK_SHARE))
        out.append(
            GroupRate(
                key=name,
                instances=len(members),
                measured=len(values),
                median=median,
                p10=percentile(values, 10) if values else None,
                minimum=min(values) if values else None,
                below_target=sum(1 for v in values if v < target_fps),
                target_fps=target_fps,
                stuck=stuck,
            )
        )
    # Worst first: the lowest median, unmeasured groups last.
    out.sort(key=lambda g: (g.median is None, g.median or 0.0, g.key))
    return out


def rates_by_node(entries: Iterable[Any], target_fps: float) -> list[GroupRate]:
    """One row per node (``-`` for instances not on a node: static, local, pending)."""
    return _group(entries, lambda e: e.node or "-", target_fps)


def rates_by_accel(entries: Iterable[Any], target_fps: float) -> list[GroupRate]:
    """One row per accelerator (``kvm``, ``tcg``; ``?`` without emulator health)."""

    def accel(entry: Any) -> str:
        return entry.summary.accel or "?"

    return _group(entries, accel, target_fps)


SloState = Literal["ok", "burning", "breached", "unknown"]


@dataclass(frozen=True)
class Slo:
    total: int
    good: int
    """Healthy and at or above the target frame rate."""
    target_fps: float
    objective: float

    @property
    def share(self) -> float | None:
        return self.good / self.total if self.total else None

    def state(self, burn_1h: float | None = None) -> SloState:
        """``breached`` below the objective now; ``burning`` when the last hour spent
        the error budget faster than it lasts (burn > 1); else ``ok``."""
        share = self.share
        if share is None:
            return "unknown"
        if share < self.objective:
            return "breached"
        if burn_1h is not None and burn_1h > 1:
            return "burning"
        return "ok"


def fleet_slo(entries: Iterable[Any], target_fps: float, objective: float) -> Slo:
    items = list(entries)
    good = sum(
        1
        for e in items
        if e.status is InstanceStatus.HEALTHY and e.fps is not None and e.fps >= target_fps
    )
    return Slo(len(items), good, target_fps, objective)


def burn_rate(sli: float, objective: float) -> float:
    """How fast the error budget is spent at service level ``sli`` (0 to 1)."""
    if not 0 < objective < 1:
        raise ValueError(f"objective must be between 0 and 1, got {objective}")
    return max(0.0, 1 - sli) / (1 - objective)

"""A health-gated rolling restart: the state machine, pure (no clock, no I/O of its own).

Kubernetes' rolling restart moves on when a pod is Ready; a Windows 98 guest can be
Ready and still draw a black screen. This one restarts ``batch`` instances at a time and
starts the next only when each of them is *back*: a new incarnation (its start time is
after the restart), healthy and drawing at least the target frame rate, continuously for
``settle`` seconds. An instance that is not back within ``timeout`` seconds stops the
whole rollout where it is (nothing further is restarted), so one bad image or node does
not take the fleet down one pod at a time.

The operator can pause (nothing new starts; instances already restarted are still
watched and can finish), resume, or abort (nothing new starts, the rollout ends).

Driving it: call :meth:`GatedRollout.step` with the time and what is observed of each
instance whenever something changed (and once a second for the timers); it returns the
names to restart now. Report each restart's outcome with :meth:`restarted` (or
:meth:`restart_failed`). :func:`drive` does this loop for the console.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = [
    "GatedRollout",
    "InstanceStep",
    "Observation",
    "RolloutState",
    "drive",
]


NEWER_BY = timedelta(seconds=1)
"""How much later a start time must be to be a new incarnation: a local instance's start
time is derived from QEMU's uptime and moves by milliseconds between two probes."""


class InstanceStep(StrEnum):
    WAITING = "waiting"
    RESTARTING = "restarting"
    """Asked to restart; not yet seen back."""
    SETTLING = "settling"
    """Back, healthy and at target: must stay so for ``settle`` seconds."""
    DONE = "done"
    FAILED = "failed"


class RolloutState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    STOPPED = "stopped"
    """An instance did not come back: nothing further was restarted."""
    ABORTED = "aborted"


@dataclass(frozen=True)
class Observation:
    """What the console sees of one instance now."""

    healthy: bool
    fps: float | None
    started_at: datetime | None
    """When the current incarnation started (the pod, else QEMU); None when unknown."""


@dataclass
class _Item:
    name: str
    step: InstanceStep = InstanceStep.WAITING
    restarted_at: float | None = None
    """Monotonic time the restart was asked for."""
    old_started: datetime | None = None
    """When the incarnation before the restart started: a later one is the new one
    (compared with the cluster's own times, so the console's clock does not matter)."""
    good_since: float | None = None
    note: str = ""


@dataclass
class GatedRollout:
    names: Sequence[str]
    target_fps: float
    batch: int = 1
    settle: float = 10.0
    timeout: float = 300.0
    state: RolloutState = RolloutState.RUNNING
    items: dict[str, _Item] = field(init=False)

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError("batch must be at least 1")
        if not self.names:
            raise ValueError("nothing to restart")
        self.items = {n: _Item(n) for n in self.names}

    # ------------------------------------------------------------------ operator
    def pause(self) -> None:
        if self.state is RolloutState.RUNNING:
            self.state = RolloutState.PAUSED

    def resume(self) -> None:
        if self.state is RolloutState.PAUSED:
            self.state = RolloutState.RUNNING

    def abort(self) -> None:
        if self.state in (RolloutState.RUNNING, RolloutState.PAUSED):
            self.state = RolloutState.ABORTED

    @property
    def finished(self) -> bool:
        return self.state in (RolloutState.DONE, RolloutState.STOPPED, RolloutState.ABORTED)

    # ------------------------------------------------------------------ driving
    def in_flight(self) -> list[_Item]:
        return [
            i
            for i in self.items.values()
            if i.step in (InstanceStep.RESTARTING, InstanceStep.SETTLING)
        ]

    def step(self, now: float, observed: Mapping[str, Observation]) -> list[str]:
        """Advances with what is observed at monotonic time ``now``; returns the names to
        restart now (none while paused, stopped, aborted or waiting for a batch)."""
        if self.finished:
            return []
        for item in self.in_flight():
            self._watch(item, now, observed.get(item.name))
            if item.step is InstanceStep.FAILED:
                self.state = RolloutState.STOPPED
                return []
        if self.state is RolloutState.PAUSED or self.in_flight():
            return []
        waiting = [i for i in self.items.values() if i.step is InstanceStep.WAITING]
        if not waiting:
            self.state = RolloutState.DONE
            return []
        chosen = waiting[: self.batch]
        for item in chosen:
            item.step = InstanceStep.RESTARTING
            item.restarted_at = now
            before = observed.get(item.name)
            item.old_started = before.started_at if before is not None else None
            item.note = "restart asked"
        return [i.name for i in chosen]

    def restarted(self, name: str) -> None:
        """The restart of ``name`` was carried out."""
        self.items[name].note = "restarted; waiting for it to come back"

    def restart_failed(self, name: str, why: str) -> None:
        """The restart itself failed (refused, not found): the rollout stops there."""
        item = self.items[name]
        item.step = InstanceStep.FAILED
        item.note = f"restart failed: {why}"
        if not self.finished:
            self.state = RolloutState.STOPPED

    def _watch(self, item: _Item, now: float, seen: Observation | None) -> None:
        assert item.restarted_at is not None
        back = (
            seen is not None
            and seen.started_at is not None
            and (item.old_started is None or seen.started_at > item.old_started + NEWER_BY)
        )
        good = back and seen is not None and seen.healthy and (seen.fps or 0.0) >= self.target_fps
        if good:
            assert seen is not None and seen.fps is not None
            if item.good_since is None:
                item.good_since = now
            if now - item.good_since >= self.settle:
                item.step = InstanceStep.DONE
                item.note = f"back, healthy, {seen.fps:.1f} fps"
                return
            item.step = InstanceStep.SETTLING
            item.note = f"back at {seen.fps:.1f} fps; settling"
        else:
            # A dip resets the settling time: "back" means steadily back.
            item.good_since = None
            item.step = InstanceStep.RESTARTING
            if back and seen is not None:
                fps = "no fps" if seen.fps is None else f"{seen.fps:.1f} fps"
                item.note = f"back but {'healthy' if seen.healthy else 'not healthy'}, {fps}"
        if now - item.restarted_at >= self.timeout:
            item.step = InstanceStep.FAILED
            item.note = f"not back after {self.timeout:g} s ({item.note})"

    # ------------------------------------------------------------------ reading
    def counts(self) -> dict[InstanceStep, int]:
        out = dict.fromkeys(InstanceStep, 0)
        for item in self.items.values():
            out[item.step] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        text = f"{self.state.value}: {c[InstanceStep.DONE]}/{len(self.items)} done"
        flying = self.in_flight()
        if flying:
            text += "; " + ", ".join(f"{i.name} {i.note}" for i in flying)
        failed = [i for i in self.items.values() if i.step is InstanceStep.FAILED]
        if failed:
            text += f"; stopped at {failed[0].name}: {failed[0].note}"
        return text


async def drive(
    rollout: GatedRollout,
    *,
    restart: Callable[[str], Awaitable[None]],
    observe: Callable[[], Mapping[str, Observation]],
    monotonic: Callable[[], float],
    changed: Callable[[float], Awaitable[None]],
    on_change: Callable[[], None] = lambda: None,
) -> None:
    """Runs ``rollout`` to its end: restarts what it asks for (``restart`` raises to
    report a failure), and steps again whenever ``changed(seconds)`` returns — on a
    change of the fleet, or after ``seconds`` at most (it may raise TimeoutError) for
    the timers."""
    while not rollout.finished:
        for name in rollout.step(monotonic(), observe()):
            try:
                await restart(name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failure is the rollout's to report
                rollout.restart_failed(name, str(exc))
            else:
                rollout.restarted(name)
        on_change()
        if rollout.finished:
            break
        with contextlib.suppress(TimeoutError):
            await changed(1.0)
    on_change()

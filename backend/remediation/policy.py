"""The remediation ladder: a pure state machine, one case per instance.

Given what the fleet looks like at a moment (:class:`Observation` per instance) and what
was done before (the cases), :meth:`Policy.step` returns the decisions of that moment.
Nothing here does I/O, reads a clock or draws a random number: the same history gives the
same decisions, on any replica, in any test.

The ladder, one rung at a time::

    idle ──bad for bad_for──► reset ──still bad after watch_reset──► restart
      ▲                         │                                     │
      └──── good for recovered_for (incident closed) ◄────────────────┤
                                                                      │
                                   still bad after watch_restart ─────► needs a person

"Bad" is an instance whose guest runs (QEMU up, its health current) but that is
unhealthy or degraded, or whose picture has been still (a measured 0 frames/s) for
longer than its profile allows (:mod:`backend.remediation.profiles`). A dead QEMU or
supervisor is not the policy's business: the supervisor restarts QEMU itself and the
kubelet restarts the container.

Budgets: at most ``max_actions_per_hour`` actions per instance (when the next rung would
exceed it, the policy gives up instead: an instance that needs that much help needs a
person), at most ``max_fraction`` of the fleet in remediation at once (a correlated
failure of every instance never becomes a fleet-wide restart), and ``cooldown`` seconds
between two actions on one instance. A decision that cannot be carried out (paused, over
a budget) is reported once per rung, not once per tick.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from backend.remediation.profiles import Thresholds, thresholds_for

HOUR = 3600.0


class Rung(StrEnum):
    IDLE = "idle"
    BAD = "bad"  # bad, waiting out bad_for before the first action
    RESET = "reset"  # soft reset done, watching
    RESTART = "restart"  # restart done, watching
    NEEDS_PERSON = "needs_person"


class Action(StrEnum):
    RESET = "reset"
    RESTART = "restart"
    GIVE_UP = "give_up"
    RECOVERED = "recovered"


class Outcome(StrEnum):
    ACTED = "acted"
    DRY_RUN = "dry_run"
    SKIPPED_PAUSED = "skipped_paused"
    SKIPPED_BUDGET = "skipped_budget"
    SKIPPED_COOLDOWN = "skipped_cooldown"
    FAILED = "failed"


@dataclass(frozen=True)
class Observation:
    """One instance at one moment, as far as the policy cares."""

    name: str
    running: bool
    """Its guest runs and its health is current (else nothing here can help)."""
    problem: str | None
    """Why it is unhealthy or degraded, when it is."""
    fps: float | None
    """The measured frame rate (None: not measured)."""
    profile: str | None
    still_for: float | None = None
    """Seconds since the picture last changed, from the supervisor's continuous view
    (None: not reported; then a measured 0 frames/s stands in)."""


@dataclass(frozen=True)
class Decision:
    instance: str
    action: Action
    reason: str
    outcome: Outcome
    rung: Rung
    """The instance's rung after this decision."""


@dataclass
class Case:
    """What the policy remembers of one instance."""

    rung: Rung = Rung.IDLE
    since: float = 0.0
    """When the current rung began."""
    bad_since: float | None = None
    frozen_since: float | None = None
    good_since: float | None = None
    reason: str | None = None
    """Why it was last found bad."""
    actions: deque[float] = field(default_factory=deque)
    """Times of actions taken in the last hour (for the hourly budget)."""
    announced: str | None = None
    """The skipped decision already reported in this rung (reported once)."""


@dataclass(frozen=True)
class Budgets:
    max_actions_per_hour: int = 3
    max_fraction: float = 0.25
    """Of the fleet, in remediation (reset or restart rungs) at once; at least one."""
    cooldown: float = 15.0
    """Seconds between two actions on one instance (the watch windows are longer)."""


class Policy:
    def __init__(
        self,
        budgets: Budgets | None = None,
        profiles: dict[str, Thresholds] | None = None,
    ) -> None:
        self.budgets = budgets or Budgets()
        self.profiles = profiles
        self.cases: dict[str, Case] = {}

    # ------------------------------------------------------------------ reading
    def case(self, name: str) -> Case:
        return self.cases.setdefault(name, Case())

    def in_remediation(self) -> int:
        return sum(1 for c in self.cases.values() if c.rung in (Rung.RESET, Rung.RESTART))

    def needing_a_person(self) -> list[str]:
        return sorted(n for n, c in self.cases.items() if c.rung is Rung.NEEDS_PERSON)

    def limit(self, fleet_size: int) -> int:
        return max(1, math.floor(self.budgets.max_fraction * fleet_size))

    # ------------------------------------------------------------------ stepping
    def step(
        self,
        now: float,
        observations: list[Observation],
        *,
        paused: bool = False,
        dry_run: bool = False,
    ) -> list[Decision]:
        """The decisions at ``now`` (instances in name order, so ties are deterministic).

        ``paused`` decisions are reported as skipped and the ladder does not move;
        ``dry_run`` decisions move the ladder as if carried out (so a dry run shows what
        the whole incident would look like) but nothing is done.
        """
        seen = {o.name for o in observations}
        for gone in [n for n in self.cases if n not in seen]:
            del self.cases[gone]
        decisions: list[Decision] = []
        for obs in sorted(observations, key=lambda o: o.name):
            decision = self._step_one(now, obs, len(observations), paused, dry_run)
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _bad(self, now: float, obs: Observation, case: Case, t: Thresholds) -> str | None:
        if obs.still_for is not None:
            # Every change counts, however rare (a desktop clock once a minute); the
            # sampled frame rate can miss those and read 0 for a healthy idle desktop.
            case.frozen_since = None
            if obs.still_for >= t.frozen_for:
                return f"no new frame for {obs.still_for:.0f} s"
        elif obs.fps == 0.0:
            if case.frozen_since is None:
                case.frozen_since = now
            if now - case.frozen_since >= t.frozen_for:
                return f"no new frame for {now - case.frozen_since:.0f} s"
        else:
            case.frozen_since = None
        return obs.problem

    def _step_one(
        self, now: float, obs: Observation, fleet_size: int, paused: bool, dry_run: bool
    ) -> Decision | None:
        case = self.case(obs.name)
        t = thresholds_for(obs.profile, self.profiles)
        while case.actions and case.actions[0] <= now - HOUR:
            case.actions.popleft()
        if not obs.running:
            return self._not_running(now, obs, case, t, fleet_size, paused, dry_run)
        bad = self._bad(now, obs, case, t)
        if bad is None:
            case.bad_since = None
            if case.good_since is None:
                case.good_since = now
            if case.rung is Rung.BAD:
                self._move(case, Rung.IDLE, now)
            elif case.rung is not Rung.IDLE and now - case.good_since >= t.recovered_for:
                was = case.rung
                self._move(case, Rung.IDLE, now)
                return Decision(
                    obs.name, Action.RECOVERED, f"good for {t.recovered_for:g} s after {was}",
                    Outcome.ACTED, Rung.IDLE,
                )  # fmt: skip
            return None
        case.good_since = None
        case.reason = bad
        if case.bad_since is None:
            case.bad_since = now
        if case.rung is Rung.IDLE:
            self._move(case, Rung.BAD, now)
        if case.rung is Rung.BAD and now - case.bad_since >= t.bad_for:
            return self._act(case, obs.name, Action.RESET, now, fleet_size, paused, dry_run)
        if case.rung is Rung.RESET and now - case.since >= t.watch_reset:
            return self._act(case, obs.name, Action.RESTART, now, fleet_size, paused, dry_run)
        if case.rung is Rung.RESTART and now - case.since >= t.watch_restart:
            self._move(case, Rung.NEEDS_PERSON, now)
            return Decision(
                obs.name, Action.GIVE_UP, f"still bad after a reset and a restart: {bad}",
                Outcome.ACTED, Rung.NEEDS_PERSON,
            )  # fmt: skip
        return None

    def _not_running(
        self,
        now: float,
        obs: Observation,
        case: Case,
        t: Thresholds,
        fleet_size: int,
        paused: bool,
        dry_run: bool,
    ) -> Decision | None:
        """A guest that is not running is neither good nor bad: its supervisor or the
        kubelet is bringing it back, and the ladder waits. Only after an action of ours
        does it count against the instance: a pod that does not come back within the
        watch window after a reset or restart climbs like any other bad instance."""
        case.frozen_since = None
        case.good_since = None
        if case.rung is Rung.RESET and now - case.since >= t.watch_reset:
            case.reason = f"not running since the reset: {obs.problem or 'no answer'}"
            return self._act(case, obs.name, Action.RESTART, now, fleet_size, paused, dry_run)
        if case.rung is Rung.RESTART and now - case.since >= t.watch_restart:
            why = f"not running since the restart: {obs.problem or 'no answer'}"
            self._move(case, Rung.NEEDS_PERSON, now)
            return Decision(obs.name, Action.GIVE_UP, why, Outcome.ACTED, Rung.NEEDS_PERSON)
        return None

    # ------------------------------------------------------------------ hand-over
    def export(self) -> dict[str, dict[str, object]]:
        """The cases a successor must not start over (on a rung, or with actions in the
        last hour), as JSON-ready data."""
        return {
            name: {
                "rung": case.rung.value,
                "since": case.since,
                "reason": case.reason,
                "actions": list(case.actions),
            }
            for name, case in sorted(self.cases.items())
            if case.rung not in (Rung.IDLE, Rung.BAD) or case.actions
        }

    def adopt(self, cases: dict[str, dict[str, object]]) -> list[str]:
        """Takes over what :meth:`export` gave on another replica; entries that do not
        parse are skipped and named in the result."""
        skipped = []
        for name, data in cases.items():
            try:
                rung = Rung(str(data["rung"]))
                since = float(data["since"])  # type: ignore[arg-type]
                actions = sorted(float(a) for a in data.get("actions") or [])  # type: ignore[union-attr]
                reason = data.get("reason")
            except (KeyError, TypeError, ValueError, AttributeError):
                skipped.append(str(name))
                continue
            case = self.case(str(name))
            case.rung, case.since = rung, since
            case.reason = str(reason) if reason is not None else None
            case.actions = deque(actions)
            case.announced = None
        return skipped

    def _act(
        self,
        case: Case,
        name: str,
        action: Action,
        now: float,
        fleet_size: int,
        paused: bool,
        dry_run: bool,
    ) -> Decision | None:
        reason = case.reason or "bad"
        budgets = self.budgets
        if len(case.actions) >= budgets.max_actions_per_hour:
            self._move(case, Rung.NEEDS_PERSON, now)
            return Decision(
                name,
                Action.GIVE_UP,
                f"{len(case.actions)} actions in the last hour (the budget); {reason}",
                Outcome.ACTED,
                Rung.NEEDS_PERSON,
            )
        skip: tuple[Outcome, str] | None = None
        if paused:
            skip = (Outcome.SKIPPED_PAUSED, "the policy is paused")
        elif case.actions and now - case.actions[-1] < budgets.cooldown:
            skip = (Outcome.SKIPPED_COOLDOWN, f"{budgets.cooldown:g} s cool-down after an action")
        elif action is Action.RESET and self.in_remediation() >= self.limit(fleet_size):
            skip = (
                Outcome.SKIPPED_BUDGET,
                f"{self.in_remediation()} of {fleet_size} instances already in remediation "
                f"(at most {self.limit(fleet_size)})",
            )
        if skip is not None:
            outcome, why = skip
            key = f"{action}:{outcome}"
            if case.announced == key:
                return None
            case.announced = key
            return Decision(name, action, f"{reason}; not now: {why}", outcome, case.rung)
        case.actions.append(now)
        self._move(case, Rung.RESET if action is Action.RESET else Rung.RESTART, now)
        return Decision(
            name, action, reason, Outcome.DRY_RUN if dry_run else Outcome.ACTED, case.rung
        )

    @staticmethod
    def _move(case: Case, rung: Rung, now: float) -> None:
        case.rung = rung
        case.since = now
        case.announced = None

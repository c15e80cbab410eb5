"""The remediation engine: feeds the ladder the fleet, carries out its decisions, says so.

Once a second (``interval``) it turns every instance into an
:class:`~backend.remediation.policy.Observation`, asks the policy for the decisions of
that moment, and, when this replica leads (``leader()``), carries each one out through
the same actions people use (``act``: a soft reset through the supervisor; a restart is a
pod deletion on Kubernetes and a new QEMU locally). Every decision — acted, dry run,
skipped, gave up, failed — is one :class:`~backend.models.RemediationEvent`: on
``/api/events``, in the audit log, and in ``loco_remediation_actions_total``.

A replica that does not lead evaluates nothing: its view of the ladder would not be the
leader's. When it takes over, it starts from what the previous leader handed on
(:meth:`adopt` of the previous leader's :meth:`export`), so an action is not taken twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from backend.models import (
    Instance,
    InstanceStatus,
    RemediationEvent,
    RemediationInfo,
    RemediationStatus,
)
from backend.remediation.policy import (
    Action,
    Case,
    Decision,
    Observation,
    Outcome,
    Policy,
    Rung,
)
from emulator.jsonlog import log

logger = logging.getLogger("backend.remediation")
audit_logger = logging.getLogger("backend.audit")

Act = Callable[[Action, str], Awaitable[str]]
"""Carries out a reset or restart of an instance; returns the answer, raises on failure."""


def observe(inst: Instance, now: float) -> Observation:
    """What the policy needs of an instance at ``now`` (see the policy's "bad")."""
    health = inst.health
    running = (
        health is not None and not inst.stale and inst.lost_since is None and health.qemu_healthy
    )
    problem = None
    if inst.status in (InstanceStatus.UNHEALTHY, InstanceStatus.DEGRADED):
        problem = inst.status_reason or inst.status.value
    # Read from still_since, not from changed_at: changed_at is a clock (it moves with
    # every frame and is not published for that alone), so the instance's copy of it ages
    # while the guest draws; still_since changes only when the picture stops or starts
    # changing, and arrives with that news.
    still_for = None
    if health is not None and health.video.changed_at is not None:
        still = health.video.still_since
        still_for = 0.0 if still is None else max(0.0, now - still.timestamp())
    return Observation(
        name=inst.name,
        running=running,
        problem=problem,
        fps=inst.fps,
        profile=health.qemu.profile if health is not None else None,
        still_for=still_for,
    )


def category(decision: Decision) -> str:
    """A bounded label for the metric (the reason's text is unbounded)."""
    if decision.action is Action.RECOVERED:
        return "recovered"
    if decision.action is Action.GIVE_UP:
        return "budget" if "in the last hour" in decision.reason else "still_bad"
    if decision.reason.startswith("no new frame"):
        return "frozen"
    return "unhealthy_or_degraded"


@dataclass(frozen=True)
class Pause:
    since: datetime
    until: datetime | None
    reason: str | None
    by: str | None

    @classmethod
    def starting_now(cls, minutes: float | None, reason: str | None, by: str | None) -> Pause:
        now = datetime.now(UTC)
        until = datetime.fromtimestamp(now.timestamp() + minutes * 60, UTC) if minutes else None
        return cls(now, until, reason, by)

    def to_json(self) -> dict[str, str | None]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "reason": self.reason,
            "by": self.by,
        }

    @classmethod
    def from_json(cls, data: object) -> Pause | None:
        """The pause another replica recorded; None when absent or unreadable."""
        if not isinstance(data, dict):
            return None
        try:
            since = datetime.fromisoformat(str(data["since"]))
            until = datetime.fromisoformat(str(data["until"])) if data.get("until") else None
        except (KeyError, ValueError):
            return None
        reason, by = data.get("reason"), data.get("by")
        return cls(since, until, str(reason) if reason else None, str(by) if by else None)


class RemediationEngine:
    def __init__(
        self,
        policy: Policy,
        instances: Callable[[], Iterable[Instance]],
        act: Act,
        *,
        publish: Callable[[RemediationEvent], None],
        show: Callable[[str, RemediationInfo | None], None],
        leader: Callable[[], bool],
        dry_run: bool = False,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        metrics: object | None = None,
        after_action: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.policy = policy
        self.instances = instances
        self.act = act
        self.publish = publish
        self.show = show
        self.leader = leader
        self.dry_run = dry_run
        self.interval = interval
        self.clock = clock
        self.metrics = metrics
        self.after_action = after_action
        """Called after an action was carried out (the leader records its state at once)."""
        self.pause: Pause | None = None
        self._shown: dict[str, RemediationInfo | None] = {}
        self._leading = False

    # ------------------------------------------------------------------ control
    def set_pause(self, pause: Pause | None) -> None:
        if pause == self.pause:
            return
        self.pause = pause
        if pause is None:
            log(logger, logging.INFO, "remediation resumed")
        else:
            log(
                logger,
                logging.INFO,
                "remediation paused",
                until=pause.until.isoformat() if pause.until else None,
                reason=pause.reason,
                by=pause.by,
            )
        self._metric_pause()

    def _metric_pause(self) -> None:
        set_pause = getattr(self.metrics, "set_remediation_pause", None)
        if set_pause is not None:
            set_pause(self.pause)

    def export(self) -> dict[str, object]:
        """What a successor needs to continue (JSON-ready)."""
        return {"cases": self.policy.export()}

    def adopt(self, state: dict[str, object]) -> None:
        """Continues from a previous leader's :meth:`export` (on becoming leader)."""
        cases = state.get("cases")
        if not isinstance(cases, dict):
            return
        skipped = self.policy.adopt(cases)
        log(
            logger,
            logging.INFO,
            "remediation state taken over",
            cases=len(cases) - len(skipped),
            unreadable=skipped or None,
        )
        self._show_cases(self.clock())

    def status(self, identity: str | None, holder: str | None) -> RemediationStatus:
        p = self.pause
        return RemediationStatus(
            enabled=True,
            leader=self.leader(),
            identity=identity,
            holder=holder,
            dry_run=self.dry_run,
            paused=p is not None,
            paused_since=p.since if p else None,
            paused_until=p.until if p else None,
            paused_reason=p.reason if p else None,
            paused_by=p.by if p else None,
            in_remediation=self.policy.in_remediation(),
            needing_a_person=self.policy.needing_a_person(),
            max_actions_per_hour=self.policy.budgets.max_actions_per_hour,
            max_fraction=self.policy.budgets.max_fraction,
            cooldown_seconds=self.policy.budgets.cooldown,
        )

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval)

    async def tick(self) -> list[Decision]:
        """One evaluation (the loop's body; tests call it with a clock of their own)."""
        leading = self.leader()
        if leading != self._leading:
            self._leading = leading
            log(logger, logging.INFO, "remediation " + ("leading" if leading else "following"))
        if not leading:
            return []
        pause = self.pause
        if pause is not None and pause.until is not None and datetime.now(UTC) >= pause.until:
            log(logger, logging.INFO, "remediation pause ended as planned")
            self.set_pause(None)
        now = self.clock()
        observations = [observe(i, now) for i in self.instances()]
        decisions = self.policy.step(
            now, observations, paused=self.pause is not None, dry_run=self.dry_run
        )
        for decision in decisions:
            await self._carry_out(decision)
        self._show_cases(now)
        if self.after_action is not None and any(d.outcome is Outcome.ACTED for d in decisions):
            await self.after_action()
        return decisions

    async def _carry_out(self, decision: Decision) -> None:
        outcome, detail = decision.outcome, None
        if outcome is Outcome.ACTED and decision.action in (Action.RESET, Action.RESTART):
            try:
                detail = await self.act(decision.action, decision.instance)
            except Exception as exc:
                outcome, detail = Outcome.FAILED, str(exc)
        event = RemediationEvent(
            seq=0,
            instance=decision.instance,
            action=decision.action.value,
            reason=decision.reason,
            outcome=outcome.value,
            rung=decision.rung.value,
            at=datetime.now(UTC),
            detail=detail,
        )
        self.publish(event)
        log(
            audit_logger,
            logging.WARNING if outcome is Outcome.FAILED else logging.INFO,
            "audit",
            action=f"remediation {decision.action.value}",
            instance=decision.instance,
            result=outcome.value,
            reason=decision.reason,
            detail=detail,
            client="remediation",
        )
        count = getattr(self.metrics, "remediation_action", None)
        if count is not None:
            count(decision.action.value, category(decision), outcome.value)

    def _show_cases(self, now: float) -> None:
        for name, case in self.policy.cases.items():
            info = _info(case, now)
            if self._shown.get(name) != info:
                self._shown[name] = info
                self.show(name, info)
        for gone in [n for n in self._shown if n not in self.policy.cases]:
            del self._shown[gone]
        set_cases = getattr(self.metrics, "set_remediation_cases", None)
        if set_cases is not None:
            set_cases(self.policy.in_remediation(), self.policy.needing_a_person())


def _info(case: Case, now: float) -> RemediationInfo | None:
    if case.rung in (Rung.IDLE, Rung.BAD):
        return None
    return RemediationInfo(
        rung=case.rung.value,
        since=datetime.fromtimestamp(case.since, UTC),
        reason=case.reason,
        actions_last_hour=len(case.actions),
    )

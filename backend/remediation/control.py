"""The automatic recovery as one backend runs it: engine, election, pause, actions.

Locally (one backend) this replica always leads and a pause lives in memory. On
Kubernetes, where the chart may run several replicas, the Lease decides who acts
(:mod:`backend.kube.lease`) and also carries the pause, so ``POST
/api/remediation/pause`` works whichever replica the Service sends it to: the replica
that answers writes the pause on the Lease, and every replica reads it there with each
renewal or retry (within ``retry_period``, 2 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from backend import actions
from backend.models import RemediationStatus
from backend.remediation.engine import Pause, RemediationEngine
from backend.remediation.policy import Action, Budgets, Policy
from backend.remediation.profiles import PROFILES, Thresholds
from backend.runtime import BackendRuntime
from emulator.jsonlog import log

logger = logging.getLogger("backend.remediation")

PAUSE_ANNOTATION = "lego-loco.io/remediation-pause"


def profiles_from(overrides: dict[str, dict[str, float]]) -> dict[str, Thresholds]:
    """The built-in thresholds with the settings' ``PROFILE.KEY=SECONDS`` applied; an
    unknown profile starts from the default profile's numbers."""
    table = dict(PROFILES)
    for profile, keys in overrides.items():
        base = table.get(profile) or table["win98"]
        table[profile] = replace(base, **keys)
    return table


def default_identity() -> str:
    """This replica's name when the pod's is not given (``LOCO_POD_NAME``)."""
    return f"{socket.gethostname()}-{os.getpid()}"


class PauseConflict(Exception):
    """The pause could not be recorded where every replica reads it."""


class Remediation:
    def __init__(self, runtime: BackendRuntime) -> None:
        s = runtime.settings
        self.runtime = runtime
        self.identity = s.identity or default_identity()
        self.policy = Policy(
            Budgets(
                max_actions_per_hour=s.remediation_max_actions,
                max_fraction=s.remediation_max_fraction,
                cooldown=s.remediation_cooldown,
            ),
            profiles_from(s.remediation_thresholds),
        )
        self.election = None
        if runtime.kube is not None:
            from backend.kube.lease import KubeLeaseLock, LeaseElection

            lock = KubeLeaseLock(
                runtime.kube,
                s.lease_name,
                getattr(runtime.discovery, "namespace", "default"),
                self.identity,
                lease_duration=s.lease_duration,
                state=self._handover,
                adopt=self._adopt,
            )
            lock.seen = self._seen
            self.election = LeaseElection(lock, on_change=runtime.metrics.remediation_leader.set)
        else:
            runtime.metrics.remediation_leader.set(1)
        self.engine = RemediationEngine(
            self.policy,
            runtime.fleet.instances,
            self._act,
            publish=runtime.fleet.remediation_decided,
            show=runtime.fleet.remediation_changed,
            leader=self.election.leading if self.election is not None else lambda: True,
            dry_run=s.remediation_dry_run,
            interval=s.remediation_interval,
            metrics=runtime.metrics,
            after_action=self.election.record_now if self.election is not None else None,
        )
        runtime.metrics.remediation_enabled.set(1)
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        s = self.runtime.settings
        log(
            logger,
            logging.INFO,
            "automatic recovery on"
            + (" (dry run: nothing is done)" if s.remediation_dry_run else ""),
            max_actions_per_hour=s.remediation_max_actions,
            max_fraction=s.remediation_max_fraction,
            cooldown=s.remediation_cooldown,
            lease=s.lease_name if self.election is not None else None,
            identity=self.identity,
        )
        if self.election is not None:
            self.election.start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="remediation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.election is not None:
            await self.election.stop()

    async def _run(self) -> None:
        # One evaluation at a time, a fixed pause between: a slow action delays the next
        # evaluation instead of overlapping it.
        while True:
            try:
                await self.engine.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log(logger, logging.ERROR, "remediation step failed", error=repr(exc))
            await asyncio.sleep(self.engine.interval)

    # ------------------------------------------------------------------ reads
    def status(self) -> RemediationStatus:
        holder = self.identity if self.election is None else self.election.holder
        return self.engine.status(self.identity, holder)

    # ------------------------------------------------------------------ pause
    async def pause(self, minutes: float | None, reason: str | None, by: str | None) -> Pause:
        pause = Pause.starting_now(minutes, reason, by)
        await self._share_pause(pause)
        self.engine.set_pause(pause)
        return pause

    async def resume(self) -> None:
        await self._share_pause(None)
        self.engine.set_pause(None)

    async def _share_pause(self, pause: Pause | None) -> None:
        if self.election is None:
            return
        from backend.kube.errors import KubeError

        text = json.dumps(pause.to_json()) if pause is not None else None
        try:
            await self.election.lock.annotate(PAUSE_ANNOTATION, text)
        except KubeError as exc:
            raise PauseConflict(str(exc)) from None

    def _seen(self, annotations: dict[str, Any]) -> None:
        """Every read of the Lease: the pause every replica shares."""
        text = annotations.get(PAUSE_ANNOTATION)
        pause = None
        if text:
            with contextlib.suppress(ValueError):
                pause = Pause.from_json(json.loads(text))
        if pause is not None and pause.until is not None and pause.until <= datetime.now(UTC):
            pause = None
        self.engine.set_pause(pause)

    # ------------------------------------------------------------------ hand-over
    def _handover(self) -> dict[str, Any]:
        return self.engine.export()

    def _adopt(self, state: dict[str, Any]) -> None:
        self.engine.adopt(state)

    # ------------------------------------------------------------------ acting
    async def _act(self, action: Action, name: str) -> str:
        """The same reset and restart people use (``backend.actions``)."""
        target = self.runtime.fleet.target(name)
        if target is None:
            raise LookupError(f"{name} is gone")
        fn = actions.reset if action is Action.RESET else actions.restart
        result = await fn(self.runtime, target)
        return result.message

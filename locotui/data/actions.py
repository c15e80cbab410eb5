"""Operator actions: soft reset, restart pod, rolling restart of the StatefulSet, forget; and
pausing or resuming the backend's automatic recovery.

Every action takes a list of targets, reports per-target :class:`Progress` (through an
``on_progress`` callback, or as an async iterator with :meth:`ActionRunner.stream`),
refuses in read-only mode (:class:`~locotui.data.errors.ReadOnly`), and appends one
:class:`AuditEntry` to the :class:`AuditLog` the UI shows.

Routes:

=================  =====================================================================
soft_reset         backend ``POST /api/instances/{name}/reset`` (control token)
restart_pod        Kubernetes instances: delete the pod with the operator's credentials
                   (its StatefulSet recreates it); local/static: backend ``/restart``
rolling_restart    patch the owning StatefulSet's pod template ``restartedAt`` (like
                   ``kubectl rollout restart``) and follow the rollout
forget             backend ``DELETE /api/instances/{name}``: a lost local instance (its
                   supervisor died) leaves the list; its state directory is kept
pause / resume     backend ``POST /api/remediation/pause`` (minutes, reason) and
remediation        ``/resume`` (control token); the target is the policy
                   (:data:`~locotui.data.remediation.AUTO_RECOVERY`), not an instance, and
                   the new state goes into the fleet model at once
=================  =====================================================================

:func:`describe` returns the exact confirmation text to show before doing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from backend.models import InstanceSource, RemediationStatus
from locotui.data.errors import DataError, ReadOnly
from locotui.data.remediation import AUTO_RECOVERY, policy_summary
from locotui.data.routes import Mode, Routes

__all__ = [
    "DOWNTIME_SECONDS",
    "ActionKind",
    "ActionRunner",
    "AuditEntry",
    "AuditLog",
    "Phase",
    "Progress",
    "describe",
    "name_list",
]


class ActionKind(StrEnum):
    SOFT_RESET = "soft_reset"
    RESTART_POD = "restart_pod"
    ROLLING_RESTART = "rolling_restart"
    FORGET = "forget"
    PAUSE_REMEDIATION = "pause_remediation"
    RESUME_REMEDIATION = "resume_remediation"
    USER_COMMAND = "user_command"
    GATED_RESTART = "gated_restart"


class Phase(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


# Rough downtime an operator should expect (seconds): a soft reset only reboots the guest;
# a pod restart adds scheduling, image checks and QEMU start to the guest's boot.
DOWNTIME_SECONDS: dict[ActionKind, int] = {
    ActionKind.SOFT_RESET: 15,
    ActionKind.RESTART_POD: 45,
    ActionKind.ROLLING_RESTART: 45,
    ActionKind.FORGET: 0,
    ActionKind.PAUSE_REMEDIATION: 0,
    ActionKind.RESUME_REMEDIATION: 0,
}


@dataclass(frozen=True)
class Progress:
    action: ActionKind
    target: str
    """Instance name (StatefulSet name for rolling restarts)."""
    phase: Phase
    message: str
    at: float = field(default_factory=time.time)
    error: DataError | None = field(default=None, compare=False, repr=False)

    @property
    def done(self) -> bool:
        return self.phase in (Phase.OK, Phase.FAILED)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    action: ActionKind
    targets: tuple[str, ...]
    result: Literal["ok", "failed", "partial", "refused"]
    error: str | None = None
    details: tuple[str, ...] = ()
    """One line per target: ``name: message``."""

    def to_json(self) -> str:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        d["action"] = self.action.value
        return json.dumps(d, separators=(",", ":"))


class AuditLog:
    """What was done, by this console, in this session (bounded). With ``path``, every
    entry is also appended to that file as one JSON line (written in a thread)."""

    def __init__(self, max_entries: int = 1000, path: Path | None = None) -> None:
        self.entries: deque[AuditEntry] = deque(maxlen=max_entries)
        self.path = path
        self.version = 0
        self._subscribers: list[Callable[[AuditEntry], None]] = []

    def subscribe(self, callback: Callable[[AuditEntry], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    async def append(self, entry: AuditEntry) -> None:
        self.entries.append(entry)
        self.version += 1
        for cb in list(self._subscribers):
            with contextlib.suppress(Exception):
                cb(entry)
        if self.path is not None:
            with contextlib.suppress(OSError):  # the in-memory log still has it
                await asyncio.to_thread(self._write, entry)

    def _write(self, entry: AuditEntry) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(entry.to_json() + "\n")


def name_list(targets: Sequence[str], limit: int = 5) -> str:
    """``a, b, c and 2 more``: names for a sentence, however many there are."""
    shown = ", ".join(targets[:limit])
    more = len(targets) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _minutes(seconds: float) -> str:
    return f"~{round(seconds)} s" if seconds < 120 else f"~{round(seconds / 60)} min"


def describe(
    action: ActionKind | str,
    targets: Sequence[str],
    *,
    namespace: str | None = None,
    mode: Mode = "kubernetes",
    statefulsets: Sequence[str] | None = None,
    replicas: int | None = None,
    downtime: float | None = None,
) -> str:
    """The confirmation text for ``action`` on ``targets`` (exact; shown before doing it).

    ``mode`` is how restarts go (see :data:`Mode`). ``statefulsets``/``replicas`` refine
    the rolling-restart text.
    """
    action = ActionKind(action)
    down = downtime if downtime is not None else DOWNTIME_SECONDS[action]
    ns = f" in namespace {namespace}" if namespace else ""
    n = len(targets)
    if action is ActionKind.SOFT_RESET:
        what = f"{targets[0]}" if n == 1 else f"{n} instances ({name_list(targets)})"
        return (
            f"Soft reset {what} (QMP system_reset through the backend): the guest reboots "
            f"in place, {_minutes(down)} without a usable picture; the pod keeps running."
        )
    if action is ActionKind.FORGET:
        what = f"{targets[0]}" if n == 1 else f"{n} instances ({name_list(targets)})"
        return (
            f"Forget {what}: the supervisor is gone, so the instance leaves the list; its "
            "state directory (overlay, logs) is kept. Nothing running is touched."
        )
    if action is ActionKind.RESTART_POD:
        if mode == "backend":
            what = f"{targets[0]}" if n == 1 else f"{n} instances ({name_list(targets)})"
            return (
                f"Restart QEMU of {what} through the backend (the emulator reboots, "
                f"{_minutes(down)} of downtime)."
            )
        via = " through the backend (its service account)" if mode == "backend_pod" else ""
        if n == 1:
            return (
                f"Delete pod {targets[0]}{ns}{via}; its StatefulSet recreates it (the emulator "
                f"reboots, {_minutes(down)} of downtime)."
            )
        return (
            f"Delete {n} pods{ns} ({name_list(targets)}){via}; their StatefulSet recreates them "
            f"(each emulator reboots, {_minutes(down)} of downtime)."
        )
    sets = list(statefulsets or [])
    which = (
        f"StatefulSet {sets[0]}"
        if len(sets) == 1
        else f"StatefulSets {', '.join(sets)}"
        if sets
        else "the StatefulSet owning " + name_list(targets)
    )
    count = replicas if replicas is not None else n
    total = f", about {_minutes(down * count)} in total" if count > 1 else ""
    return (
        f"Rolling restart of {which}{ns}: its {count} pod{'s' if count != 1 else ''} are "
        f"replaced one at a time (each emulator reboots, {_minutes(down)} of downtime "
        f"each{total})."
    )


ProgressCallback = Callable[[Progress], None]


class ActionRunner:
    """Runs actions with the console's clients; which side does a restart is asked of
    ``routes`` (:class:`locotui.data.routes.Routes`), made from the fleet model when one
    is given."""

    def __init__(
        self,
        *,
        backend: Any | None = None,
        kube: Any | None = None,
        audit: AuditLog | None = None,
        read_only: bool = False,
        fleet: Any | None = None,
        routes: Routes | None = None,
        wait_ready: bool = True,
        ready_timeout: float = 300.0,
        concurrency: int = 4,
        poll: float = 1.0,
    ) -> None:
        self.backend = backend
        self.kube = kube
        self.audit = audit or AuditLog()
        self.read_only = read_only
        self.fleet = fleet
        self.wait_ready = wait_ready
        self.ready_timeout = ready_timeout
        self.concurrency = max(1, concurrency)
        self.poll = poll
        self.routes = routes or Routes(backend=backend, kube=kube, source_of=self._source_of)

    def _source_of(self, name: str) -> InstanceSource | None:
        entry = self.fleet.get(name) if self.fleet is not None else None
        return entry.summary.source if entry is not None else None

    def mode_for(self, name: str) -> Mode:
        return self.routes.restart(name)

    def describe(self, action: ActionKind | str, targets: Sequence[str]) -> str:
        action = ActionKind(action)
        mode = self.mode_for(targets[0]) if targets else "kubernetes"
        ns = self.kube.namespace if self.kube is not None and mode == "kubernetes" else None
        return describe(action, targets, namespace=ns, mode=mode)

    # ------------------------------------------------------------------ running
    async def run(
        self,
        action: ActionKind | str,
        targets: Sequence[str],
        on_progress: ProgressCallback | None = None,
    ) -> list[Progress]:
        """Runs ``action`` on ``targets``; returns the final :class:`Progress` of each.

        Raises :class:`ReadOnly` (after auditing the refusal) in read-only mode; every
        other failure is reported per target (phase FAILED, ``error`` set).
        """
        action = ActionKind(action)
        targets = list(dict.fromkeys(targets))
        report = on_progress or (lambda _p: None)
        await self._refuse_if_read_only(action, targets)
        finals: dict[str, Progress] = {}

        def emit(p: Progress) -> None:
            if p.done:
                finals[p.target] = p
            with contextlib.suppress(Exception):
                report(p)

        if action is ActionKind.ROLLING_RESTART:
            await self._rolling(targets, emit)
        else:
            for t in targets:
                emit(Progress(action, t, Phase.PENDING, "waiting"))
            sem = asyncio.Semaphore(self.concurrency)

            async def one(name: str) -> None:
                async with sem:
                    await self._one(action, name, emit)

            await asyncio.gather(*(one(t) for t in targets))
        results = list(finals.values())
        await self._audit(action, targets, results)
        return results

    async def _refuse_if_read_only(self, action: ActionKind, targets: Sequence[str]) -> None:
        """In read-only mode: audits the refusal and raises :class:`ReadOnly`."""
        if self.read_only:
            await self.audit.append(
                AuditEntry(datetime.now(UTC), action, tuple(targets), "refused", "read-only mode")
            )
            raise ReadOnly(f"read-only mode: {action.value.replace('_', ' ')} is disabled")

    async def _audit(
        self, action: ActionKind, targets: Sequence[str], results: Sequence[Progress]
    ) -> None:
        failed = [p for p in results if p.phase is Phase.FAILED]
        result: Literal["ok", "failed", "partial"] = (
            "ok" if not failed else "failed" if len(failed) == len(results) else "partial"
        )
        await self.audit.append(
            AuditEntry(
                datetime.now(UTC),
                action,
                tuple(targets),
                result,
                "; ".join(p.message for p in failed)[:500] or None,
                tuple(f"{p.target}: {p.message}" for p in results),
            )
        )

    # ------------------------------------------------------------------ the policy
    async def pause_remediation(
        self,
        minutes: float | None,
        reason: str | None,
        on_progress: ProgressCallback | None = None,
    ) -> list[Progress]:
        """Pauses the automatic recovery (``minutes`` None: until resumed); one
        :class:`Progress` for :data:`AUTO_RECOVERY`, audited like every action."""
        ask = f"pausing it for {minutes:g} min" if minutes else "pausing it until resumed"
        return await self._policy(
            ActionKind.PAUSE_REMEDIATION,
            ask,
            lambda backend: backend.pause_remediation(minutes, reason),
            on_progress,
        )

    async def resume_remediation(
        self, on_progress: ProgressCallback | None = None
    ) -> list[Progress]:
        """Resumes the automatic recovery (see :meth:`pause_remediation`)."""
        return await self._policy(
            ActionKind.RESUME_REMEDIATION,
            "resuming it",
            lambda backend: backend.resume_remediation(),
            on_progress,
        )

    async def _policy(
        self,
        action: ActionKind,
        asking: str,
        call: Callable[[Any], Awaitable[RemediationStatus]],
        on_progress: ProgressCallback | None,
    ) -> list[Progress]:
        targets = [AUTO_RECOVERY]
        await self._refuse_if_read_only(action, targets)
        report = on_progress or (lambda _p: None)

        def emit(p: Progress) -> None:
            with contextlib.suppress(Exception):  # a broken display must not stop it
                report(p)

        try:
            if self.backend is None:
                raise DataError("the automatic recovery is the backend's: no backend configured")
            emit(Progress(action, AUTO_RECOVERY, Phase.RUNNING, f"asking the backend: {asking}"))
            status = await call(self.backend)
            # The answer is the new state: shown at once, not at the next periodic read.
            set_state = getattr(self.fleet, "set_remediation", None)
            if set_state is not None:
                set_state(status)
            final = Progress(action, AUTO_RECOVERY, Phase.OK, f"now {policy_summary(status)}")
        except DataError as exc:
            final = Progress(action, AUTO_RECOVERY, Phase.FAILED, str(exc), error=exc)
        emit(final)
        await self._audit(action, targets, [final])
        return [final]

    async def stream(
        self, action: ActionKind | str, targets: Sequence[str]
    ) -> AsyncIterator[Progress]:
        """:meth:`run` as an async iterator of progress (ends after the last target)."""
        queue: asyncio.Queue[Progress | BaseException | None] = asyncio.Queue()

        async def go() -> None:
            try:
                await self.run(action, targets, queue.put_nowait)
            except BaseException as exc:
                queue.put_nowait(exc)
                raise
            finally:
                queue.put_nowait(None)

        task = asyncio.get_running_loop().create_task(go())
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _one(self, action: ActionKind, name: str, emit: ProgressCallback) -> None:
        started = time.monotonic()
        try:
            if action is ActionKind.SOFT_RESET:
                if self.backend is None:
                    raise DataError("soft reset needs the backend (no backend configured)")
                emit(Progress(action, name, Phase.RUNNING, "sending system_reset"))
                result = await self.backend.reset(name)
                emit(Progress(action, name, Phase.OK, result.message))
                return
            if action is ActionKind.FORGET:
                if self.backend is None:
                    raise DataError("forgetting an instance needs the backend")
                result = await self.backend.forget(name)
                emit(Progress(action, name, Phase.OK, result.message))
                return
            if self.mode_for(name) != "kubernetes":
                if self.backend is None:
                    raise DataError("restart needs the backend or Kubernetes access")
                emit(Progress(action, name, Phase.RUNNING, "asking the backend to restart"))
                result = await self.backend.restart(name)
                emit(Progress(action, name, Phase.OK, result.message))
                return
            kube = self.kube
            emit(Progress(action, name, Phase.RUNNING, f"deleting pod {name}"))
            old_uid = await kube.delete_pod(name)
            if not self.wait_ready:
                emit(
                    Progress(
                        action, name, Phase.OK, f"pod {name} deleted; its StatefulSet recreates it"
                    )
                )
                return
            emit(
                Progress(
                    action, name, Phase.RUNNING, "deleted; waiting for the new pod to be Ready"
                )
            )
            try:
                async with asyncio.timeout(self.ready_timeout):
                    await kube.wait_pod_replaced(name, old_uid, ready=True, poll=self.poll)
            except TimeoutError:
                emit(
                    Progress(
                        action,
                        name,
                        Phase.FAILED,
                        f"pod {name} deleted, but no Ready replacement after "
                        f"{self.ready_timeout:g} s",
                    )
                )
                return
            took = time.monotonic() - started
            emit(
                Progress(action, name, Phase.OK, f"pod {name} recreated and Ready in {took:.0f} s")
            )
        except DataError as exc:
            emit(Progress(action, name, Phase.FAILED, str(exc), error=exc))

    async def _rolling(self, targets: Sequence[str], emit: ProgressCallback) -> None:
        action = ActionKind.ROLLING_RESTART
        if self.kube is None:
            for t in targets or ["(fleet)"]:
                emit(
                    Progress(
                        action,
                        t,
                        Phase.FAILED,
                        "rolling restart needs Kubernetes access (kubeconfig/context)",
                    )
                )
            return
        kube = self.kube
        try:
            sets = await kube.statefulsets_of(list(targets) or None)
        except DataError as exc:
            emit(
                Progress(action, ",".join(targets) or "(fleet)", Phase.FAILED, str(exc), error=exc)
            )
            return
        if not sets:
            emit(
                Progress(
                    action,
                    ",".join(targets) or "(fleet)",
                    Phase.FAILED,
                    "no StatefulSet owns these pods; restart them one by one instead",
                )
            )
            return
        for sts in sets:
            started = time.monotonic()
            try:
                emit(Progress(action, sts, Phase.RUNNING, f"patching StatefulSet {sts}"))
                await kube.rollout_restart(sts)
                if not self.wait_ready:
                    emit(Progress(action, sts, Phase.OK, "rollout started"))
                    continue
                async with asyncio.timeout(self.ready_timeout):
                    # Give the controller a moment to observe the new template first.
                    await asyncio.sleep(min(self.poll, 0.2))
                    while True:
                        st = await kube.rollout_status(sts)
                        if st.done:
                            break
                        emit(
                            Progress(
                                action,
                                sts,
                                Phase.RUNNING,
                                f"{st.updated}/{st.replicas} pods updated, {st.ready} ready",
                            )
                        )
                        await asyncio.sleep(self.poll)
                took = time.monotonic() - started
                emit(
                    Progress(
                        action, sts, Phase.OK, f"all {st.replicas} pods replaced in {took:.0f} s"
                    )
                )
            except TimeoutError:
                emit(
                    Progress(
                        action,
                        sts,
                        Phase.FAILED,
                        f"rollout of {sts} not finished after {self.ready_timeout:g} s",
                    )
                )
            except DataError as exc:
                emit(Progress(action, sts, Phase.FAILED, str(exc), error=exc))

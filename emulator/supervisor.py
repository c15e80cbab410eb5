"""Owns the QEMU process: start, watch, probe over QMP, restart with backoff, stop cleanly.

One supervisor per instance. It never decides health itself (``emulator.health`` does, from
the facts kept here), so the rule can be read and tested in one place.

What it recovers by itself, because nobody else will (a pod's liveness probe asks the
supervisor, which is fine, and a local fleet has no kubelet at all):

* QEMU exits or crashes: restarted with backoff, until ``max_restarts`` failures in a row.
* QEMU hangs (QMP silent for ``hang_limit`` s while the process exists, e.g. SIGSTOP or a
  deadlock): killed and treated exactly like a crash.
* The guest is paused on a disk error (QEMU's ``io-error`` state, which the drive options
  ask for rather than letting the guest see a failed write): the cause is read from
  ``query-block`` (no space, or an I/O error), said once, and the guest is resumed
  (``cont``) when space is back or, for other errors, on a backoff schedule.
* The base image is replaced under an instance: QEMU is not restarted on top of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from emulator.answer_deadline import AnswerDeadline
from emulator.backoff import Backoff
from emulator.childproc import describe_exit, die_with_parent
from emulator.jsonlog import log
from emulator.models import QemuFacts
from emulator.qmp import Qmp, QmpCommandError, QmpUnavailable

logger = logging.getLogger("emulator.supervisor")

# How often QMP is asked whether QEMU is alive. With the answer's wait (floor 0.25 s,
# emulator.answer_deadline) a hang is news about 0.4 s after it starts; a probe costs
# well under a millisecond of QEMU's time.
PROBE_INTERVAL = 0.25
QMP_TIMEOUT = 1.0
QMP_CONNECT_LIMIT = 15.0
RUNNING_LIMIT = 10.0
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0
# A QEMU that ran this long before dying was not crash-looping: start counting afresh.
STABLE_AFTER = 60.0
QUIT_WAIT = 5.0  # QEMU needs 1.5-1.9 s to exit after quit (PLATFORM.md)
HANG_LIMIT = 15.0
# Resuming a guest paused on a disk error: first after this long, doubling up to the max.
RESUME_BACKOFF_MIN, RESUME_BACKOFF_MAX = 2.0, 30.0
# The guest counts as resumed once it stayed running this long after ``cont``.
RESUME_SETTLE = 2.0
BASE_CHECK_EVERY = 5.0
# A guest paused on a full disk is resumed once this much is free: four qcow2 clusters, so
# it can make progress rather than stop again on its next write.
RESUME_FREE_BYTES = 256 * 1024

BaseCheck = Callable[[], Awaitable[str | None]]


def _resume_backoff() -> Backoff:
    return Backoff(RESUME_BACKOFF_MIN, RESUME_BACKOFF_MAX, jitter=False)


@dataclass
class DiskError:
    """The guest is paused because a read or write of its disk failed."""

    kind: str  # "nospace" or "failed" (QMP io-status)
    device: str | None
    since: float
    next_resume_at: float = 0.0
    delay: float = 0.0  # the current wait between resume attempts
    backoff: Backoff = field(default_factory=_resume_backoff)
    resumed_at: float | None = None  # last ``cont`` (or running again), until it holds

    def back_off(self, now: float) -> None:
        """Paused (again): the next resume waits one step longer than the last."""
        self.delay = self.backoff.next_delay()
        self.next_resume_at = now + self.delay

    def describe(self, free_bytes: int | None) -> str:
        if self.kind == "nospace":
            free = "" if free_bytes is None else f" ({free_bytes // 1024} KiB free)"
            return (
                "guest paused: disk full, no space left for the overlay"
                f"{free}; it resumes by itself once space is freed"
            )
        return (
            "guest paused: I/O error on the disk holding the overlay; resuming is retried "
            "with backoff"
        )


class QemuStartError(Exception):
    pass


class Supervisor:
    def __init__(
        self,
        argv: list[str],
        qmp_socket: Path,
        accel: str,
        profile: str,
        grace: float,
        max_restarts: int = 5,
        name: str = "emulator",
        clock: Callable[[], float] = time.monotonic,
        hang_limit: float = HANG_LIMIT,
        disk_dir: Path | None = None,
        base_check: BaseCheck | None = None,
    ) -> None:
        self.argv = argv
        self.hang_limit = hang_limit
        self.disk_dir = disk_dir
        self.base_check = base_check
        self.base_changed: str | None = None
        self.disk_error: DiskError | None = None
        self.resumes = 0
        self.hangs = 0
        self._base_checked_at = 0.0
        self.qmp_socket = qmp_socket
        self.qmp = Qmp(qmp_socket, name)
        self.accel, self.profile, self.grace = accel, profile, grace
        self.max_restarts = max_restarts
        self.restart_backoff = Backoff(BACKOFF_MIN, BACKOFF_MAX, jitter=False)
        self._clock = clock
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at: float | None = None
        self.started_wall: datetime | None = None
        self.restarts = 0
        self.consecutive_failures = 0
        self.last_exit: str | None = None
        self.booted = False
        self.crash_loop = False
        self.qmp_status: str | None = None
        self.qmp_ok = False
        self.qmp_latency_ms: float | None = None
        self.qmp_silent_since: float | None = None
        self.answer_deadline = AnswerDeadline(ceiling=QMP_TIMEOUT)
        self.next_start_at: float | None = None
        self.errors: deque[str] = deque(maxlen=10)
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.on_qmp_latency: Callable[[float], None] | None = None
        self.on_change: Callable[[], None] | None = None
        """Called when a fact the status is made of changes (the status stream listens)."""
        self._stderr_task: asyncio.Task[None] | None = None
        self._restart = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()
        self.first_ready = asyncio.Event()
        self.spawned = asyncio.Event()  # set once the first start attempt has spawned or failed

    # -- facts ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def facts(self) -> QemuFacts:
        uptime = None
        if self.running and self.started_at is not None:
            uptime = round(self._clock() - self.started_at, 1)
        return QemuFacts(
            pid=self.proc.pid if self.running and self.proc else None,
            running=self.running,
            qmp_status=self.qmp_status if self.running else None,
            qmp_latency_ms=self.qmp_latency_ms,
            uptime_seconds=uptime,
            started_at=self.started_wall if self.running else None,
            restarts=self.restarts,
            last_exit=self.last_exit,
            booted=self.booted,
            crash_loop=self.crash_loop,
            accel=self.accel,
            profile=self.profile,
            # Said while the guest is paused on it; during the settle after a resume the
            # guest runs, and resumes already counts the attempt.
            disk_error=self.disk_error.describe(self.free_bytes())
            if self.disk_error is not None and self.qmp_status == "io-error"
            else None,
            resumes=self.resumes,
            hangs=self.hangs,
        )

    def free_bytes(self) -> int | None:
        """Free space where the overlay lives (None when unknown)."""
        if self.disk_dir is None:
            return None
        try:
            return shutil.disk_usage(self.disk_dir).free
        except OSError:
            return None

    def _error(self, message: str, **context: object) -> None:
        self.errors.append(message)
        log(logger, logging.ERROR, message, **context)
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- the main loop --------------------------------------------------------------------

    async def run(self) -> None:
        """Runs QEMU until :meth:`stop`; always leaves no QEMU behind."""
        try:
            while not self._stop.is_set():
                self._restart.clear()
                if await self._start_once():
                    await self._monitor()
                if self._stop.is_set():
                    break
                if self._restart.is_set():
                    await self._stop_qemu(graceful=False)
                    self._count_restart(manual=True)
                    continue
                await self._after_failure()
        finally:
            await self._stop_qemu(graceful=self._stop.is_set())
            self._stopped.set()

    def _count_restart(self, manual: bool) -> None:
        self.restarts += 1
        if manual:
            self.consecutive_failures = 0
            self.crash_loop = False
        self._changed()

    async def _after_failure(self) -> None:
        ran_for = self._clock() - (self.started_at or self._clock())
        if ran_for >= STABLE_AFTER:
            self.consecutive_failures = 0
        self.consecutive_failures += 1
        if self.consecutive_failures > self.max_restarts:
            self.crash_loop = True
            self._error(
                f"QEMU failed {self.consecutive_failures} times in a row; not restarting it "
                "until asked (POST /restart) or the supervisor is restarted",
                last_exit=self.last_exit,
            )
            await self._wait_any(self._restart, self._stop)
            if self._restart.is_set() and not self._stop.is_set():
                self._count_restart(manual=True)
            return
        delay = self.restart_backoff.delay(self.consecutive_failures - 1)
        self.next_start_at = self._clock() + delay
        log(
            logger,
            logging.WARNING,
            "restarting QEMU after backoff",
            delay_seconds=delay,
            attempt=self.consecutive_failures,
            last_exit=self.last_exit,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_any(self._restart, self._stop), delay)
        self.next_start_at = None
        if not self._stop.is_set():
            self._count_restart(manual=self._restart.is_set())

    @staticmethod
    async def _wait_any(*events: asyncio.Event) -> None:
        waiters = [asyncio.create_task(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _spawn(self) -> asyncio.subprocess.Process:
        self.qmp_socket.unlink(missing_ok=True)
        self.stderr_tail.clear()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                # Its own session: a Ctrl-C in the terminal reaches the supervisor, which then
                # powers the guest down in order, instead of killing QEMU under it.
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            raise QemuStartError(f"cannot run {self.argv[0]}: {exc.strerror}") from exc
        self.proc = proc
        self.spawned.set()
        self.started_at = self._clock()
        self.started_wall = datetime.now(UTC)
        self.qmp_status, self.qmp_ok, self.qmp_silent_since = None, False, None
        self.answer_deadline.reset()
        self.disk_error = None  # a new QEMU starts with its disk requests afresh
        self._stderr_task = asyncio.create_task(self._read_stderr(proc))
        log(logger, logging.INFO, "QEMU started", pid=proc.pid, argv=self.argv)
        self._changed()
        return proc

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                log(logger, logging.WARNING, "qemu: " + line, pid=proc.pid)

    async def _start_once(self) -> bool:
        """Starts QEMU and waits until QMP says it runs; False (with the reason) if not."""
        try:
            if self.base_check is not None:
                self.base_changed = await self.base_check()
                if self.base_changed is not None:
                    raise QemuStartError(self.base_changed)
            proc = await self._spawn()
            exited = asyncio.create_task(proc.wait())
            try:
                ready = asyncio.create_task(self._until_running())
                done, _ = await asyncio.wait({exited, ready}, return_when=asyncio.FIRST_COMPLETED)
                if ready in done:
                    ready.result()
                    return True
                ready.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await ready
                # Let the stderr reader drain what QEMU said before it died.
                await asyncio.sleep(0.05)
                raise QemuStartError(describe_exit(proc.returncode or 0, self.stderr_tail))
            finally:
                exited.cancel()
        except (QemuStartError, QmpUnavailable, QmpCommandError) as exc:
            self.spawned.set()  # the attempt is over; waiters must not hang on a failed spawn
            self.last_exit = f"start failed: {exc}"
            self._error(f"QEMU did not start: {exc}")
            await self._stop_qemu(graceful=False)
            return False

    async def _until_running(self) -> None:
        await self.qmp.connect(QMP_CONNECT_LIMIT)
        deadline = self._clock() + RUNNING_LIMIT
        while True:
            status = await self.qmp.execute("query-status", limit=2.0)
            self.qmp_status = status.get("status")
            if self.qmp_status == "running":
                self.qmp_ok = True
                self.booted = True
                self.first_ready.set()
                log(logger, logging.INFO, "QEMU is running", pid=self.proc and self.proc.pid)
                self._changed()
                return
            if self._clock() > deadline:
                raise QemuStartError(f"QEMU stayed in state {self.qmp_status!r}")
            await asyncio.sleep(0.1)

    async def _monitor(self) -> None:
        """Probes QMP every ``PROBE_INTERVAL`` until QEMU exits, or a restart or stop is
        asked for."""
        proc = self.proc
        assert proc is not None
        exited = asyncio.create_task(proc.wait())
        try:
            while True:
                await self._wait_any_timeout(exited, PROBE_INTERVAL)
                if exited.done():
                    await asyncio.sleep(0.05)  # the stderr reader's last lines
                    self.last_exit = describe_exit(proc.returncode or 0, self.stderr_tail)
                    self.qmp_status, self.qmp_ok = None, False
                    await self.qmp.close()
                    self._error(f"QEMU {self.last_exit}", pid=proc.pid)
                    return
                if self._stop.is_set() or self._restart.is_set():
                    return
                await self._probe()
                if self._hung():
                    silent = self._clock() - (self.qmp_silent_since or self._clock())
                    self.hangs += 1
                    self.last_exit = f"hung: QMP silent for {silent:.0f} s, killed"
                    self._error(
                        f"QEMU is hung (QMP silent for {silent:.0f} s); killing it to start "
                        "a new one",
                        pid=proc.pid,
                    )
                    await self._stop_qemu(graceful=False)
                    return
                await self._check_base()
        finally:
            exited.cancel()

    def _hung(self) -> bool:
        return (
            self.hang_limit > 0
            and self.qmp_silent_since is not None
            and self._clock() - self.qmp_silent_since >= self.hang_limit
        )

    async def _check_base(self) -> None:
        """While QEMU runs: notice a base image replaced under it (said once, not fixed:
        the running guest keeps the old file open, its next start is refused)."""
        if self.base_check is None or self._clock() - self._base_checked_at < BASE_CHECK_EVERY:
            return
        self._base_checked_at = self._clock()
        changed = await self.base_check()
        was, self.base_changed = self.base_changed, changed
        if changed is not None and was is None:
            self._error(changed)
        elif changed != was:
            self._changed()

    async def _wait_any_timeout(self, task: asyncio.Task[int], limit: float) -> None:
        waiters = {
            task,
            asyncio.create_task(self._stop.wait()),
            asyncio.create_task(self._restart.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                if w is not task:
                    w.cancel()

    def _probe_facts(self) -> tuple[object, ...]:
        err = self.disk_error
        return (self.qmp_ok, self.qmp_status, err and err.kind, self.resumes)

    async def _probe(self) -> None:
        before = self._probe_facts()
        try:
            await self._probe_qmp()
        finally:
            if self._probe_facts() != before:
                self._changed()

    async def _probe_qmp(self) -> None:
        started = time.perf_counter()
        try:
            if not self.qmp.connected:
                await self.qmp.connect(QMP_TIMEOUT)
            status = await self.qmp.execute("query-status", limit=self.answer_deadline.limit)
        except (QmpUnavailable, QmpCommandError) as exc:
            if isinstance(exc, QmpUnavailable):
                self.answer_deadline.missed()
            if self.qmp_ok:
                self._error(f"QMP stopped answering: {exc}")
            self.qmp_ok = False
            if self.qmp_silent_since is None:
                self.qmp_silent_since = self._clock()
            return
        elapsed = time.perf_counter() - started
        self.answer_deadline.answered(elapsed)
        self.qmp_latency_ms = round(elapsed * 1000, 2)
        if self.on_qmp_latency:
            self.on_qmp_latency(elapsed)
        if not self.qmp_ok:
            log(logger, logging.INFO, "QMP answers again", status=status.get("status"))
        self.qmp_ok = True
        self.qmp_silent_since = None
        self.qmp_status = status.get("status")
        if self.qmp_status == "io-error":
            await self._on_disk_error()
        elif self.disk_error is not None and self.qmp_status == "running":
            self._maybe_resumed()

    async def _io_status(self) -> tuple[str, str | None]:
        """Which drive failed and how (QMP ``query-block``'s io-status)."""
        try:
            blocks = await self.qmp.execute("query-block", limit=QMP_TIMEOUT)
        except (QmpUnavailable, QmpCommandError):
            return "failed", None
        for block in blocks or []:
            status = block.get("io-status")
            if status in ("nospace", "failed"):
                return status, block.get("device") or block.get("qdev")
        return "failed", None

    async def _on_disk_error(self) -> None:
        now = self._clock()
        err = self.disk_error
        if err is None or err.resumed_at is not None:
            kind, device = await self._io_status()
            if err is None:
                err = self.disk_error = DiskError(kind, device, now)
                self._error(err.describe(self.free_bytes()), device=device, io_status=kind)
            else:  # paused again right after a resume: the cause is still there
                err.kind, err.device, err.resumed_at = kind, device, None
            err.back_off(now)
            return
        if now < err.next_resume_at:
            return
        free = self.free_bytes()
        if err.kind == "nospace" and free is not None and free < RESUME_FREE_BYTES:
            err.next_resume_at = now + RESUME_BACKOFF_MIN  # keep watching the free space
            return
        try:
            await self.qmp.execute("cont", limit=QMP_TIMEOUT)
        except (QmpUnavailable, QmpCommandError) as exc:
            log(logger, logging.WARNING, "could not resume the guest", error=str(exc))
            err.next_resume_at = now + err.delay
            return
        err.resumed_at = now
        self.resumes += 1
        log(
            logger,
            logging.INFO,
            "resuming the guest after the disk error",
            io_status=err.kind,
            free_bytes=free,
        )

    def _maybe_resumed(self) -> None:
        err = self.disk_error
        assert err is not None
        if err.resumed_at is None:  # running again without our cont (a reset, say)
            err.resumed_at = self._clock()
        if self._clock() - err.resumed_at < RESUME_SETTLE:
            return
        self.disk_error = None
        log(
            logger,
            logging.INFO,
            "guest resumed after the disk error",
            io_status=err.kind,
            paused_seconds=round(err.resumed_at - err.since, 1),
        )

    # -- actions --------------------------------------------------------------------------

    async def reset(self) -> float:
        """QMP system_reset: the guest reboots at once. Returns QEMU's answer time in s."""
        if not self.running:
            raise QmpUnavailable("QEMU is not running")
        started = time.perf_counter()
        await self.qmp.execute("system_reset", limit=3.0)
        return time.perf_counter() - started

    def request_restart(self) -> None:
        """Hard restart: a new QEMU process (also leaves a crash loop)."""
        self._restart.set()

    async def stop(self) -> None:
        """Powers the guest down (ACPI), then quits QEMU; returns when no QEMU is left."""
        self._stop.set()
        await self._stopped.wait()

    async def _stop_qemu(self, graceful: bool) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            await self.qmp.close()
            return
        if graceful and self.qmp_ok:
            with contextlib.suppress(QmpUnavailable, QmpCommandError):
                await self.qmp.execute("system_powerdown", limit=1.0)
                log(logger, logging.INFO, "asked the guest to power down", grace_seconds=self.grace)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), self.grace)
        if proc.returncode is None and self.qmp_ok:
            with contextlib.suppress(QmpUnavailable, QmpCommandError):
                await self.qmp.execute("quit", limit=1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), QUIT_WAIT)
        if proc.returncode is None:
            # SIGKILL also ends a stopped (SIGSTOP) process, which SIGTERM would not.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await self.qmp.close()
        self.qmp_ok = False
        self.qmp_status = None
        log(logger, logging.INFO, "QEMU stopped", pid=proc.pid, returncode=proc.returncode)
        self._changed()

    def kill_now(self) -> None:
        """Last resort for an unclean exit path: never leave QEMU running."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

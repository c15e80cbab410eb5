"""Counts the guest's distinct frames by sampling QMP screendumps in bursts.

See ``emulator.framerate`` for why this is not done over VNC. The dump goes to tmpfs when
there is one, so a sample is a memory copy, not disk I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from emulator.framerate import Burst, BurstRateEstimator
from emulator.qmp import QmpCommandError, QmpUnavailable
from emulator.supervisor import Supervisor

logger = logging.getLogger("emulator.framecount")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dump_path(state_dir: Path) -> Path:
    """A file in a private (0700) directory: /dev/shm is shared, a fixed name would let
    another user plant a symlink for QEMU to write through."""
    shm = Path("/dev/shm")  # noqa: S108 - used only through a private mkdtemp directory
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else state_dir
    _remove_orphans(base)
    return Path(tempfile.mkdtemp(prefix=f"loco-screen-{os.getpid()}-", dir=base)) / "screen.ppm"


def _remove_orphans(base: Path) -> None:
    """Drops directories left by supervisors that were killed before they could clean up
    (their pid is in the name); only our own, and only when that process is gone."""
    for entry in base.glob("loco-screen-*-*"):
        pid = entry.name.split("-")[2]
        try:
            mine = entry.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


class FrameCounter:
    def __init__(
        self,
        supervisor: Supervisor,
        path: Path,
        sample_hz: float = 60.0,
        burst: float = 2.0,
        period: float = 5.0,
        window: float = 12.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < burst <= period:
            raise ValueError("burst must be positive and no longer than period")
        self.supervisor = supervisor
        self.path = path
        self.interval = 1.0 / sample_hz
        self.burst, self.period = burst, period
        self.estimator = BurstRateEstimator(window)
        self._clock = clock
        self._pid: int | None = None
        self.on_change: Callable[[], None] | None = None
        """Called when a new figure is there (after every burst, and when a new QEMU
        clears the old one)."""

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def rate(self) -> float | None:
        """The current QEMU's frame rate; None until it has been measured (a new or restarted
        QEMU must not show the previous one's figure, nor a 0 that was never counted)."""
        proc = self.supervisor.proc
        if proc is None or proc.pid != self._pid:
            return None
        return self.estimator.rate(self._clock())

    @property
    def frames_total(self) -> int:
        return self.estimator.frames_total

    async def run(self) -> None:
        try:
            while True:
                started = self._clock()
                if self.supervisor.qmp_ok:
                    pid = self.supervisor.proc.pid if self.supervisor.proc else None
                    if pid != self._pid:  # a new QEMU: old bursts describe another process
                        self.estimator.clear()
                        self._pid = pid
                    burst = await self._burst()
                    if burst is not None:
                        self.estimator.add(burst)
                        self._changed()
                await asyncio.sleep(max(0.0, self.period - (self._clock() - started)))
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.path.parent)

    async def _sample(self) -> bytes | None:
        try:
            await self.supervisor.qmp.execute("screendump", {"filename": str(self.path)}, limit=1.0)
        except (QmpUnavailable, QmpCommandError):
            return None
        try:
            return await asyncio.to_thread(self.path.read_bytes)
        except OSError:
            return None

    async def _burst(self) -> Burst | None:
        first_at = last_at = None
        previous: bytes | None = None
        changes = 0
        start = self._clock()
        tick = 0
        while self._clock() - start < self.burst:
            sample = await self._sample()
            now = self._clock()
            if sample is None:
                return None
            if previous is not None and sample != previous:
                changes += 1
            if first_at is None:
                first_at = now
            last_at = now
            previous = sample
            tick += 1
            # A fixed schedule, so slow samples do not drift the sampling rate down.
            await asyncio.sleep(max(0.0, start + tick * self.interval - self._clock()))
        if first_at is None or last_at is None or last_at <= first_at:
            return None
        return Burst(ended_at=last_at, changes=changes, span=last_at - first_at)

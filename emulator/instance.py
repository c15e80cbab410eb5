"""One emulator instance: the supervisor, the VNC sampler and the status they add up to."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path

from emulator.framecount import FrameCounter
from emulator.health import build_status
from emulator.models import DiskFacts, EmulatorStatus
from emulator.status_stream import StatusFeed
from emulator.stream.owner import StreamOwner
from emulator.supervisor import Supervisor
from emulator.vnc import VncSampler


class EmulatorInstance:
    def __init__(
        self,
        name: str,
        supervisor: Supervisor,
        sampler: VncSampler,
        counter: FrameCounter,
        disk: DiskFacts | None,
        stream: StreamOwner | None = None,
    ) -> None:
        self.name = name
        self.stream = stream
        self.supervisor = supervisor
        self.sampler = sampler
        self.counter = counter
        self.disk = disk
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.feed = StatusFeed(self.status)
        """The status as a stream of changes (``GET /status/stream``)."""
        supervisor.on_change = sampler.on_change = counter.on_change = self.feed.poke
        if stream is not None:
            stream.on_change = self.feed.poke

    def status(self) -> EmulatorStatus:
        sup = self.supervisor
        errors = list(sup.errors)
        video = self.sampler.facts()
        if self.sampler.last_error and sup.running and not video.vnc_connected:
            errors.append(f"VNC: {self.sampler.last_error}")
        rate = self.counter.rate()
        video = video.model_copy(
            update={
                "estimated_frame_rate": None if rate is None else round(rate, 2),
                "frames_total": self.counter.frames_total,
            }
        )
        if not sup.running or not sup.qmp_ok:
            # A dead or frozen QEMU shows nothing new; the samplers only notice at a timeout.
            video = video.model_copy(update={"display_active": False, "estimated_frame_rate": 0.0})
        return build_status(
            instance=self.name,
            qemu=sup.facts(),
            qmp_ok=sup.qmp_ok,
            video=video,
            failures=sup.consecutive_failures,
            supervisor_uptime=time.monotonic() - self.started,
            disk=self._disk_now(),
            errors=errors,
            stream=None if self.stream is None else self.stream.facts(),
            supervisor_started_at=self.started_at,
        )

    def _disk_now(self) -> DiskFacts | None:
        """The disk facts with what changes as the guest runs read now (a stat and a statvfs:
        microseconds, cheaper than keeping them fresh in the background)."""
        if self.disk is None:
            return None
        size = None
        with contextlib.suppress(OSError):
            size = Path(self.disk.overlay).stat().st_size
        return self.disk.model_copy(
            update={
                "overlay_size": size,
                "free_bytes": self.supervisor.free_bytes(),
                "base_changed": self.supervisor.base_changed,
            }
        )

"""The one rule that turns supervisor and video facts into an overall status.

| condition (first that holds wins)                          | status     |
|------------------------------------------------------------|------------|
| restarts gave up (crash loop)                              | unhealthy  |
| QEMU never reached running and has failed since            | unhealthy  |
| QEMU never reached running yet                             | starting   |
| QEMU not running or QMP silent (a hang is killed after     | unhealthy  |
| ``--hang-limit`` s and restarted like a crash)             |            |
| guest paused on a disk error (says: full, or I/O error)    | unhealthy  |
| guest not in ``running`` (paused, shutdown, ...)           | unhealthy  |
| base image replaced under the running guest                | degraded   |
| display not active within the first ``STARTUP_GRACE`` s    | starting   |
| display not active (no VNC, no recent frame, blank screen) | degraded   |
| otherwise                                                  | healthy    |
"""

from __future__ import annotations

from datetime import UTC, datetime

from emulator.models import (
    DiskFacts,
    EmulatorStatus,
    OverallStatus,
    QemuFacts,
    Readiness,
    StreamFacts,
    VideoFacts,
)

STARTUP_GRACE = 15.0


def qemu_is_healthy(qemu: QemuFacts, qmp_ok: bool) -> bool:
    return qemu.running and qmp_ok and qemu.qmp_status == "running"


def derive(
    qemu: QemuFacts,
    qmp_ok: bool,
    video: VideoFacts,
    failures: int,
    disk: DiskFacts | None = None,
) -> tuple[OverallStatus, list[str]]:
    """Returns the status and the reasons behind it, most important first.

    The reasons never contain an age or a duration: they change when the situation does,
    not as time passes (the status stream sends an event for every change of them)."""
    if qemu.crash_loop:
        return OverallStatus.UNHEALTHY, [
            f"QEMU keeps failing and is no longer restarted (last: {qemu.last_exit})"
        ]
    if not qemu.booted:
        if failures:
            return OverallStatus.UNHEALTHY, [f"QEMU has not started: {qemu.last_exit}"]
        return OverallStatus.STARTING, ["QEMU is starting"]
    if not qemu.running:
        return OverallStatus.UNHEALTHY, [f"QEMU is not running ({qemu.last_exit})"]
    if not qmp_ok:
        return OverallStatus.UNHEALTHY, ["QMP does not answer: QEMU is hung or stopped"]
    if qemu.qmp_status == "io-error" and qemu.disk_error:
        return OverallStatus.UNHEALTHY, [qemu.disk_error]
    if qemu.qmp_status != "running":
        return OverallStatus.UNHEALTHY, [f"guest is {qemu.qmp_status}, not running"]
    if disk is not None and disk.base_changed:
        return OverallStatus.DEGRADED, [
            "base image replaced under the running guest: QEMU will not be started on it "
            "again (see errors)"
        ]
    if not video.display_active:
        reason = _display_reason(video)
        if (qemu.uptime_seconds or 0) < STARTUP_GRACE and video.frames_total == 0:
            return OverallStatus.STARTING, [reason]
        return OverallStatus.DEGRADED, [reason]
    return OverallStatus.HEALTHY, []


def _display_reason(video: VideoFacts) -> str:
    if not video.vnc_connected:
        return "no VNC connection to QEMU's display"
    if video.last_frame_age_seconds is None:
        return "no frame received yet"
    if video.blank:
        return "the screen is blank (one colour)"
    return "no recent frame: the display stopped updating"


def build_status(
    instance: str,
    qemu: QemuFacts,
    qmp_ok: bool,
    video: VideoFacts,
    failures: int,
    supervisor_uptime: float,
    disk: DiskFacts | None,
    errors: list[str],
    stream: StreamFacts | None = None,
    supervisor_started_at: datetime | None = None,
) -> EmulatorStatus:
    status, reasons = derive(qemu, qmp_ok, video, failures, disk)
    return EmulatorStatus(
        instance=instance,
        overall_status=status,
        qemu_healthy=qemu_is_healthy(qemu, qmp_ok),
        reasons=reasons,
        timestamp=datetime.now(UTC),
        supervisor_uptime_seconds=round(supervisor_uptime, 1),
        supervisor_started_at=supervisor_started_at,
        qemu=qemu,
        video=video,
        disk=disk,
        stream=stream,
        errors=errors,
    )


def readiness(status: EmulatorStatus) -> Readiness:
    """Ready means QEMU runs and its display shows live pictures."""
    if status.qemu_healthy and status.video.display_active:
        return Readiness(ready=True)
    reason = status.reasons[0] if status.reasons else "display not active"
    return Readiness(ready=False, reason=reason)

"""The emulator supervisor's wire contract: the JSON its HTTP endpoints return.

Defined once, here, next to its producer; the backend imports these models to parse what it
probes. Field names of the original system (``overall_status``, ``qemu_healthy``,
``video.display_active``, ``video.estimated_frame_rate``) are kept so existing scripts work.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class OverallStatus(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class QemuFacts(BaseModel):
    pid: int | None = Field(None, description="PID of the running QEMU, if any")
    running: bool = Field(False, description="A QEMU process exists and has not exited")
    qmp_status: str | None = Field(None, description="QMP query-status, e.g. running, paused")
    qmp_latency_ms: float | None = Field(None, description="Latency of the last QMP probe")
    uptime_seconds: float | None = Field(None, description="Age of the current QEMU process")
    started_at: datetime | None = Field(
        None,
        description="When the current QEMU process started (wall clock): its age is now minus "
        "this, which stays right while nothing else changes (uptime_seconds is as of timestamp)",
    )
    restarts: int = Field(0, description="Times the supervisor restarted QEMU")
    last_exit: str | None = Field(None, description="Why the previous QEMU ended")
    booted: bool = Field(False, description="QEMU has reached running at least once")
    crash_loop: bool = Field(False, description="Restarts gave up: QEMU keeps dying")
    accel: str = Field("tcg", description="Accelerator in use (tcg or kvm)")
    profile: str = Field("testimage", description="Machine profile (testimage or win98)")
    disk_error: str | None = Field(
        None, description="Why the guest is paused on a disk error (full, I/O error), if it is"
    )
    resumes: int = Field(0, description="Times the guest was resumed after a disk error")
    hangs: int = Field(0, description="Times a hung QEMU (QMP silent) was killed and restarted")


class VideoFacts(BaseModel):
    display_active: bool = Field(False, description="Frames arrive over VNC and are not blank")
    estimated_frame_rate: float | None = Field(
        None,
        description="Distinct frames per second the guest draws (sliding window); null "
        "until the current QEMU has been measured once",
    )
    width: int | None = None
    height: int | None = None
    last_frame_age_seconds: float | None = Field(
        None, description="Seconds since the last framebuffer update arrived"
    )
    frames_total: int = Field(0, description="Distinct frames observed since start")
    changed_at: datetime | None = Field(
        None,
        description="When the picture last changed, as seen on the continuous VNC "
        "connection (every change, however rare: unlike the sampled frame rate, this sees "
        "a desktop clock that redraws once a minute); null before the first picture",
    )
    still_since: datetime | None = Field(
        None,
        description="While the picture has not changed for a couple of seconds: when it last "
        "changed (changed_at); null while it changes and before the first picture. Unlike "
        "changed_at it moves only when the picture stops or starts changing, so it is news "
        "(the status stream sends it) where changed_at is a clock",
    )
    blank: bool = Field(False, description="The latest frame is a single colour")
    vnc_connected: bool = False
    vnc_reconnects: int = 0


class DiskFacts(BaseModel):
    image: str = Field(description="Base image (never written)")
    format: str
    virtual_size: int
    actual_size: int | None = None
    overlay: str = Field(description="This instance's copy-on-write overlay")
    overlay_size: int | None = Field(None, description="Bytes the overlay file has now")
    free_bytes: int | None = Field(
        None, description="Free space on the filesystem that holds the overlay"
    )
    base_changed: str | None = Field(
        None, description="Set when the base image is no longer the one the overlay was made on"
    )


class StreamState(StrEnum):
    WAITING = "waiting"  # for QEMU to draw (a new VNC frame) before (re)starting
    STARTING = "starting"
    PLAYING = "playing"
    RESTARTING = "restarting"  # failed; started again after a backoff


class StreamFacts(BaseModel):
    """The live video stream (``--stream``), measured where it leaves the encoder."""

    state: StreamState
    pipeline_state: str = Field(
        "NULL", description="GStreamer's state of the pipeline (NULL, READY, PAUSED, PLAYING)"
    )
    codec: str = Field("VP8", description="Video codec of the RTP and WebRTC stream")
    width: int = Field(description="Configured picture width (the guest's is scaled to it)")
    height: int
    max_fps: int = Field(description="Configured cap on frames per second")
    frames_per_second: float | None = Field(
        None,
        description="Encoded frames per second that left the encoder (sliding window), "
        "measured; null until the pipeline has run a second",
    )
    bitrate_kbps: float | None = Field(None, description="Encoded video kbit/s (measured)")
    frames_out: int = Field(0, description="Encoded frames since the supervisor started")
    last_frame_age_seconds: float | None = Field(
        None, description="Seconds since the last encoded frame"
    )
    dropped: dict[str, int] = Field(
        default_factory=dict,
        description="Buffers dropped by each leaky queue, by the stage it feeds, since start",
    )
    capped: int = Field(0, description="Captured frames held back by the frame-rate cap")
    restarts: int = Field(0, description="Times the pipeline failed and was started again")
    last_error: str | None = Field(None, description="Why the pipeline last failed")
    destination: str = Field(description="HOST:PORT the RTP stream is sent to")
    viewers: int = Field(0, description="Browsers watching over WebRTC now")


class EmulatorStatus(BaseModel):
    """Body of ``GET /health``."""

    instance: str
    overall_status: OverallStatus
    qemu_healthy: bool
    reasons: list[str] = Field(
        default_factory=list, description="Why the status is not healthy, most important first"
    )
    timestamp: datetime
    supervisor_uptime_seconds: float
    supervisor_started_at: datetime | None = Field(
        None, description="When the supervisor started (wall clock)"
    )
    qemu: QemuFacts
    video: VideoFacts
    disk: DiskFacts | None = None
    stream: StreamFacts | None = Field(None, description="The live video stream; null when off")
    errors: list[str] = Field(default_factory=list, description="Recent errors, newest last")


# Fields of EmulatorStatus that move while nothing happens: clocks (the timestamp, ages and
# uptimes) and running measurements (QMP latency, frames counted, the overlay's size, free
# space). A change in these alone is not news: the supervisor's status stream sends no event
# for it and the backend publishes none (backend.fleet derives its own list from this one).
# Ages are computed by whoever shows them, from the absolute ``*started_at`` fields.
# In pydantic's include/exclude form, e.g. ``status.model_dump_json(exclude=CLOCK_FIELDS)``.
CLOCK_FIELDS: dict[str, Any] = {
    "timestamp": True,
    "supervisor_uptime_seconds": True,
    "qemu": {"uptime_seconds", "qmp_latency_ms"},
    # changed_at moves with every frame an animated guest draws.
    "video": {"last_frame_age_seconds", "frames_total", "changed_at"},
    "disk": {"overlay_size", "free_bytes"},
    # Counters of the video stream that move with every frame it sends; its frame rate and
    # state are news, like the guest's frame rate.
    "stream": {"frames_out", "last_frame_age_seconds", "capped", "dropped", "bitrate_kbps"},
}


def significant_json(status: EmulatorStatus) -> str:
    """The status without its :data:`CLOCK_FIELDS`: equal strings mean no news."""
    return status.model_dump_json(exclude=CLOCK_FIELDS)


# A measured rate jitters from one window to the next (an animated guest reads 30.0-30.7 fps
# for minutes; the stream's encoder rate moves every second). Were each wiggle news, every
# animated emulator would cost an event a second whether anything happened or not. A rate
# is news when it moves from the figure last published by at least RATE_BAND_FPS or
# RATE_BAND_FRACTION of it, whichever is larger, and always when it appears, goes, or
# reaches or leaves 0 (a guest that stopped drawing is news whatever its figure was).
# A slow drift is still published: it is measured against the last published figure, not
# the previous reading.
RATE_BAND_FPS = 0.5
RATE_BAND_FRACTION = 0.05


def rate_moved(published: float | None, now: float | None) -> bool:
    """Whether a measured rate moved enough since ``published`` to be news."""
    if published is None or now is None:
        return published != now
    if (published == 0) != (now == 0):
        return True
    return abs(now - published) >= max(RATE_BAND_FPS, RATE_BAND_FRACTION * abs(published))


def _held(published: float | None, now: float | None) -> float | None:
    """The figure to compare: the published one while ``now`` has not moved from it."""
    return now if rate_moved(published, now) else published


def with_published_rates(published: EmulatorStatus | None, now: EmulatorStatus) -> EmulatorStatus:
    """``now``, with each measured rate (the guest's frame rate, the stream's) that has not
    moved (:func:`rate_moved`) since ``published`` put back to the published figure."""
    if published is None:
        return now
    update: dict[str, Any] = {}
    rate = _held(published.video.estimated_frame_rate, now.video.estimated_frame_rate)
    if rate != now.video.estimated_frame_rate:
        update["video"] = now.video.model_copy(update={"estimated_frame_rate": rate})
    if now.stream is not None and published.stream is not None:
        sent = _held(published.stream.frames_per_second, now.stream.frames_per_second)
        if sent != now.stream.frames_per_second:
            update["stream"] = now.stream.model_copy(update={"frames_per_second": sent})
    return now.model_copy(update=update) if update else now


class Readiness(BaseModel):
    """Body of ``GET /ready`` and ``GET /startup``."""

    ready: bool
    reason: str | None = None


class ResetResult(BaseModel):
    """Body of ``POST /reset``."""

    ok: bool
    message: str


class ViewerOffer(BaseModel):
    """Body of ``POST /stream/viewers``: a new WebRTC viewer and the offer to answer."""

    id: str = Field(description="The viewer, for its answer and its leaving")
    type: str = Field("offer", description="offer: the supervisor offers, the browser answers")
    sdp: str = Field(description="SDP offer with every ICE candidate (no trickle)")


class ViewerAnswer(BaseModel):
    """Body of ``PUT /stream/viewers/{id}``: the browser's SDP answer."""

    sdp: str = Field(min_length=10, max_length=32768)

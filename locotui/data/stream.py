"""The live video stream of an instance as the console shows it: the facts the supervisor
reports (through the backend), reduced to what a tile and the detail view need, and the
address of the backend's watch page. No widgets here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from backend.models import Instance
from emulator.models import StreamFacts, StreamState


class StreamMark(StrEnum):
    """How a tile marks the stream; none at all when it is off."""

    LIVE = "live"  # playing, pictures leaving the encoder
    STILL = "still"  # playing, but no picture for a while (a still screen, or trouble)
    WAITING = "waiting"  # for QEMU to draw, or starting
    FAILING = "failing"  # failed, restarting after a backoff


# A playing stream that has sent no picture for this long is marked still.
STILL_AFTER = 5.0


@dataclass(frozen=True)
class StreamView:
    mark: StreamMark
    fps: float | None
    viewers: int
    facts: StreamFacts


def stream_of(inst: Instance) -> StreamView | None:
    """The stream of ``inst``, or None when it has none (off, or no health yet)."""
    facts = inst.health.stream if inst.health is not None else None
    if facts is None:
        return None
    if facts.state is StreamState.RESTARTING:
        mark = StreamMark.FAILING
    elif facts.state is not StreamState.PLAYING:
        mark = StreamMark.WAITING
    elif facts.last_frame_age_seconds is None or facts.last_frame_age_seconds > STILL_AFTER:
        mark = StreamMark.STILL
    else:
        mark = StreamMark.LIVE
    return StreamView(mark, facts.frames_per_second, facts.viewers, facts)


def watch_url(backend_url: str, name: str) -> str:
    """The backend's page that plays ``name``'s stream in a browser."""
    return f"{backend_url.rstrip('/')}/watch/{quote(name, safe='')}"

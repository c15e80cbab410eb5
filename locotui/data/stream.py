"""The live video stream of an instance as the console shows it: the facts the supervisor
reports (through the backend), reduced to what a tile and the detail view need, and the
address of the backend's watch page. No widgets here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from backend.models import InstanceSummary
from emulator.models import StreamFacts, StreamState


class StreamMark(StrEnum):
    """How a tile marks the stream; none at all when it is off."""

    LIVE = "live"  # playing, pictures leaving the encoder
    STILL = "still"  # playing, but no picture for a while (a still screen, or trouble)
    WAITING = "waiting"  # for QEMU to draw, or starting
    FAILING = "failing"  # failed, restarting after a backoff


@dataclass(frozen=True)
class StreamView:
    mark: StreamMark
    fps: float | None


def _view(state: StreamState, fps: float | None) -> StreamView:
    if state is StreamState.RESTARTING:
        mark = StreamMark.FAILING
    elif state is not StreamState.PLAYING:
        mark = StreamMark.WAITING
    elif not fps:
        # Playing, and no picture left the encoder over its frame-rate window (or it has
        # not been measured yet): a still screen, or trouble. The frame rate is what the
        # supervisor's status sends when it changes; the age of the last frame is a clock
        # and does not travel.
        mark = StreamMark.STILL
    else:
        mark = StreamMark.LIVE
    return StreamView(mark, fps)


def stream_of(inst: InstanceSummary) -> StreamView | None:
    """The stream of ``inst``, or None when it has none (off, or no health yet)."""
    if inst.stream is None:
        return None
    return _view(inst.stream.state, inst.stream.fps)


def stream_view(facts: StreamFacts) -> StreamView:
    """The same mark from the full health's stream facts (the detail view)."""
    return _view(facts.state, facts.frames_per_second)


def watch_url(backend_url: str, name: str) -> str:
    """The backend's page that plays ``name``'s stream in a browser."""
    return f"{backend_url.rstrip('/')}/watch/{quote(name, safe='')}"

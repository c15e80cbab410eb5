"""How values read on screen: status symbols and colours, ages, fps, sparklines.

Every status has a symbol as well as a colour, so the screen reads without colour (a
monochrome terminal, a colour-blind operator, a screenshot pasted into a ticket).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.text import Text

from backend.models import BreakerState, InstanceStatus, InstanceSummary
from locotui.data.stream import StreamMark, StreamView

__all__ = [
    "BREAKER_STYLE",
    "NEEDS_PERSON_MARK",
    "RUNG_MARK",
    "STALE_MARK",
    "STATUS_STYLE",
    "STATUS_SYMBOL",
    "age",
    "breaker_text",
    "fps_cell",
    "fps_label",
    "fps_text",
    "phase_style",
    "pod_summary",
    "rung_text",
    "since",
    "span",
    "sparkline",
    "status_text",
    "stream_badge",
]

STATUS_SYMBOL: dict[InstanceStatus, str] = {
    InstanceStatus.HEALTHY: "●",
    InstanceStatus.DEGRADED: "◐",
    InstanceStatus.UNHEALTHY: "✖",
    InstanceStatus.STARTING: "…",
    InstanceStatus.UNKNOWN: "?",
}

# Theme variables are not available to Rich Text, so plain colour names: they map onto
# the terminal's own palette in 256/16-colour mode and stay readable on dark and light.
STATUS_STYLE: dict[InstanceStatus, str] = {
    InstanceStatus.HEALTHY: "bold green",
    InstanceStatus.DEGRADED: "bold yellow",
    InstanceStatus.UNHEALTHY: "bold red",
    InstanceStatus.STARTING: "bold cyan",
    InstanceStatus.UNKNOWN: "bold magenta",
}

# Worst first: the order "sort by status" and the header counts use.
STATUS_ORDER: tuple[InstanceStatus, ...] = (
    InstanceStatus.UNHEALTHY,
    InstanceStatus.DEGRADED,
    InstanceStatus.UNKNOWN,
    InstanceStatus.STARTING,
    InstanceStatus.HEALTHY,
)

STALE_MARK = "~"

RUNG_MARK = "⟳"
"""The automatic recovery acted on the instance and is watching it."""
NEEDS_PERSON_MARK = "⚑"
"""The automatic recovery gave up on the instance: a person must look."""

BREAKER_STYLE: dict[BreakerState, str] = {
    BreakerState.CLOSED: "green",
    BreakerState.HALF_OPEN: "yellow",
    BreakerState.OPEN: "bold red",
}

_BLOCKS = "▁▂▃▄▅▆▇█"


def span(text: str, style: str = "") -> Text:
    """A Text whose first part has ``style`` -- unlike ``Text(text, style=...)``, whose
    style is the base of the whole line and leaks into everything appended later."""
    out = Text()
    out.append(text, style=style)
    return out


def phase_style(phase: str, ready: bool) -> str:
    """Running and Ready reads plain; on the way (Pending, not Ready) yellow; broken red."""
    if phase == "Running":
        return "" if ready else "yellow"
    if phase in ("Pending", "ContainerCreating", "PodInitializing", "Succeeded"):
        return "yellow"
    return "bold red"


def now() -> datetime:
    return datetime.now(UTC)


def age(seconds: float | None) -> str:
    """A duration about the way kubectl prints ages: 42s, 5m12s, 45m, 2h13m, 27h, 3d4h, 46d.

    Precision drops as durations grow, so an old pod's age changes once a minute or
    less, not every second (every change is a repaint and bytes on the wire).
    """
    if seconds is None or math.isnan(seconds):
        return "-"
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    h = m // 60
    if h < 1:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    d = h // 24
    if h < 48:
        return f"{h}h"
    if d < 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    return f"{d}d"


def since(when: datetime | None, at: datetime | None = None) -> str:
    """Age of a timestamp; naive datetimes are taken as UTC."""
    if when is None:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return age(((at or now()) - when).total_seconds())


def sparkline(values: Sequence[float | None], width: int, top: float | None = None) -> str:
    """The last ``width`` values as block characters; a gap (no data) is a space.

    Scaled to ``top`` (default: max(30, the largest value)) rather than to the minimum, so
    a steady 25 fps reads as a flat high line, not as noise blown up to full height.
    """
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    present = [v for v in tail if v is not None and not math.isnan(v)]
    scale = top if top is not None else max([30.0, *present])
    out = []
    for v in tail:
        if v is None or math.isnan(v):
            out.append(" ")
            continue
        frac = 0.0 if scale <= 0 else min(1.0, max(0.0, v / scale))
        out.append(_BLOCKS[min(len(_BLOCKS) - 1, int(frac * (len(_BLOCKS) - 1) + 0.5))])
    return "".join(out).rjust(width)


def status_text(inst: InstanceSummary, *, word: bool = True) -> Text:
    """``● healthy`` in the status colour, with ``~stale`` when it is last-known data."""
    st = inst.status
    text = span(STATUS_SYMBOL.get(st, "?"), STATUS_STYLE.get(st, "bold"))
    if word:
        text.append(f" {st.value}", style=STATUS_STYLE.get(st, "bold"))
    if inst.stale:
        text.append(f" {STALE_MARK}stale", style="bold italic yellow")
    return text


def fps_text(fps: float | None) -> str:
    return "  -  " if fps is None else f"{fps:5.1f}"


def fps_cell(inst: InstanceSummary) -> Text:
    """The frame rate as a 5-wide cell: the figure, ``meas…`` while measuring, or ``-``
    (measuring: the emulator is live but has not measured its new QEMU's frame rate yet;
    a 0 or a dash would both say something false)."""
    if inst.measuring:
        return span("meas…", "dim italic")
    return Text(fps_text(inst.fps), style="" if inst.fps is not None else "dim")


def fps_label(inst: InstanceSummary) -> Text:
    """``25.0 fps``, ``measuring… fps`` or ``- fps`` for titles and tiles."""
    if inst.measuring:
        return span("measuring…", "dim italic")
    if inst.fps is None:
        return span("- fps", "dim")
    return span(f"{inst.fps:.1f} fps", "bold")


def breaker_text(inst: InstanceSummary, at: datetime | None = None) -> Text:
    """The circuit's state, and since when while it is not closed."""
    state = inst.breaker
    label = {"half_open": "half-open"}.get(state.value, state.value)
    text = span(label, BREAKER_STYLE.get(state, ""))
    if state is not BreakerState.CLOSED and inst.breaker_since is not None:
        text.append(
            f" {since(inst.breaker_since, at)}",
            style="red" if state is BreakerState.OPEN else "yellow",
        )
    return text


def pod_summary(inst: InstanceSummary, at: datetime | None = None) -> Text:
    """``Running ready ↻2 3h12m node-a`` (Kubernetes) or the source for static/local."""
    if inst.phase is None:
        if inst.lost_since is not None:
            text = span(f"{inst.source.value} · ", "dim")
            text.append(f"supervisor lost {since(inst.lost_since, at)} ago", style="bold red")
            return text
        return Text(f"{inst.source.value} · no pod", style="dim")
    ready = bool(inst.ready)
    text = span(inst.phase, phase_style(inst.phase, ready))
    text.append(f" {'ready' if ready else 'not-ready'}", style="" if ready else "yellow")
    if inst.restarts:
        text.append(f" ↻{inst.restarts}", style="yellow")
    text.append(f" {since(inst.started_at, at)}", style="dim")
    if inst.node:
        text.append(f" {inst.node}", style="dim")
    return text


def rung_text(inst: InstanceSummary, at: datetime | None = None) -> Text | None:
    """Where the automatic recovery has the instance: ``⟳ reset 40s ago, watching``, or
    ``⚑ needs a person`` as loud as the screen gets; None while it is not on the ladder."""
    rung = inst.remediation
    if rung is None:
        return None
    if rung.rung == "needs_person":
        return span(f"{NEEDS_PERSON_MARK} needs a person", "bold reverse red")
    return span(f"{RUNG_MARK} {rung.rung} {since(rung.since, at)} ago, watching", "bold yellow")


def reason_of(inst: InstanceSummary) -> str | None:
    """The one line that says why: the status reason, else the emulator's first reason,
    else the last error (the summary has it in that order)."""
    return inst.reason


STREAM_STYLE: dict[StreamMark, str] = {
    StreamMark.LIVE: "green",
    StreamMark.STILL: "yellow",
    StreamMark.WAITING: "dim",
    StreamMark.FAILING: "bold red",
}


def stream_badge(view: StreamView) -> Text:
    """``▶ 24 fps``, ``▶ still``, ``▶ waiting`` or ``▶ failing``: the tile's stream mark
    (the symbol says it is the stream, the word how it is, without colour too)."""
    if view.mark is StreamMark.LIVE and view.fps is not None:
        words = f"{view.fps:.0f} fps"
    else:
        words = view.mark.value
    return Text(f"▶ {words}", style=STREAM_STYLE[view.mark])

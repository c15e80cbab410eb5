"""The three header lines and the backend-gone banner.

Line 1: where (context, namespace), how many in each status and how many need a person
(the automatic recovery gave up on them), the view state (filter, sort, unhealthy-only,
selection) and the READ-ONLY marker. Line 2: the state of every connection (backend,
Kubernetes, Prometheus) with the retry countdown while reconnecting, the automatic
recovery's state (on, dry run, PAUSED until when and by whom, off) once it has been read,
and the age of the data. Line 3, the SLO strip: the share of instances healthy and at or
above the target frame rate against the objective, coloured by state (ok, burning,
breached), its burn over 1 h and 6 h from Prometheus when configured, and the pace of
repaints and pictures (``+``/``-``). All are drawn with
:class:`~locotui.ui.lines.LineCache`, so the once-a-second tick only repaints what moved
(the countdown, the age).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from backend.models import RemediationStatus
from locotui.data.fleet import FleetModel, Link, Origin, Source
from locotui.data.fleetstats import fleet_slo
from locotui.data.link import LinkState
from locotui.data.remediation import policy_state, policy_summary
from locotui.ui import fmt
from locotui.ui.fmt import span
from locotui.ui.lines import LineCache

__all__ = [
    "Banner",
    "FleetHeader",
    "HeaderInfo",
    "banner_text",
    "header_lines",
    "link_text",
    "recovery_text",
    "slo_text",
]


@dataclass(frozen=True)
class HeaderInfo:
    """What the header shows that is not in the fleet model."""

    context: str | None = None
    namespace: str | None = None
    namespace_source: str | None = None
    read_only: bool = False
    view: str = "tiles"
    backend_url: str | None = None
    alerts: list[str] = field(default_factory=list)
    """Lines from outside the fleet data that must stay visible (newest last)."""
    slo_target_fps: float = 10.0
    slo_objective: float = 0.95
    burn: tuple[tuple[str, float | None], ...] | None = None
    """The SLO's burn per window from Prometheus; None without Prometheus."""
    pace: str = ""
    """Repaints and pictures (``⟳10/s ▣1s``), changed with +/-."""


_LINK_LOOK: dict[LinkState, tuple[str, str, str]] = {
    LinkState.CONNECTED: ("●", "green", "live"),
    LinkState.CONNECTING: ("◌", "cyan", "connecting"),
    LinkState.RECONNECTING: ("↻", "bold yellow", "reconnecting"),
    LinkState.FAILED: ("✖", "bold red", "failed"),
    LinkState.IDLE: ("○", "dim", "off"),
    LinkState.STOPPED: ("■", "dim", "stopped"),
}


def link_text(label: str, link: Link, now: float, idle_label: str = "off") -> Text:
    symbol, style, word = _LINK_LOOK.get(link.state, ("?", "", link.state.value))
    if link.state is LinkState.IDLE:
        word = idle_label
    text = span(f"{label} ", "bold")
    text.append(f"{symbol} {word}", style=style)
    if link.state is LinkState.RECONNECTING:
        left = link.retry_in(now)
        if left is not None:
            text.append(f" in {left:.0f}s" if left >= 1 else " now", style=style)
    if (
        link.state in (LinkState.RECONNECTING, LinkState.FAILED, LinkState.CONNECTING)
        and link.error
    ):
        text.append(f" ({_short(link.error)})", style="yellow")
    elif link.state is LinkState.CONNECTED and link.malformed:
        text.append(f" ({link.malformed} malformed)", style="yellow")
    return text


# How each state of the automatic recovery looks: symbol and style. Paused stands out:
# it is the state someone must remember to end.
_POLICY_LOOK: dict[str, tuple[str, str]] = {
    "on": ("●", "green"),
    "dry_run": ("◐", "cyan"),
    "paused": ("‖", "bold yellow"),
    "off": ("○", "dim"),
    "unknown": ("?", "dim"),
}


def recovery_text(status: RemediationStatus | None) -> Text:
    """``auto-recovery ● on`` / ``◐ on (dry run)`` / ``‖ PAUSED until 14:05Z (by ...)`` /
    ``○ off``."""
    symbol, style = _POLICY_LOOK[policy_state(status)]
    text = span("auto-recovery ", "bold")
    text.append(f"{symbol} {policy_summary(status)}", style=style)
    return text


def _short(error: str, limit: int = 60) -> str:
    error = error.replace("\n", " ")
    return error if len(error) <= limit else error[: limit - 1] + "…"


_SLO_LOOK = {
    "ok": ("●", "green"),
    "burning": ("◐", "bold yellow"),
    "breached": ("✖", "bold white on red"),
    "unknown": ("?", "dim"),
}


def slo_text(model: FleetModel, info: HeaderInfo) -> Text:
    """`` SLO ● 9/9 100% ≥10fps (obj 95%) │ burn 1h 0.0x 6h 0.4x │ ⟳10/s ▣1s``."""
    slo = fleet_slo(model.entries.values(), info.slo_target_fps, info.slo_objective)
    burns = dict(info.burn or ())
    state = slo.state(burns.get("1h"))
    symbol, style = _SLO_LOOK[state]
    text = span(" SLO ", "bold")
    share = slo.share
    figure = f"{slo.good}/{slo.total} {share:.0%}" if share is not None else "-"
    text.append(f"{symbol} {figure}", style=style)
    text.append(f" ≥{info.slo_target_fps:g}fps (obj {info.slo_objective:.0%})", style="dim")
    if state == "breached":
        text.append(" BREACHED", style="bold red")
    text.append("  │ ", style="dim")
    text.append("burn ", style="bold")
    if info.burn is None:
        text.append("- (no prom)", style="dim")
    else:
        for label, value in info.burn:
            look = "dim" if value is None else "bold red" if value > 1 else "green"
            shown = "-" if value is None else f"{value:.1f}x"
            text.append(f"{label} ", style="dim")
            text.append(f"{shown} ", style=look)
    if info.pace:
        text.append(" │ ", style="dim")
        text.append(info.pace, style="")
    return text


def header_lines(model: FleetModel, info: HeaderInfo, now: float) -> list[Text]:
    """The three header lines (pure: tested without an app)."""
    first = span(" LOCO ", "bold reverse")
    first.append(" ")
    first.append("ctx ", style="dim")
    first.append(info.context or "-", style="bold")
    first.append("  ns ", style="dim")
    ns = info.namespace or (model.discovery.namespace if model.discovery else None)
    first.append(ns or "-", style="bold")
    first.append("  │ ", style="dim")
    counts = model.counts()
    for status in fmt.STATUS_ORDER:
        n = counts.get(status, 0)
        style = fmt.STATUS_STYLE[status] if n else "dim"
        first.append(f"{fmt.STATUS_SYMBOL[status]} {n} ", style=style)
    first.append(f"of {len(model)}", style="dim")
    # Right after the counts: on a narrow terminal the end of this line is cut off.
    gave_up = len(model.needing_a_person())
    if gave_up:
        first.append("  ")
        verb = "needs" if gave_up == 1 else "need"
        first.append(f" {fmt.NEEDS_PERSON_MARK} {gave_up} {verb} a person ", "bold reverse red")
    stale = sum(1 for e in model.entries.values() if e.summary.stale)
    if stale:
        first.append(f"  {fmt.STALE_MARK}{stale} stale", style="bold yellow")
    broken = sum(1 for e in model.entries.values() if e.error)
    if broken:
        first.append(f"  ⚠{broken} bad data", style="bold red")
    first.append("  │ ", style="dim")
    arrow = "▲" if model.sort_reverse else "▼"
    first.append(f"sort {model.sort_key.value}{arrow}", style="")
    if model.filter_text:
        first.append("  filter ", style="dim")
        first.append(model.filter_text, style="bold cyan")
    if model.unhealthy_only:
        first.append("  unhealthy only", style="bold magenta")
    if model.selection:
        first.append(f"  ✔{len(model.selection)} selected", style="bold")
    if info.read_only:
        first.append("  ")
        first.append(" READ-ONLY ", style="bold white on red")

    second = Text(" ")
    second.append_text(link_text("backend", model.links[Source.BACKEND], now))
    second.append("  │ ", style="dim")
    if model.remediation is not None:
        # Next to the backend: it is the backend's policy (and a narrow terminal cuts
        # the end of this line, where the optional sources are).
        second.append_text(recovery_text(model.remediation))
        second.append("  │ ", style="dim")
    second.append_text(link_text("kube", model.links[Source.KUBERNETES], now, "not used"))
    second.append("  │ ", style="dim")
    second.append_text(
        link_text("prom", model.links[Source.PROMETHEUS], now, "off (session history)")
    )
    second.append("  │ ", style="dim")
    age = model.data_age(now)
    second.append("data ", style="dim")
    if age is None:
        second.append("waiting…", style="italic cyan")
    else:
        style = "" if age < 5 or not model.live else "bold yellow"
        if not model.live:
            style = "bold yellow"
        second.append(f"{fmt.age(age)} old" if age >= 1 else "fresh", style=style)
    return [first, second, slo_text(model, info)]


def banner_text(model: FleetModel, info: HeaderInfo, now: float) -> Text | None:
    """The banner when the backend is not live or an alert came in, else None.

    Ordered by what the operator needs first: that the backend is gone, when the next
    attempt is, what the screen is showing meanwhile, and only then the error (the
    backend's URL is on the header's second line already). With the backend live, the
    newest alert (e.g. a demo process that died) is shown instead.
    """
    link = model.links[Source.BACKEND]
    backend_fine = link.state in (LinkState.CONNECTED, LinkState.IDLE) or (
        link.state is LinkState.CONNECTING and link.error is None  # nothing wrong yet
    )
    if backend_fine:
        if not info.alerts:
            return None
        text = span(" ⚠ ", "bold reverse red")
        text.append(f" {_short(info.alerts[-1], 150)}", style="bold")
        if len(info.alerts) > 1:
            text.append(f" (+{len(info.alerts) - 1} earlier)", style="dim")
        return text
    failed = link.state is LinkState.FAILED
    text = span(" ⚠ BACKEND REFUSED " if failed else " ⚠ BACKEND UNREACHABLE ", "bold reverse red")
    left = link.retry_in(now)
    if link.state is LinkState.RECONNECTING and left is not None:
        text.append(f" reconnecting in {left:.0f}s", style="bold yellow")
    elif link.state is LinkState.CONNECTING:
        text.append(" reconnecting now", style="bold yellow")
    elif failed:
        text.append(" not retrying (fix the credentials, then ctrl+l)", style="bold yellow")
    kube_only = sum(1 for e in model.entries.values() if e.origin is Origin.KUBERNETES)
    if kube_only:
        text.append(
            f" · showing {kube_only} pods from Kubernetes without emulator health", style="bold"
        )
    elif model.entries:
        text.append(" · showing last-known data", style="bold")
    else:
        text.append(" · nothing to show until it answers", style="dim")
    if link.error:
        error = link.error
        if info.backend_url:
            error = error.replace(f"backend {info.backend_url} ", "")
        text.append(f" · {_short(error, 90)}", style="")
    return text


def _mono(widget: Widget) -> float:
    """The app's monotonic clock (frozen in snapshot tests), else the real one."""
    clock = getattr(widget.app, "clock", None)
    return clock.monotonic() if clock is not None else time.monotonic()


class FleetHeader(Widget):
    """Three lines; :meth:`update` recomputes them, repainting only changed lines."""

    DEFAULT_CSS = """
    FleetHeader { height: 3; background: $panel; }
    """

    def __init__(self, model: FleetModel, info: HeaderInfo, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.info = info
        self._lines = LineCache()

    def update(self, now: float | None = None) -> None:
        if not self.is_mounted:
            return
        lines = header_lines(self.model, self.info, _mono(self) if now is None else now)
        self._lines.update(self, lines, self.size.width, self.rich_style)

    def on_resize(self) -> None:
        self._lines.clear()
        self.update()

    def on_mount(self) -> None:
        self.update()

    def render_line(self, y: int) -> Strip:
        strip = self._lines.get(y)
        if strip is None or strip.cell_length != self.size.width:
            return Strip.blank(self.size.width, self.rich_style)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
        if self.is_mounted:
            self.update()


class Banner(Widget):
    """One line, shown only while the backend is not live."""

    DEFAULT_CSS = """
    Banner { height: 1; background: $error 25%; display: none; }
    Banner.-shown { display: block; }
    """

    def __init__(self, model: FleetModel, info: HeaderInfo, id: str | None = None) -> None:
        super().__init__(id=id)
        self.model = model
        self.info = info
        self._lines = LineCache()
        self.text: Text | None = None

    def update(self, now: float | None = None) -> None:
        text = banner_text(self.model, self.info, _mono(self) if now is None else now)
        self.text = text
        self.set_class(text is not None, "-shown")
        if text is not None and self.is_mounted:
            self._lines.update(self, [text], self.size.width, self.rich_style)

    def on_resize(self) -> None:
        self._lines.clear()
        self.update()

    def render_line(self, y: int) -> Strip:
        strip = self._lines.get(y)
        if strip is None or strip.cell_length != self.size.width:
            return Strip.blank(self.size.width, self.rich_style)
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
        if self.is_mounted and self.text is not None:
            self._lines.update(self, [self.text], self.size.width, self.rich_style)

"""Enter: everything about one instance.

A bigger picture refreshed twice a second; the full emulator health (every field of
``EmulatorStatus``: QEMU, video, disk, reasons, errors); the instance as the backend sees
it (status reason, staleness, probe times); its incident timeline (status changes, the
automatic recovery's decisions and people's actions, oldest first, from the backend); the
circuit breaker and its history; the pod (phase, conditions) with its recent Kubernetes
events; fps and status history (Prometheus when configured, else this session's own).

The timeline is fetched when the screen opens and again when something it would show has
happened: the instance's status or rung changed, the automatic recovery decided about it,
this console acted (the audit log moved); at most once a second however much happens, and
every 15 s anyway (other consoles' actions arrive that way).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from backend.models import (
    BreakerInfo,
    BreakerState,
    Instance,
    InstanceStatus,
    InstanceSummary,
    TimelineEntry,
)
from locotui.data.actions import AuditLog
from locotui.data.errors import DataError
from locotui.data.fleet import (
    Entry,
    FleetModel,
    Origin,
    qemu_started_at,
    supervisor_started_at,
)
from locotui.data.history import HistoryProvider
from locotui.data.stream import stream_view
from locotui.ui import fmt
from locotui.ui.clock import Clock
from locotui.ui.fmt import span
from locotui.ui.picture import Picture
from locotui.ui.thumbs import ThumbnailCache

if TYPE_CHECKING:
    # Imported when needed only: the Kubernetes client takes most of a second to import.
    from locotui.data.kube_client import KubeClient

__all__ = [
    "DetailScreen",
    "breaker_section",
    "emulator_section",
    "instance_section",
    "pod_section",
    "stream_section",
    "timeline_section",
    "title_line",
]

SECTIONS = ("status", "timeline", "emulator", "stream", "breaker", "pod", "events", "history")
TIMELINE_SHOWN = 50
"""Newest timeline entries shown (the backend keeps a few hundred per instance)."""
TIMELINE_EVERY = 15.0
"""Seconds after which the timeline is fetched again even if nothing here changed."""
TIMELINE_GAP = 1.0
FULL_GAP = 1.0
"""Seconds at least between two fetches of the instance's full form (the stream says
when it changed; a busy instance changes more often than anyone reads)."""
_LOADING = Text("⋯ loading", style="italic cyan")
"""Seconds between two fetches at the least (a burst of changes is one fetch)."""


def _kv(title: str) -> Table:
    t = Table(
        box=None,
        show_header=False,
        expand=True,
        title=title,
        title_justify="left",
        title_style="bold underline",
        padding=(0, 1),
    )
    t.add_column("key", style="dim", no_wrap=True, min_width=16)
    t.add_column("value")
    return t


def _val(value: Any, style: str = "") -> Text:
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no", style=style or ("green" if value else "yellow"))
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
        return Text(f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z", style=style)
    if isinstance(value, float):
        return Text(f"{value:.2f}", style=style)
    return Text(str(value), style=style)


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def title_line(entry: Entry, at: datetime) -> Text:
    inst = entry.summary
    text = span(f" {entry.name} ", "bold reverse")
    text.append("  ")
    text.append_text(fmt.status_text(inst))
    text.append("   ")
    text.append_text(fmt.fps_label(inst))
    text.append(f"   source {inst.source.value}", style="dim")
    rung = fmt.rung_text(inst, at)
    if rung is not None:
        text.append("   ")
        text.append_text(rung)
    if entry.origin is Origin.KUBERNETES:
        text.append("   pod-only view (backend unreachable)", style="bold yellow")
    if entry.error:
        text.append(f"   ⚠ {entry.error}", style="bold red")
    return text


def instance_section(entry: Entry, at: datetime) -> RenderableType:
    inst = entry.full
    if inst is None:
        return Group(Text("Status", style="bold underline"), _LOADING)
    t = _kv("Status")
    t.add_row("status", fmt.status_text(inst.summary()))
    t.add_row("reason", _val(inst.status_reason, "yellow" if inst.status_reason else ""))
    t.add_row("last error", _val(inst.last_error, "red" if inst.last_error else ""))
    if entry.error:
        t.add_row("data error", Text(entry.error, style="bold red"))
    stale = span("yes", "bold yellow") if inst.stale else span("no", "green")
    if inst.stale:
        stale.append(f" since {fmt.since(inst.stale_since, at)}: {inst.stale_reason or '?'}")
    t.add_row("stale", stale)
    t.add_row(
        "last probe",
        Text(f"{fmt.since(inst.last_probe_at, at)} ago" if inst.last_probe_at else "never"),
    )
    t.add_row(
        "last ok probe",
        Text(f"{fmt.since(inst.last_ok_at, at)} ago" if inst.last_ok_at else "never"),
    )
    t.add_row("health url", _val(inst.health_url))
    t.add_row("vnc", _val(inst.vnc))
    t.add_row("logs", _val(inst.logs_available))
    return t


_KIND_STYLE = {"remediation": "bold yellow", "action": "bold cyan", "status": ""}
# The console calls the policy auto-recovery; "auto" keeps the column narrow.
_KIND = {"remediation": "auto"}
_BY = {"remediation": "auto-recovery"}


def _timeline_style(entry: TimelineEntry) -> str:
    if entry.kind == "status":
        try:
            return fmt.STATUS_STYLE[InstanceStatus(entry.text.partition(":")[0])]
        except ValueError:
            return ""
    if entry.kind == "remediation" and entry.text.startswith("give_up"):
        return "bold red"
    return _KIND_STYLE.get(entry.kind, "")


def timeline_section(
    inst: InstanceSummary | None,
    entries: list[TimelineEntry] | None,
    error: str | None,
    at: datetime,
) -> RenderableType:
    """The instance's incident timeline, oldest first, under where it stands now."""
    parts: list[RenderableType] = [Text("Incident timeline", style="bold underline")]
    rung = inst.remediation if inst is not None else None
    now = fmt.rung_text(inst, at) if inst is not None else None
    if rung is not None and now is not None:
        plural = "s" if rung.actions_last_hour != 1 else ""
        now.append(f"  {rung.actions_last_hour} action{plural} in the last hour", style="dim")
        if rung.reason:
            now.append(f"  {rung.reason}", style="yellow")
        parts.append(now)
    if error:
        parts.append(Text(error, style="bold red"))
    elif entries is None:
        parts.append(Text("⋯ loading", style="italic cyan"))
    elif not entries:
        parts.append(Text("nothing recorded yet", style="dim"))
    else:
        shown = entries[-TIMELINE_SHOWN:]
        if len(entries) > len(shown):
            parts.append(Text(f"({len(entries) - len(shown)} earlier not shown)", style="dim"))
        t = Table(box=None, show_header=True, header_style="dim", expand=True, padding=(0, 1))
        t.add_column("time (UTC)", no_wrap=True)
        t.add_column("kind", no_wrap=True)
        t.add_column("what", ratio=1)
        t.add_column("by", no_wrap=True, style="dim")
        day = None
        for e in shown:
            when = e.at.astimezone(UTC)
            # The date only where it changes: most incidents fit in one day.
            stamp = f"{when:%H:%M:%S}" if when.date() == day else f"{when:%m-%d %H:%M:%S}"
            day = when.date()
            style = _timeline_style(e)
            t.add_row(
                Text(stamp, style="dim"),
                Text(_KIND.get(e.kind, e.kind), style=_KIND_STYLE.get(e.kind, "")),
                Text(e.text, style=style),
                _BY.get(e.by or "", e.by or ""),
            )
        parts.append(t)
    return Group(*parts)


def emulator_section(inst: Instance | None, at: datetime) -> RenderableType:
    if inst is None:
        return Group(Text("Emulator", style="bold underline"), _LOADING)
    h = inst.health
    if h is None:
        msg = (
            "no emulator health: the backend is unreachable"
            if inst.stale and inst.pod is not None and inst.health_url is None
            else "no health received yet"
        )
        return Group(Text("Emulator", style="bold underline"), Text(msg, style="italic yellow"))
    t = _kv("Emulator")
    t.add_row(
        "overall_status",
        _val(
            h.overall_status.value, fmt.STATUS_STYLE.get(InstanceStatus(h.overall_status.value), "")
        ),
    )
    t.add_row("qemu_healthy", _val(h.qemu_healthy))
    t.add_row("reasons", Text("; ".join(h.reasons) or "-", style="yellow" if h.reasons else "dim"))
    t.add_row("timestamp", _val(h.timestamp))
    t.add_row("supervisor up", Text(fmt.since(supervisor_started_at(h), at)))
    q = h.qemu
    t.add_row("qemu.pid", _val(q.pid))
    t.add_row("qemu.running", _val(q.running))
    t.add_row("qemu.qmp_status", _val(q.qmp_status, "" if q.qmp_status == "running" else "yellow"))
    t.add_row(
        "qemu.qmp_latency",
        Text(f"{q.qmp_latency_ms:.1f} ms" if q.qmp_latency_ms is not None else "-"),
    )
    t.add_row("qemu.uptime", Text(fmt.since(qemu_started_at(h), at)))
    t.add_row("qemu.restarts", _val(q.restarts, "yellow" if q.restarts else ""))
    t.add_row("qemu.last_exit", _val(q.last_exit))
    t.add_row("qemu.booted", _val(q.booted))
    t.add_row("qemu.crash_loop", _val(q.crash_loop, "bold red" if q.crash_loop else "green"))
    if q.disk_error:
        t.add_row("qemu.disk_error", _val(q.disk_error, "bold red"))
    if q.hangs or q.resumes:
        t.add_row("qemu.hangs / resumes", Text(f"{q.hangs} killed hung / {q.resumes} resumed"))
    t.add_row("qemu.accel / profile", Text(f"{q.accel} / {q.profile}"))
    v = h.video
    t.add_row("video.display_active", _val(v.display_active))
    t.add_row(
        "video.frame_rate",
        Text(f"{v.estimated_frame_rate:.1f} fps")
        if v.estimated_frame_rate is not None
        else Text("measuring… (the current QEMU has not been sampled yet)", style="dim italic"),
    )
    t.add_row("video.resolution", Text(f"{v.width}x{v.height}" if v.width and v.height else "-"))
    t.add_row(
        "video.last_frame_age",
        Text(f"{v.last_frame_age_seconds:.1f} s" if v.last_frame_age_seconds is not None else "-"),
    )
    t.add_row("video.frames_total", _val(v.frames_total))
    t.add_row("video.blank", _val(v.blank, "yellow" if v.blank else "green"))
    t.add_row(
        "video.vnc",
        Text(
            ("connected" if v.vnc_connected else "disconnected")
            + (f", {v.vnc_reconnects} reconnects" if v.vnc_reconnects else ""),
            style="" if v.vnc_connected else "yellow",
        ),
    )
    if h.disk is not None:
        d = h.disk
        t.add_row(
            "disk.image",
            Text(
                f"{d.image} ({d.format}, {_bytes(d.virtual_size)} virtual, "
                f"{_bytes(d.actual_size)} on disk)"
            ),
        )
        t.add_row("disk.overlay", Text(f"{d.overlay} ({_bytes(d.overlay_size)})"))
        if d.free_bytes is not None:
            low = d.free_bytes < 64 * 1024 * 1024
            t.add_row("disk.free", _val(_bytes(d.free_bytes), "bold yellow" if low else ""))
        if d.base_changed:
            t.add_row("disk.base_changed", _val(d.base_changed, "bold red"))
    else:
        t.add_row("disk", _val(None))
    errors = Text()
    for err in h.errors[-10:]:
        errors.append(f"• {err}\n", style="red")
    t.add_row("errors", errors if h.errors else Text("none", style="dim"))
    return t


def stream_section(inst: Instance | None, watch: str | None) -> RenderableType:
    """The live video stream: how it runs, what it sends, and where to watch it.
    ``watch`` is the backend's watch page (None without a backend); ``inst`` is the full
    instance (None: not fetched yet)."""
    facts = inst.health.stream if inst is not None and inst.health is not None else None
    if inst is None or facts is None:
        note = (
            "no health received yet"
            if inst is None or inst.health is None
            else "off (the emulator streams with --stream / LOCO_STREAM=1; Helm: "
            "emulator.stream.enabled)"
        )
        return Group(Text("Stream", style="bold underline"), Text(note, style="dim italic"))
    f = facts
    t = _kv("Stream")
    badge = fmt.stream_badge(stream_view(f))
    state = Text(f"{f.state.value} ", style=badge.style)
    state.append(f"(GStreamer {f.pipeline_state})", style="dim")
    t.add_row("state", state)
    t.add_row(
        "watch",
        Text(watch, style="underline")
        if watch
        else Text("no backend: the watch page is the backend's /watch/<name>", style="dim"),
    )
    t.add_row("codec / size", Text(f"{f.codec}, {f.width}x{f.height}, at most {f.max_fps} fps"))
    t.add_row(
        "frame rate",
        Text(f"{f.frames_per_second:.1f} fps sent")
        if f.frames_per_second is not None
        else Text("measuring…", style="dim italic"),
    )
    t.add_row(
        "bitrate",
        Text(f"{f.bitrate_kbps:.0f} kbit/s" if f.bitrate_kbps is not None else "-"),
    )
    t.add_row("frames sent", _val(f.frames_out))
    dropped = sum(f.dropped.values())
    t.add_row(
        "dropped",
        Text(
            ", ".join(f"{queue} {n}" for queue, n in f.dropped.items() if n) or "none",
            style="yellow" if dropped else "dim",
        ),
    )
    t.add_row("capped", Text(f"{f.capped} frames above the cap", style="dim"))
    t.add_row("restarts", _val(f.restarts, "yellow" if f.restarts else ""))
    t.add_row("last_error", _val(f.last_error, "red" if f.last_error else ""))
    t.add_row("RTP to", Text(f.destination))
    t.add_row("viewers", _val(f.viewers))
    return t


def _breaker_state(b: BreakerInfo, at: datetime) -> Text:
    """The state with the countdown to the next trial and the failures counted."""
    label = {"half_open": "half-open"}.get(b.state.value, b.state.value)
    text = span(label, fmt.BREAKER_STYLE.get(b.state, ""))
    if b.state is BreakerState.OPEN:
        if b.retry_at is not None:
            when = b.retry_at if b.retry_at.tzinfo else b.retry_at.replace(tzinfo=UTC)
            left = (when - at).total_seconds()
            text.append(f" retry {fmt.age(left)}" if left > 0 else " retrying", style="red")
        if b.failures:
            text.append(f" ({b.failures} fails)", style="red")
    elif b.failures:
        text.append(f" {b.failures} fail{'s' if b.failures != 1 else ''}", style="yellow")
    return text


def breaker_section(
    inst: Instance | None, history: list[tuple[datetime, str, int]], at: datetime
) -> RenderableType:
    if inst is None:
        return Group(Text("Circuit breaker", style="bold underline"), _LOADING)
    b = inst.breaker
    t = _kv("Circuit breaker")
    t.add_row("state", _breaker_state(b, at))
    t.add_row("failures", _val(b.failures))
    t.add_row("since", Text(f"{fmt.since(b.since, at)} ago" if b.since else "-"))
    t.add_row("retry at", _val(b.retry_at))
    if history:
        lines = Text()
        for when, state, failures in history[-8:]:
            lines.append(f"{when.astimezone(UTC):%H:%M:%S}Z ", style="dim")
            lines.append(state, style=fmt.BREAKER_STYLE.get(BreakerState(state), ""))
            lines.append(f" ({failures} failures)\n" if failures else "\n", style="dim")
        t.add_row("history", lines)
    else:
        t.add_row("history", Text("no changes seen in this session", style="dim"))
    return t


def pod_section(inst: Instance | None, at: datetime) -> RenderableType:
    if inst is None:
        return Group(Text("Pod", style="bold underline"), _LOADING)
    pod = inst.pod
    if pod is None:
        return Group(
            Text("Pod", style="bold underline"),
            Text(f"{inst.source.value} instance: no pod", style="dim"),
        )
    t = _kv("Pod")
    t.add_row("phase", fmt.pod_summary(inst.summary(), at))
    t.add_row("ready", _val(pod.ready))
    t.add_row("restarts", _val(pod.restarts, "yellow" if pod.restarts else ""))
    t.add_row("waiting reason", _val(pod.waiting_reason, "bold red" if pod.waiting_reason else ""))
    if pod.last_restart_reason:
        when = f", {fmt.since(pod.last_restart_at, at)} ago" if pod.last_restart_at else ""
        t.add_row("last restart", Text(f"{pod.last_restart_reason}{when}", style="yellow"))
    t.add_row("terminating", _val(pod.deleting, "bold red" if pod.deleting else "green"))
    t.add_row("node / ip", Text(f"{pod.node or '-'} / {pod.ip or '-'}"))
    t.add_row("started", Text(f"{fmt.since(pod.start_time, at)} ago" if pod.start_time else "-"))
    t.add_row("uid", _val(pod.uid, "dim"))
    conds = Table(box=None, show_header=True, header_style="dim", padding=(0, 1))
    for col in ("condition", "status", "reason", "since"):
        conds.add_column(col, no_wrap=col != "reason")
    for c in pod.conditions:
        conds.add_row(
            c.type,
            Text(c.status, style="green" if c.status == "True" else "yellow"),
            (c.reason or "") + (f": {c.message}" if c.message else ""),
            fmt.since(c.last_transition_time, at),
        )
    t.add_row("conditions", conds if pod.conditions else Text("-", style="dim"))
    return t


def events_section(events: list[Any] | None, error: str | None, at: datetime) -> RenderableType:
    title = Text("Kubernetes events", style="bold underline")
    if error:
        return Group(title, Text(error, style="bold red"))
    if events is None:
        return Group(title, Text("⋯ loading", style="italic cyan"))
    if not events:
        return Group(title, Text("no recent events", style="dim"))
    t = Table(box=None, show_header=True, header_style="dim", expand=True, padding=(0, 1))
    for col in ("age", "type", "reason", "count", "message"):
        t.add_column(col, no_wrap=col != "message")
    for ev in events[-15:]:
        t.add_row(
            fmt.since(ev.last_seen, at),
            Text(ev.type, style="yellow" if ev.type == "Warning" else ""),
            ev.reason,
            str(ev.count),
            ev.message,
        )
    return Group(title, t)


class _Sparkline:
    """A sparkline as wide as the space it is given, sized when it is rendered (so it
    does not depend on whether the layout had settled when the data arrived)."""

    def __init__(self, label: str, values: list[float], suffix: str) -> None:
        self.label, self.values, self.suffix = label, values, suffix

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = max(10, options.max_width - len(self.label) - len(self.suffix))
        line = span(self.label, "dim")
        line.append(fmt.sparkline(self.values, room), style="cyan")
        line.append(self.suffix, style="dim")
        line.no_wrap = True
        line.overflow = "ellipsis"
        yield line


def history_section(
    fps: list[tuple[float, float]] | None,
    status: list[tuple[float, InstanceStatus]] | None,
    provider: str,
    error: str | None,
) -> RenderableType:
    title = Text(f"History ({provider})", style="bold underline")
    if error:
        return Group(title, Text(error, style="bold red"))
    if fps is None and status is None:
        return Group(title, Text("⋯ loading", style="italic cyan"))
    parts: list[RenderableType] = [title]
    values = [v for _, v in fps or []]
    if values:
        parts.append(
            _Sparkline(
                "fps  ",
                values,
                f"  min {min(values):.1f} max {max(values):.1f} last {values[-1]:.1f}",
            )
        )
    else:
        parts.append(Text("fps  no samples yet", style="dim"))
    if status:
        line = span("status ", "dim")
        for when, st in status[-12:]:
            line.append(f"{datetime.fromtimestamp(when, UTC):%H:%M:%S} ", style="dim")
            line.append(f"{fmt.STATUS_SYMBOL[st]} {st.value}  ", style=fmt.STATUS_STYLE[st])
        parts.append(line)
    return Group(*parts)


class DetailScreen(Screen[None]):
    DEFAULT_CSS = """
    DetailScreen #detail-title { height: 1; background: $panel; }
    DetailScreen #detail-body { height: 1fr; }
    DetailScreen #detail-left { width: 1fr; height: 1fr; }
    DetailScreen #detail-picture { height: 1fr; min-height: 8; border: round $panel-lighten-2; }
    DetailScreen #history { height: auto; max-height: 8; padding: 0 1; }
    DetailScreen #detail-right { width: 1fr; height: 1fr; }
    DetailScreen #detail-right > Static { margin-bottom: 1; padding: 0 1; }
    DetailScreen.-narrow #detail-body { layout: vertical; }
    DetailScreen.-narrow #detail-left { height: 12; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
    ]

    def __init__(
        self,
        name: str,
        *,
        model: FleetModel,
        clock: Clock,
        history: HistoryProvider,
        kube: KubeClient | None,
        thumbs: ThumbnailCache | None,
        section: str | None = None,
        timeline: Callable[[str], Awaitable[list[TimelineEntry]]] | None = None,
        fetch: Callable[[str], Awaitable[Instance]] | None = None,
        audit: AuditLog | None = None,
        watch_url: Callable[[str], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.instance_name = name
        self.watch_url = watch_url
        self.fetch = fetch
        self._full_at = float("-inf")
        self._full_loading = False
        self._full_error: str | None = None
        self.timeline = timeline
        self.audit = audit
        self._timeline: list[TimelineEntry] | None = None
        self._timeline_error: str | None = (
            None if timeline is not None else "no backend: the timeline is kept there"
        )
        self._timeline_for: tuple[object, ...] | None = None
        self._timeline_at = float("-inf")
        self._timeline_loading = False
        self.model = model
        self.clock = clock
        self.history = history
        self.kube = kube
        self.thumbs = thumbs
        self.section = section
        self._events: list[Any] | None = None
        self._events_error: str | None = None
        self._fps: list[tuple[float, float]] | None = None
        self._status: list[tuple[float, InstanceStatus]] | None = None
        self._history_error: str | None = None
        self._events_at = float("-inf")
        self._history_at = float("-inf")

    def action_targets(self) -> list[str]:
        return [self.instance_name]

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-title")
        with Horizontal(id="detail-body"):
            with Vertical(id="detail-left"):
                picture = Picture(
                    self.instance_name, self.thumbs, interval=0.5, id="detail-picture"
                )
                picture.border_title = "live picture"
                yield picture
                yield Static("", id="history")
            with VerticalScroll(id="detail-right"):
                for section in SECTIONS:
                    if section != "history":
                        yield Static("", id=f"section-{section}")
        yield Footer()

    def on_mount(self) -> None:
        self._narrow(self.app.size.width)
        self.fleet_changed()
        self._load_events()
        self._load_history()
        if self.section:
            self.call_after_refresh(self.scroll_to_section, self.section)

    def on_resize(self) -> None:
        self._narrow(self.size.width)

    def _narrow(self, width: int) -> None:
        self.set_class(width < 120, "-narrow")

    def scroll_to_section(self, section: str) -> None:
        target = self.query_one("#history" if section == "history" else f"#section-{section}")
        # At the top of the view: a section grows below its title (the timeline does once
        # it is fetched), and a small terminal would otherwise show only its first lines.
        target.scroll_visible(animate=False, top=True)
        if section == "history":
            self._load_history()

    def fleet_changed(self) -> None:
        entry = self.model.get(self.instance_name)
        at = self.clock.now()
        if entry is None:
            self.query_one("#detail-title", Static).update(
                Text(
                    f" {self.instance_name} is gone from the fleet (removed or filtered by "
                    "discovery)",
                    style="bold red",
                )
            )
            return
        self._maybe_load_full(entry)
        title = title_line(entry, at)
        if self._full_error:
            title.append(f"   ⚠ {self._full_error}", style="bold red")
        self.query_one("#detail-title", Static).update(title)
        self.query_one("#section-status", Static).update(instance_section(entry, at))
        self._show_timeline(at)
        self._maybe_load_timeline()
        full = entry.full
        self.query_one("#section-emulator", Static).update(emulator_section(full, at))
        watch = self.watch_url(self.instance_name) if self.watch_url is not None else None
        self.query_one("#section-stream", Static).update(stream_section(full, watch))
        hist = list(entry.breaker_history)
        self.query_one("#section-breaker", Static).update(breaker_section(full, hist, at))
        self.query_one("#section-pod", Static).update(pod_section(full, at))
        self.query_one("#section-events", Static).update(
            events_section(self._events, self._events_error, at)
        )
        self._show_history()

    def tick(self, at: datetime) -> None:
        self.fleet_changed()
        now = self.clock.monotonic()
        # Events and history are fetched, not pushed: refresh them every so often.
        if now - self._events_at >= 10:
            self._load_events()
        if now - self._history_at >= 15:
            self._load_history()

    # ------------------------------------------------------------------ full form
    def _maybe_load_full(self, entry: Entry) -> None:
        """The list has the instance's summary; what this screen shows beyond it (the
        health body, the breaker's counts, the pod's conditions) is fetched, again each
        time the summary changes."""
        if entry.full_current or self.fetch is None or entry.origin is not Origin.BACKEND:
            return
        if self._full_loading or self.clock.monotonic() - self._full_at < FULL_GAP:
            return  # the next fleet change or tick looks again
        self._load_full(entry.summary)

    @work(group="detail-full", exit_on_error=False)
    async def _load_full(self, taken_for: InstanceSummary) -> None:
        assert self.fetch is not None
        self._full_loading = True
        self._full_at = self.clock.monotonic()
        try:
            inst = await self.fetch(self.instance_name)
            self._full_error = None
        except DataError as exc:
            self._full_error = str(exc)
            return
        finally:
            self._full_loading = False
        self.model.set_full(inst, taken_for)

    # ------------------------------------------------------------------ timeline
    def _timeline_wanted(self) -> tuple[object, ...]:
        """What the timeline shown should be up to date with; a fetch is due when it
        moves (a status change, a rung, a decision about this instance, an action)."""
        entry = self.model.get(self.instance_name)
        inst = entry.summary if entry is not None else None
        last = next(
            (d.seq for d in reversed(self.model.decisions) if d.instance == self.instance_name),
            None,
        )
        return (
            inst.status if inst is not None else None,
            inst.remediation if inst is not None else None,
            last,
            self.audit.version if self.audit is not None else 0,
        )

    def _maybe_load_timeline(self) -> None:
        if self.timeline is None or self._timeline_loading:
            return
        now = self.clock.monotonic()
        if now - self._timeline_at < TIMELINE_GAP:
            return  # the next fleet change or tick looks again
        wanted = self._timeline_wanted()
        if wanted != self._timeline_for or now - self._timeline_at >= TIMELINE_EVERY:
            self._load_timeline(wanted)

    def _show_timeline(self, at: datetime) -> None:
        entry = self.model.get(self.instance_name)
        self.query_one("#section-timeline", Static).update(
            timeline_section(
                entry.summary if entry is not None else None,
                self._timeline,
                self._timeline_error,
                at,
            )
        )

    @work(group="detail-timeline", exit_on_error=False)
    async def _load_timeline(self, wanted: tuple[object, ...]) -> None:
        assert self.timeline is not None
        self._timeline_loading = True
        self._timeline_at = self.clock.monotonic()
        self._timeline_for = wanted
        try:
            self._timeline = await self.timeline(self.instance_name)
            self._timeline_error = None
        except DataError as exc:
            self._timeline_error = str(exc)
        finally:
            self._timeline_loading = False
        if self.is_mounted:
            self._show_timeline(self.clock.now())

    def _show_history(self) -> None:
        self.query_one("#history", Static).update(
            history_section(self._fps, self._status, self.history.name, self._history_error)
        )

    @work(exclusive=True, group="detail-events", exit_on_error=False)
    async def _load_events(self) -> None:
        kube = self.kube
        entry = self.model.get(self.instance_name)
        if entry is not None and entry.summary.phase is None:
            self._events, self._events_error = [], None  # not a pod: nothing to ask
        elif kube is None:
            self._events = None
            self._events_error = "Kubernetes not configured: events unavailable"
        else:
            try:
                self._events = await kube.pod_events(self.instance_name)
                self._events_error = None
            except DataError as exc:
                self._events_error = str(exc)
        self._events_at = self.clock.monotonic()
        self.fleet_changed()

    @work(exclusive=True, group="detail-history", exit_on_error=False)
    async def _load_history(self) -> None:
        history = self.history
        self._history_at = self.clock.monotonic()
        try:
            fps = await history.fps([self.instance_name], window=3600, step=15)
            status = await history.status([self.instance_name], window=3600, step=15)
            self._fps = fps.get(self.instance_name, [])
            self._status = status.get(self.instance_name, [])
            self._history_error = None
        except DataError as exc:
            self._history_error = str(exc)
        self._show_history()

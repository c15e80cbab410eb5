"""One emulator as a tile: status, fps sparkline, pod facts, breaker, reason, thumbnail.

A tile is a single widget drawn line by line (``render_line``) rather than a tree of
``Static`` widgets: nine tiles repainting every second would otherwise re-layout the
screen nine times a second. The text lines are cached by content (see
:mod:`locotui.ui.lines`) and the thumbnail rows are ready-made strips from
:mod:`locotui.ui.halfblock`, so a repaint is mostly copying.

Tiles do not own instances: the grid keeps a pool of tiles and hands tile *i* the *i*-th
entry of the current view, so sorting or filtering never moves widgets around.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from backend.models import InstanceStatus
from locotui.data.fleet import Entry, Origin
from locotui.data.stream import stream_of
from locotui.ui import fmt
from locotui.ui.fmt import span
from locotui.ui.halfblock import placeholder_strips
from locotui.ui.lines import LineCache

__all__ = ["INFO_LINES", "Thumb", "Tile", "tile_lines"]

INFO_LINES = 4
"""Text lines above the thumbnail."""

SPARK_WIDTH = 12


@dataclass(frozen=True)
class Thumb:
    """What the thumbnail area shows: a picture, or a message (loading, error, off)."""

    strips: tuple[Strip, ...] = ()
    message: str | None = None
    error: bool = False


THUMB_LOADING = Thumb(message="⋯ loading frame")


def tile_lines(entry: Entry, at: datetime) -> list[Text]:
    """The tile's text lines for ``entry`` (pure: tested without an app)."""
    inst = entry.summary
    lines: list[Text] = []

    # 1: status with symbol, fps and its sparkline.
    first = fmt.status_text(inst)
    fps = fmt.fps_label(inst)
    fps.append(" ")
    spark = Text(fmt.sparkline(entry.fps_values(SPARK_WIDTH), SPARK_WIDTH), style="cyan")
    first.append("  ")
    right = Text.assemble(fps, spark)
    lines.append(_justify(first, right))

    # 2: what Kubernetes says about the pod (or where a static/local instance runs).
    lines.append(fmt.pod_summary(inst, at))

    # 3: breaker and the emulator's own view of QEMU, or why there is none yet.
    third = span("breaker ", "dim")
    third.append_text(fmt.breaker_text(inst, at))
    if entry.origin is Origin.KUBERNETES:
        third.append(" · no emulator health (backend down)", style="yellow")
    elif inst.qemu is None:
        if inst.stale:
            third.append(" · no health body", style="yellow")
        else:
            third.append(" · … waiting for first health probe", style="italic cyan")
    else:
        style = "" if inst.qemu == "running" else "bold red"
        third.append(" · qemu ", style="dim")
        third.append(inst.qemu, style=style)
        if inst.phase is None and inst.started_at is not None:
            # Without a pod the start is the current QEMU's (a pod's age is on line 2).
            third.append(f" up {fmt.since(inst.started_at, at)}", style="dim")
        if inst.crash_loop:
            third.append(" CRASH-LOOP", style="bold red")
        elif inst.restarts and inst.phase is None:
            third.append(f" ↻{inst.restarts}", style="yellow")
        stream = stream_of(inst)
        if stream is not None:
            third.append(" · ", style="dim")
            third.append_text(fmt.stream_badge(stream))
    lines.append(third)

    # 4: why. Malformed data beats everything: the operator must know the tile is wrong.
    # Then the automatic recovery's rung, first, since it says who is on it (the policy,
    # or nobody: "needs a person"); the reason follows as far as the width allows.
    if entry.error:
        lines.append(Text(f"⚠ {entry.error}", style="bold red"))
        return lines
    reason = fmt.reason_of(inst)
    if reason:
        bad = inst.status in (InstanceStatus.UNHEALTHY, InstanceStatus.DEGRADED)
        why = Text(reason, style="red" if bad else "yellow")
    else:
        why = Text("no problems reported", style="dim")
    rung = fmt.rung_text(inst, at)
    if rung is not None:
        if reason:
            rung.append(" · ", style="dim")
            rung.append_text(why)
        why = rung
    lines.append(why)
    return lines


def _justify(left: Text, right: Text, width: int = 0) -> Text:
    """``left`` and ``right`` on one line; the right part is placed at render time."""
    out = left.copy()
    out.append("\t")
    out.append_text(right)
    return out


def _place_right(text: Text, width: int) -> Text:
    """Expands the tab of a :func:`_justify` line so the right part ends at ``width``."""
    plain = text.plain
    tab = plain.find("\t")
    if tab < 0:
        return text
    left, right = text[:tab], text[tab + 1 :]
    gap = width - left.cell_len - right.cell_len
    if gap < 1:
        # Not enough room: the right part (fps) matters more than a long status word.
        keep = max(0, width - right.cell_len - 1)
        left.truncate(keep, overflow="ellipsis")
        gap = max(1, width - left.cell_len - right.cell_len)
    return Text.assemble(left, " " * gap, right)


class Tile(Widget):
    """See the module docstring. ``index`` is the tile's place in the grid."""

    DEFAULT_CSS = """
    Tile {
        height: 1fr;
        border: round $panel-lighten-2;
        border-title-align: left;
        border-subtitle-align: right;
        padding: 0;
    }
    Tile.-healthy { border: round $success-darken-1; }
    Tile.-degraded { border: round $warning; }
    Tile.-unhealthy { border: round $error; }
    Tile.-starting { border: round $primary-lighten-1; }
    Tile.-unknown { border: round $secondary; }
    Tile.-cursor { background: $boost; border-title-style: bold reverse; }
    Tile.-cursor.-healthy { border: heavy $success; }
    Tile.-cursor.-degraded { border: heavy $warning; }
    Tile.-cursor.-unhealthy { border: heavy $error; }
    Tile.-cursor.-starting { border: heavy $primary-lighten-1; }
    Tile.-cursor.-unknown { border: heavy $secondary; }
    Tile.-needs-person { border: round $error; background: $error 15%; }
    Tile.-cursor.-needs-person { border: heavy $error; }
    Tile.-selected { background: $primary 20%; }
    Tile.-cursor.-selected { background: $primary 30%; }
    Tile.-error { border: double $error; }
    """

    class Clicked(Message):
        def __init__(self, tile: Tile, double: bool) -> None:
            super().__init__()
            self.tile = tile
            self.double = double

    def __init__(self, index: int) -> None:
        super().__init__(classes="tile")
        self.index = index
        self.entry: Entry | None = None
        self.thumb_rows = 0
        self._thumb = Thumb()
        self._thumb_strips: list[Strip] = []
        self._lines = LineCache()
        self._status_class = ""
        self._title_key: tuple[object, ...] = ()
        self._content_key: tuple[object, ...] = ()
        self._selected = False
        self._thumb_built_for: tuple[object, ...] = ()
        self._style_gen = 0
        self.thumb_lookup: Callable[[str], Thumb | None] | None = None

    @property
    def name_shown(self) -> str | None:
        return self.entry.name if self.entry is not None else None

    # ------------------------------------------------------------------ data in
    def show(
        self,
        entry: Entry,
        *,
        at: datetime,
        cursor: bool,
        selected: bool,
        thumb_rows: int,
    ) -> None:
        """Points the tile at ``entry`` and repaints what changed."""
        renamed = self.entry is None or self.entry.name != entry.name
        self.entry = entry
        status_class = f"-{entry.status.value}"
        if status_class != self._status_class:
            if self._status_class:
                self.remove_class(self._status_class)
            self.add_class(status_class)
            self._status_class = status_class
        self.set_class(cursor, "-cursor")
        self.set_class(selected, "-selected")
        self.set_class(bool(entry.error), "-error")
        # Whatever its status, an instance the automatic recovery gave up on is framed
        # and tinted as an error: it is the one an operator must act on.
        self.set_class(_needs_person(entry), "-needs-person")
        self._selected = selected
        self._update_title(at)
        if thumb_rows != self.thumb_rows:
            self.thumb_rows = thumb_rows
            self._rebuild_thumb()
            self.refresh()
        if renamed:
            # The picture of the instance now shown here, if one is cached (re-sorting
            # moves instances between tiles), else "loading" until the next fetch.
            cached = self.thumb_lookup(entry.name) if self.thumb_lookup and thumb_rows else None
            self._thumb = cached or (THUMB_LOADING if thumb_rows else Thumb())
            self._rebuild_thumb()
            self.refresh(Region(0, INFO_LINES, self.size.width, max(thumb_rows, 1)))
        self._update_lines(at)

    def _update_title(self, at: datetime) -> None:
        entry = self.entry
        if entry is None:
            return
        inst = entry.summary
        selected = self._selected
        stale_age = fmt.since(inst.stale_since, at) if inst.stale and inst.stale_since else ""
        needs = _needs_person(entry)
        title_key = (entry.name, selected, inst.stale, stale_age, entry.origin, needs)
        if title_key != self._title_key:
            self._title_key = title_key
            mark = "✔ " if selected else ""
            self.border_title = Text(f"{mark}{entry.name}", style="bold")
            parts: list[Text] = []
            if needs:
                parts.append(Text(f"{fmt.NEEDS_PERSON_MARK} NEEDS A PERSON", "bold reverse red"))
            if entry.origin is Origin.KUBERNETES:
                # Says where the data came from; "pod only" implies it is not current.
                parts.append(Text("pod only · no health", style="bold yellow"))
            elif inst.stale:
                parts.append(
                    Text(f"{fmt.STALE_MARK}STALE {stale_age}".rstrip(), style="bold yellow")
                )
            self.border_subtitle = (
                "" if not parts else parts[0] if len(parts) == 1 else Text(" ").join(parts)
            )

    def _key(self, entry: Entry, at: datetime) -> tuple[object, ...]:
        """What the text lines depend on. The model replaces an entry's summary on every
        update, so identity is enough; ages move once a second."""
        hist = entry.fps_history
        return (
            entry.summary,
            entry.error,
            entry.origin,
            len(hist),
            hist[-1] if hist else None,
            int(at.timestamp()),
            self.size.width,
            # Not the style itself: computing rich_style walks the ancestors, and this
            # key is built on every update; the generation moves when the style does.
            self._style_gen,
        )

    def tick(self, at: datetime) -> None:
        """Once a second: ages and countdowns move on."""
        if self.entry is not None:
            self._update_title(at)
            self._update_lines(at)

    def set_thumb(self, thumb: Thumb) -> None:
        if thumb == self._thumb:
            return
        self._thumb = thumb
        self._rebuild_thumb()
        if self.thumb_rows:
            self.refresh(Region(0, INFO_LINES, self.size.width, self.thumb_rows))

    # ------------------------------------------------------------------ drawing
    def _update_lines(self, at: datetime, force: bool = False) -> None:
        entry = self.entry
        if entry is None:
            return
        key = self._key(entry, at)
        if (
            not force
            and len(key) == len(self._content_key)
            and all(a is b or a == b for a, b in zip(key, self._content_key, strict=True))
        ):
            return  # nothing this tile shows has changed: skip building the lines
        self._content_key = key
        try:
            lines = tile_lines(entry, at)
        except Exception as exc:  # a surprise in the data must not take the console down
            lines = [Text(f"⚠ cannot show {entry.name}: {exc}", style="bold red")]
        width = self.size.width
        lines[0] = _place_right(lines[0], width)
        self._lines.update(self, lines, width, self.rich_style)

    def _rebuild_thumb(self) -> None:
        width, rows = self.size.width, self.thumb_rows
        base = self.rich_style
        # Class changes (cursor, status) call this too; most do not change anything the
        # picture area shows, and rebuilding rows of many segments is not free.
        built_for = (id(self._thumb), width, rows, base)
        if built_for == self._thumb_built_for:
            return
        self._thumb_built_for = built_for
        if rows <= 0 or width <= 0:
            self._thumb_strips = []
            return
        thumb = self._thumb
        if thumb.strips:
            pic_w = min(thumb.strips[0].cell_length, width)
            pic_h = len(thumb.strips)
            left = max(0, (width - pic_w) // 2)
            top = max(0, (rows - pic_h) // 2)
            blank = Strip.blank(width, base)
            pad_left = Strip.blank(left, base)
            pad_right = Strip.blank(width - left - pic_w, base)
            out = [blank] * rows
            for i, strip in enumerate(thumb.strips[: rows - top]):
                if strip.cell_length > pic_w:
                    strip = strip.crop(0, pic_w)
                # join() adds up known lengths: no per-segment measuring.
                out[top + i] = Strip.join([pad_left, strip, pad_right])
            self._thumb_strips = out
        else:
            message = thumb.message or ""
            style = base + Style(color="red" if thumb.error else "grey50", italic=True)
            self._thumb_strips = placeholder_strips(width, rows, message, style, base)

    def on_resize(self, event: events.Resize) -> None:
        self._lines.clear()
        self._rebuild_thumb()
        if self.entry is not None:
            self._update_lines(_now(self), force=True)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y < INFO_LINES:
            strip = self._lines.get(y)
            if strip is None or strip.cell_length != width:
                return Strip.blank(width, self.rich_style)
            return strip
        row = y - INFO_LINES
        if 0 <= row < len(self._thumb_strips):
            return self._thumb_strips[row]
        return Strip.blank(width, self.rich_style)

    def notify_style_update(self) -> None:
        # A class change may change the background, which cached strips carry; the caches
        # key on the style, so only a real change rebuilds anything.
        super().notify_style_update()
        self._style_gen += 1
        self._rebuild_thumb()
        if self.entry is not None and self.is_mounted:
            self._update_lines(_now(self))

    def on_click(self, event: events.Click) -> None:
        self.post_message(self.Clicked(self, event.chain >= 2))


def _needs_person(entry: Entry) -> bool:
    rung = entry.summary.remediation
    return rung is not None and rung.rung == "needs_person"


def _now(widget: Widget) -> datetime:
    """The app's clock (frozen in snapshot tests), else the real one."""
    now = getattr(widget.app, "now", None)
    return now() if callable(now) else fmt.now()

"""A virtualised log view over the data layer's bounded :class:`LogBuffer`.

Only the rows on screen are rendered (``render_line``), so ten thousand lines cost the
same to scroll as ten. Which lines pass the filter is the data layer's
:class:`~locotui.data.logwindow.FilteredLog` (it searches everything the buffer holds and
counts what the buffer dropped); the view keeps the cell length of each shown line (for
wrapping and horizontal scrolling) and an LRU of rendered lines. New lines are picked up
at most ten times a second however fast they arrive.

Wrapping is by cells (a long line continues on the next row at the view's width), which
keeps the row count of every line a cheap division instead of a layout pass.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from locotui.data.logs import LogBuffer, LogFilter, LogLine
from locotui.data.logwindow import FilteredLog

__all__ = ["INSTANCE_COLOURS", "LEVEL_STYLE", "LogView", "line_text"]

LEVEL_STYLE = {
    "debug": "dim",
    "info": "green",
    "warning": "bold yellow",
    "error": "bold red",
    "critical": "bold white on red",
}
INSTANCE_COLOURS = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "bright_blue",
    "bright_magenta",
    "bright_cyan",
    "bright_green",
    "orange1",
    "orchid",
    "turquoise2",
    "gold1",
)
HIGHLIGHT = "bold black on yellow"


def line_text(
    line: LogLine,
    *,
    show_instance: bool,
    show_time: bool,
    pretty: bool,
    instance_style: str = "cyan",
) -> Text:
    """The styled display form of ``line``; ``.plain`` equals the data layer's
    :func:`~locotui.data.logs.format_line` with the same options (so the filter's match
    spans line up with what is drawn)."""
    tag = f"[{line.instance}] " if show_instance and line.instance else ""
    text = Text(no_wrap=True, end="")
    if not pretty or not line.is_json:
        text.append(tag, style=instance_style)
        if pretty and show_time and line.timestamp is not None:
            text.append(line.timestamp.strftime("%H:%M:%S.%f")[:-3] + " ", style="dim")
        body_style = "italic yellow" if line.marker else ""
        if line.marker and line.level == "error":
            body_style = "bold red"
        text.append(line.raw, style=body_style)
        return text
    # Same parts, same order and same single-space joins as format_line.
    parts: list[list[tuple[str, str]]] = []
    if tag:
        parts.append([(tag.rstrip(), instance_style)])
    if show_time and line.timestamp is not None:
        parts.append([(line.timestamp.strftime("%H:%M:%S.%f")[:-3], "dim")])
    parts.append([(f"{(line.level or '-').upper():<7}", LEVEL_STYLE.get(line.level or "", "dim"))])
    message_style = "red" if line.level in ("error", "critical") else ""
    if line.logger:
        parts.append([(f"{line.logger}: ", "blue"), (line.message, message_style)])
    else:
        parts.append([(line.message, message_style)])
    if line.context:
        context = " ".join(
            f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}"
            for k, v in line.context.items()
        )
        parts.append([(context, "dim")])
    first = True
    for part in parts:
        if not "".join(piece for piece, _ in part):
            continue
        if not first:
            text.append(" ")
        for piece, style in part:
            text.append(piece, style=style)
        first = False
    return text


class LogView(ScrollView, can_focus=True):
    """See the module docstring."""

    DEFAULT_CSS = """
    LogView { height: 1fr; background: $surface; }
    """

    class Changed(Message):
        """Lines were added or the view was rebuilt (for the status line)."""

    def __init__(
        self,
        buffer: LogBuffer,
        instances: Sequence[str],
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.buffer = buffer
        self.instances = list(instances)
        self.colours = {
            name: INSTANCE_COLOURS[i % len(INSTANCE_COLOURS)] for i, name in enumerate(instances)
        }
        self.model = FilteredLog(buffer)
        self.wrap = False
        self.show_time = True
        self.pretty = True
        self.follow = True
        self.show_instance = len(self.instances) > 1
        self._lengths: list[int] = []
        self._rows: list[int] = []  # wrap mode: first row of each line (prefix sums)
        self._max_len = 0
        self._strips: LRUCache[tuple[int, int], list[Strip]] = LRUCache(1024)
        self._pending = False
        self._unsubscribe = buffer.subscribe(self._on_append)

    # ------------------------------------------------------------------ model → view
    @property
    def shown(self) -> list[LogLine]:
        """The lines that pass the filter, oldest first."""
        return self.model.shown

    @property
    def filter(self) -> LogFilter:
        return self.model.filter

    def _on_append(self) -> None:
        if not self._pending and self.is_mounted:
            self._pending = True
            # Coalesce: a burst of lines becomes one sync 100 ms later.
            self.set_timer(0.1, self.sync)

    def on_unmount(self) -> None:
        self._unsubscribe()

    def _text(self, line: LogLine) -> Text:
        text = line_text(
            line,
            show_instance=self.show_instance,
            show_time=self.show_time,
            pretty=self.pretty,
            instance_style=self.colours.get(line.instance or "", "cyan"),
        )
        for start, end in self.filter.spans(text.plain):
            text.stylize(HIGHLIGHT, start, end)
        return text

    def _length(self, line: LogLine) -> int:
        return cell_len(self._text(line).plain) if self.wrap else len(self._text(line).plain)

    def rebuild(self) -> None:
        """Re-applies filter and display options to everything in the buffer."""
        self._strips.clear()
        self.model.rebuild()
        self._lengths = [self._length(ln) for ln in self.shown]
        self._max_len = max(self._lengths, default=0)
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False)
        self.refresh()
        self.post_message(self.Changed())

    def sync(self) -> None:
        """Takes the lines appended since the last sync; drops evicted ones."""
        self._pending = False
        update = self.model.sync()
        if not update:
            return
        if update.removed:
            del self._lengths[: update.removed]
            self._strips.clear()
        for ln in update.added:
            n = self._length(ln)
            self._lengths.append(n)
            self._max_len = max(self._max_len, n)
        self._update_size()
        if self.follow:
            self.scroll_end(animate=False)
        self.refresh()
        self.post_message(self.Changed())

    def _update_size(self) -> None:
        width = max(1, self.scrollable_content_region.width or self.size.width or 80)
        if self.wrap:
            rows: list[int] = []
            total = 0
            for n in self._lengths:
                rows.append(total)
                total += max(1, -(-n // width))
            self._rows = rows
            self.virtual_size = Size(width, total)
        else:
            self._rows = []
            self.virtual_size = Size(max(self._max_len, 1), len(self.shown))

    # ------------------------------------------------------------------ options
    def set_filter(self, flt: LogFilter) -> None:
        self.model.filter = flt
        self.rebuild()

    def set_option(self, **options: bool) -> None:
        for key, value in options.items():
            setattr(self, key, value)
        self.rebuild()

    # ------------------------------------------------------------------ drawing
    def _line_strips(self, index: int, width: int) -> list[Strip]:
        line = self.shown[index]
        key = (line.seq, width if self.wrap else -1)
        cached = self._strips.get(key)
        if cached is not None:
            return cached
        text = self._text(line)
        segments = list(text.render(self.app.console, end=""))
        strip = Strip(segments).apply_style(self.rich_style)
        if self.wrap:
            length = max(strip.cell_length, 1)
            cuts = list(range(width, length, width))
            parts = list(strip.divide(cuts)) if cuts else [strip]
            strips = [p.extend_cell_length(width, self.rich_style) for p in parts]
        else:
            strips = [strip]
        self._strips[key] = strips
        return strips

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = scroll_y + y
        base = self.rich_style
        if self.wrap:
            if not self._rows or row >= self.virtual_size.height:
                return Strip.blank(width, base)
            index = bisect.bisect_right(self._rows, row) - 1
            sub = row - self._rows[index]
            strips = self._line_strips(index, width)
            strip = strips[sub] if sub < len(strips) else Strip.blank(width, base)
            return strip.crop_extend(0, width, base)
        if row >= len(self.shown):
            return Strip.blank(width, base)
        strip = self._line_strips(row, width)[0]
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def on_resize(self, event: events.Resize) -> None:
        if self.wrap:
            self._strips.clear()
            self._update_size()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def lines_for_save(self) -> list[LogLine]:
        return list(self.shown)

"""The dense view: one row per instance, for fleets of hundreds.

A Line-API widget (``ScrollView`` + ``render_line``) rather than Textual's ``DataTable``:
``DataTable.update_cell`` invalidates the rendered form of *every* row, so a fleet whose
fps values move every second made it re-render all visible rows on every update (68 % of
a core for 200 instances in ``bench/bench_tui.py``). Here each row is one cached strip,
rebuilt only when what the row shows changed (:func:`row_key`), and only rows on screen
are ever built. The header line stays put while the rows scroll; columns that do not fit
a narrow terminal are dropped, least important first.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from locotui.data.fleet import Entry, Origin, SortKey
from locotui.ui import fmt
from locotui.ui.lines import text_strip

__all__ = ["COLUMNS", "Column", "FleetTable", "layout_columns", "row_cells", "row_key"]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    """Fixed width; 0 means sized to the data (name, node) or the rest (reason)."""
    sort: SortKey | None = None
    drop: int = 0
    """Dropped first when the terminal is narrow: higher drops earlier; 0 never."""
    right: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("sel", " ", 1),
    Column("name", "NAME", 0, SortKey.NAME),
    Column("status", "STATUS", 18, SortKey.STATUS),
    Column("fps", "FPS", 5, SortKey.FPS, right=True),
    Column("trend", "TREND", 10, drop=6),
    Column("breaker", "BREAKER", 16, drop=3),
    Column("pod", "POD", 11, drop=2),
    Column("ready", "READY", 5, drop=4),
    Column("restarts", "RESTARTS", 8, SortKey.RESTARTS, drop=5, right=True),
    Column("age", "AGE", 7, SortKey.AGE, drop=1, right=True),
    Column("node", "NODE", 0, drop=7),
    Column("reason", "REASON", 0),
)
TREND_WIDTH = 10
MIN_REASON = 16


def row_cells(entry: Entry, selected: bool, at: datetime) -> tuple[Text | str, ...]:
    """The cells of one row, in :data:`COLUMNS` order (pure: tested without an app)."""
    inst = entry.summary
    if entry.error:
        reason = fmt.span(f"⚠ {entry.error}", "bold red")
    else:
        why = fmt.reason_of(inst)
        reason = fmt.span(why or "", "red" if why else "")
        # The automatic recovery's rung leads the reason, as on the tile.
        rung = fmt.rung_text(inst, at)
        if rung is not None:
            if why:
                rung.append(" · ", style="dim")
                rung.append_text(reason)
            reason = rung
    if inst.phase is not None:
        ready_ = bool(inst.ready)
        pod_text = fmt.span(inst.phase, fmt.phase_style(inst.phase, ready_))
        ready = fmt.span("yes" if ready_ else "no", "" if ready_ else "yellow")
    else:
        pod_text = fmt.span(inst.source.value, "dim")
        ready = fmt.span("-", "dim")
    started = entry.started_at
    age = fmt.since(started, at) if started else "-"
    name = fmt.span(entry.name, "bold")
    if entry.origin is Origin.KUBERNETES:
        name.append(" (pod only)", style="yellow")
    return (
        fmt.span("✔", "bold") if selected else " ",
        name,
        fmt.status_text(inst),
        fmt.fps_cell(inst),
        fmt.span(fmt.sparkline(entry.fps_values(TREND_WIDTH), TREND_WIDTH), "cyan"),
        fmt.breaker_text(inst, at),
        pod_text,
        ready,
        fmt.span(str(entry.restarts), "yellow" if entry.restarts else ""),
        Text(age),
        fmt.span(entry.node or "-", "dim"),
        reason,
    )


def row_key(entry: Entry, selected: bool, at: datetime) -> tuple[object, ...]:
    """Everything a row shows, cheaply: equal keys mean equal rows, so unchanged rows
    cost a tuple comparison instead of a dozen Text objects."""
    inst = entry.summary
    started = entry.started_at
    hist = entry.fps_history
    # The newest samples only, without copying a 300-sample deque for every row.
    trend = tuple(v for _, v in itertools.islice(reversed(hist), TREND_WIDTH))
    return (
        inst,  # replaced by the model on every change: equal identity, equal data
        entry.error,
        entry.origin,
        trend,
        selected,
        # What moves by itself: ages (up 3m, open 40s, reset 40s ago).
        fmt.since(started, at) if started else None,
        fmt.since(inst.breaker_since, at) if inst.breaker_since else None,
        fmt.since(inst.remediation.since, at) if inst.remediation is not None else None,
    )


def layout_columns(width: int, name_width: int, node_width: int) -> list[tuple[Column, int]]:
    """The columns that fit ``width`` and the width of each (one space between)."""
    sized = []
    for col in COLUMNS:
        w = col.width
        if col.key == "name":
            w = max(4, min(name_width, 40))
        elif col.key == "node":
            w = max(4, min(node_width, 20))
        elif col.key == "reason":
            w = MIN_REASON
        sized.append((col, w))
    droppable = sorted((c for c, _ in sized if c.drop), key=lambda c: -c.drop)
    while sum(w + 1 for _, w in sized) > width and droppable:
        gone = droppable.pop(0)
        sized = [(c, w) for c, w in sized if c is not gone]
    # One space between columns; the reason (last) takes the rest of the line.
    used = sum(w + 1 for c, w in sized if c.key != "reason")
    return [(c, max(MIN_REASON, width - used) if c.key == "reason" else w) for c, w in sized]


def entry_unselected(entry: Entry, selection: frozenset[str]) -> bool:
    return entry.name not in selection


class FleetTable(ScrollView, can_focus=True):
    """See the module docstring."""

    COMPONENT_CLASSES = {
        "fleet-table--header",
        "fleet-table--cursor",
        "fleet-table--even",
        "fleet-table--selected",
    }

    DEFAULT_CSS = """
    FleetTable { height: 1fr; overflow-x: hidden; background: $surface; }
    FleetTable > .fleet-table--header { background: $panel; text-style: bold; }
    FleetTable > .fleet-table--cursor { background: $block-cursor-blurred-background; }
    FleetTable:focus > .fleet-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    FleetTable > .fleet-table--even { background: $surface-lighten-1; }
    FleetTable > .fleet-table--selected { background: $primary 25%; }
    """

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class Activated(Message):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    class CursorMoved(Message):
        def __init__(self, name: str | None) -> None:
            super().__init__()
            self.name = name

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.entries: list[Entry] = []
        self.cursor = 0
        self._order: list[str] = []
        self._selection: frozenset[str] = frozenset()
        self._sort: tuple[SortKey, bool] = (SortKey.NAME, False)
        self._strips: dict[str, tuple[tuple[object, ...], Strip]] = {}
        """Row strip by instance name, with the :func:`row_key` it was built from."""
        self._columns: list[tuple[Column, int]] = []
        self._columns_for: tuple[int, int] | None = None
        self._header: Strip | None = None
        self._at = fmt.now()
        self.rebuilds = 0
        self.rows_built = 0

    # ------------------------------------------------------------------ data in
    @property
    def row_count(self) -> int:
        return len(self.entries)

    @property
    def cursor_name(self) -> str | None:
        if 0 <= self.cursor < len(self._order):
            return self._order[self.cursor]
        return None

    def show(
        self,
        entries: list[Entry],
        selection: frozenset[str] | set[str],
        at: datetime,
        cursor_name: str | None,
        sort: tuple[SortKey, bool],
    ) -> None:
        self._at = at
        self._selection = frozenset(selection)
        order = [e.name for e in entries]
        if sort != self._sort:
            self._sort = sort
            self._header = None
            self.refresh(Region(0, 0, self.size.width, 1))
        self.entries = entries
        if order != self._order:
            self.rebuilds += 1
            # Cached rows stay valid (a row's strip does not depend on where it is, and
            # each is checked against its key when painted). A re-sort keeps the same rows:
            # the column widths (sized to the names and nodes) and the cache stand.
            names = set(order)
            if len(order) != len(self._order) or names != set(self._order):
                self._columns_for = None
                for gone in [n for n in self._strips if n not in names]:
                    del self._strips[gone]
            self._order = order
            self.virtual_size = Size(self.size.width, len(order) + 1)
            if cursor_name in order:
                self.cursor = order.index(cursor_name)
            self.cursor = max(0, min(self.cursor, len(order) - 1))
            self.refresh()
            self._scroll_to_cursor()
            return
        if cursor_name in order and order.index(cursor_name) != self.cursor:
            self._move(order.index(cursor_name), notify=False)
        self._refresh_changed()

    def tick(
        self, entries: list[Entry], selection: frozenset[str] | set[str], at: datetime
    ) -> None:
        self.show(entries, selection, at, self.cursor_name, self._sort)

    def _refresh_changed(self) -> None:
        """Repaints the rows on screen whose content changed.

        Only rows on screen are looked at: a row scrolled into view is checked against
        its key when it is painted (:meth:`_row_strip`), so nothing off screen costs
        anything, whatever the size of the fleet.
        """
        top, height = self._visible_rows()
        for i in range(top, min(top + height, len(self.entries))):
            entry = self.entries[i]
            cached = self._strips.get(entry.name)
            if cached is None:
                continue
            if cached[0] != row_key(entry, entry.name in self._selection, self._at):
                self.refresh(Region(0, i - top + 1, self.size.width, 1))

    # ------------------------------------------------------------------ drawing
    def _visible_rows(self) -> tuple[int, int]:
        return int(self.scroll_offset.y), max(0, self.scrollable_content_region.height - 1)

    def _layout(self, width: int) -> list[tuple[Column, int]]:
        """Column widths for ``width``; recomputed only when the width or the set of rows
        changed, and cached rows are dropped only when the columns really moved."""
        if self._columns_for != (width, len(self.entries)):
            names = max(
                (len(e.name) + (11 if e.origin is Origin.KUBERNETES else 0) for e in self.entries),
                default=4,
            )
            nodes = max((len(e.node or "-") for e in self.entries), default=4)
            columns = layout_columns(width, names, nodes)
            self._columns_for = (width, len(self.entries))
            if columns != self._columns:
                self._columns = columns
                self._header = None
                self._strips.clear()
        return self._columns

    def _line(self, cells: list[tuple[Text | str, int, bool]], width: int, base: Style) -> Strip:
        line = Text(no_wrap=True, end="")
        for n, (cell, w, right) in enumerate(cells):
            if n:
                line.append(" ")
            text = cell.copy() if isinstance(cell, Text) else Text(cell)
            text.truncate(w, overflow="ellipsis")
            pad = " " * (w - text.cell_len)
            if right:
                line.append(pad)
                line.append_text(text)
            else:
                line.append_text(text)
                line.append(pad)
        return text_strip(self.app.console, line, width, base)

    def _header_strip(self, width: int) -> Strip:
        if self._header is None or self._header.cell_length != width:
            key, reverse = self._sort
            arrow = "▲" if reverse else "▼"
            cells = [
                (f"{c.label} {arrow}" if c.sort is key else c.label, w, c.right)
                for c, w in self._layout(width)
            ]
            base = self.rich_style + self.get_component_rich_style("fleet-table--header")
            self._header = self._line(cells, width, base)  # type: ignore[arg-type]
        return self._header

    def _row_strip(self, index: int, width: int) -> Strip:
        entry = self.entries[index]
        selected = entry.name in self._selection
        key = row_key(entry, selected, self._at)
        cached = self._strips.get(entry.name)
        if cached is not None and cached[0] == key and cached[1].cell_length == width:
            return cached[1]
        self.rows_built += 1
        columns = self._layout(width)
        cells = row_cells(entry, selected, self._at)
        by_key = {c.key: cell for c, cell in zip(COLUMNS, cells, strict=True)}
        base = self.rich_style
        if selected:
            base += self.get_component_rich_style("fleet-table--selected")
        strip = self._line([(by_key[c.key], w, c.right) for c, w in columns], width, base)
        self._strips[entry.name] = (key, strip)
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header_strip(width)
        index = int(self.scroll_offset.y) + y - 1
        if not 0 <= index < len(self.entries):
            return Strip.blank(width, self.rich_style)
        strip = self._row_strip(index, width)
        if index == self.cursor:
            cursor = self.get_component_rich_style("fleet-table--cursor")
            # The cursor colours the whole row over the cells' own colours.
            strip = Strip(
                [seg._replace(style=(seg.style or Style()) + cursor) for seg in strip],
                strip.cell_length,
            )
        return strip

    def on_resize(self, event: events.Resize) -> None:
        self._columns_for = None
        self.virtual_size = Size(self.size.width, len(self._order) + 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header = None

    # ------------------------------------------------------------------ cursor
    def _scroll_to_cursor(self) -> None:
        top, height = self._visible_rows()
        if height <= 0:
            return
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def _move(self, index: int, notify: bool = True) -> None:
        if not self.entries:
            return
        index = max(0, min(len(self.entries) - 1, index))
        old, self.cursor = self.cursor, index
        top, _ = self._visible_rows()
        for row in {old, index}:
            self.refresh(Region(0, row - top + 1, self.size.width, 1))
        self._scroll_to_cursor()
        if notify and old != index:
            self.post_message(self.CursorMoved(self.cursor_name))

    def action_cursor_up(self) -> None:
        self._move(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor + 1)

    def action_page(self, direction: int) -> None:
        _, height = self._visible_rows()
        self._move(self.cursor + direction * max(1, height - 1))

    def action_jump(self, index: int) -> None:
        self._move(index if index >= 0 else len(self.entries) - 1)

    def select_name(self, name: str) -> bool:
        if name in self._order:
            self._move(self._order.index(name))
            return True
        return False

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if 0 <= index < len(self.entries):
            self.focus()
            self._move(index)
            if event.chain >= 2:
                self.post_message(self.Activated(self.entries[index].name))

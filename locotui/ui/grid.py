"""The responsive grid of tiles.

:func:`plan_grid` decides columns and thumbnail size from the space available: it prefers
a layout where every tile fits on screen with the biggest thumbnails possible; when the
fleet is too big for that, tiles keep a readable width and the grid scrolls (and when
even a small thumbnail would leave fewer than two rows of tiles on screen, thumbnails are
left out so an 80x24 terminal still shows several instances).

The grid owns a pool of :class:`~locotui.ui.tile.Tile` widgets, one per instance in the
current view; tile *i* shows view entry *i*, so sorting and filtering only repaint.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from textual import events
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.message import Message

from locotui.data.fleet import Entry
from locotui.ui.halfblock import fit_cells
from locotui.ui.tile import INFO_LINES, Thumb, Tile

__all__ = ["GridPlan", "TileGrid", "plan_grid"]

MIN_TILE_WIDTH = 36
"""Narrowest tile whose four text lines still read (status + fps + sparkline)."""
MIN_THUMB_ROWS = 5
MAX_THUMB_COLS = 120
BORDER = 2
ASPECT = (4, 3)
"""Assumed picture shape for layout (Windows 98 runs 640x480 / 800x600)."""


@dataclass(frozen=True)
class GridPlan:
    columns: int
    tile_height: int
    thumb_cols: int
    thumb_rows: int
    fits: bool
    """Every tile is on screen without scrolling."""


def plan_grid(count: int, width: int, height: int, thumbnails: bool) -> GridPlan:
    """Columns and sizes for ``count`` tiles in ``width`` x ``height`` cells."""
    count = max(count, 1)
    width, height = max(width, 1), max(height, 1)
    max_cols = max(1, min(count, width // MIN_TILE_WIDTH))
    text_height = BORDER + INFO_LINES
    if thumbnails:
        best: GridPlan | None = None
        for cols in range(1, max_cols + 1):
            rows = math.ceil(count / cols)
            inner_w = width // cols - BORDER
            room = height // rows - text_height
            tc, tr = fit_cells(ASPECT[0], ASPECT[1], min(inner_w, MAX_THUMB_COLS), room)
            if room < MIN_THUMB_ROWS or tr < MIN_THUMB_ROWS:
                continue
            plan = GridPlan(cols, text_height + tr, tc, tr, fits=True)
            if best is None or tc * tr > best.thumb_cols * best.thumb_rows:
                best = plan
        if best is not None:
            return best
        # Too many to fit: readable tiles, at least two rows of them on screen.
        cols = max_cols
        inner_w = width // cols - BORDER
        room = height // 2 - text_height
        tc, tr = fit_cells(ASPECT[0], ASPECT[1], min(inner_w, MAX_THUMB_COLS), room)
        if room >= MIN_THUMB_ROWS and tr >= MIN_THUMB_ROWS:
            rows = math.ceil(count / cols)
            return GridPlan(cols, text_height + tr, tc, tr, rows * (text_height + tr) <= height)
    cols = max_cols
    rows = math.ceil(count / cols)
    return GridPlan(cols, text_height, 0, 0, rows * text_height <= height)


class TileGrid(ScrollableContainer, can_focus=True):
    """Tiles for the current view; the app tells it what to show via :meth:`show`."""

    DEFAULT_CSS = """
    TileGrid {
        layout: grid;
        grid-size: 3;
        grid-gutter: 0 0;
        grid-rows: 10;
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    TileGrid:focus { background-tint: transparent; }
    TileGrid > .empty { width: 100%; height: 3; content-align: center middle; color: $text-muted; }
    """

    BINDINGS = [
        Binding("up,k", "move(0, -1)", "Up", show=False),
        Binding("down,j", "move(0, 1)", "Down", show=False),
        # hjkl as in vi (and k9s); logs and history sit on L and H for that reason.
        Binding("left,h", "move(-1, 0)", "Left", show=False),
        Binding("right,l", "move(1, 0)", "Right", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class CursorMoved(Message):
        """The focused instance changed (by key or click)."""

        def __init__(self, name: str | None) -> None:
            super().__init__()
            self.name = name

    class Activated(Message):
        """Enter or double click on a tile."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, *, thumbnails: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.thumbnails = thumbnails
        self.cursor = 0
        self.entries: list[Entry] = []
        self.plan = GridPlan(1, BORDER + INFO_LINES, 0, 0, True)
        self._tiles: list[Tile] = []
        self._selection: frozenset[str] = frozenset()
        self.thumb_source: Callable[[str, int, int], Thumb | None] | None = None
        """Cached pictures by (name, cols, rows), so a tile shows its new instance's
        picture at once after a re-sort."""

    # ------------------------------------------------------------------ data in
    @property
    def cursor_name(self) -> str | None:
        if 0 <= self.cursor < len(self.entries):
            return self.entries[self.cursor].name
        return None

    @property
    def tiles(self) -> list[Tile]:
        return self._tiles

    def show(
        self,
        entries: list[Entry],
        selection: frozenset[str] | set[str],
        at: datetime,
        cursor_name: str | None,
    ) -> None:
        """Shows ``entries`` in order; the cursor stays on ``cursor_name`` if still shown."""
        self.entries = entries
        self._selection = frozenset(selection)
        names = [e.name for e in entries]
        if cursor_name in names:
            self.cursor = names.index(cursor_name)
        else:
            self.cursor = min(self.cursor, max(0, len(entries) - 1))
        self._sync_pool()
        self._relayout()
        self._paint(at)

    def _thumb_lookup(self, name: str) -> Thumb | None:
        if self.thumb_source is None or not self.plan.thumb_rows:
            return None
        return self.thumb_source(name, self.plan.thumb_cols, self.plan.thumb_rows)

    def tick(self, at: datetime) -> None:
        for tile in self._tiles:
            tile.tick(at)

    def set_thumbnails(self, on: bool) -> None:
        self.thumbnails = on
        self._relayout()
        self._paint(datetime.now().astimezone())

    def _sync_pool(self) -> None:
        want = len(self.entries)
        if len(self._tiles) < want:
            new = [Tile(i) for i in range(len(self._tiles), want)]
            for tile in new:
                tile.thumb_lookup = self._thumb_lookup
            self._tiles.extend(new)
            self.mount_all(new)
        elif len(self._tiles) > want:
            for tile in self._tiles[want:]:
                tile.remove()
            del self._tiles[want:]
        empty = self.query(".empty")
        if not self.entries and not empty:
            from textual.widgets import Static

            self.mount(Static("no instances match", classes="empty"))
        elif self.entries and empty:
            empty.remove()

    def _relayout(self) -> None:
        region = self.scrollable_content_region
        width = region.width or self.app.size.width
        height = region.height or max(1, self.app.size.height - 4)
        plan = plan_grid(len(self.entries), width, height, self.thumbnails)
        if plan != self.plan:
            self.plan = plan
            self.styles.grid_size_columns = plan.columns
            self.styles.grid_rows = str(plan.tile_height)  # type: ignore[assignment]

    def _paint(self, at: datetime) -> None:
        for i, (tile, entry) in enumerate(zip(self._tiles, self.entries, strict=False)):
            tile.show(
                entry,
                at=at,
                cursor=i == self.cursor,
                selected=entry.name in self._selection,
                thumb_rows=self.plan.thumb_rows,
            )

    def on_resize(self, event: events.Resize) -> None:
        old = self.plan
        self._relayout()
        if self.plan != old:
            self._paint(datetime.now().astimezone())

    # ------------------------------------------------------------------ navigation
    def _set_cursor(self, index: int) -> None:
        if not self.entries:
            return
        index = max(0, min(len(self.entries) - 1, index))
        old = self.cursor
        self.cursor = index
        at = datetime.now().astimezone()
        for i in {old, index}:
            if i < len(self._tiles) and i < len(self.entries):
                self._tiles[i].show(
                    self.entries[i],
                    at=at,
                    cursor=i == index,
                    selected=self.entries[i].name in self._selection,
                    thumb_rows=self.plan.thumb_rows,
                )
        if index < len(self._tiles):
            self.scroll_to_widget(self._tiles[index], animate=False)
        if old != index:
            self.post_message(self.CursorMoved(self.cursor_name))

    def action_move(self, dx: int, dy: int) -> None:
        cols = max(1, self.plan.columns)
        self._set_cursor(self.cursor + dx + dy * cols)

    def action_page(self, direction: int) -> None:
        rows_visible = max(1, self.scrollable_content_region.height // self.plan.tile_height)
        self._set_cursor(self.cursor + direction * rows_visible * max(1, self.plan.columns))

    def action_jump(self, index: int) -> None:
        self._set_cursor(index if index >= 0 else len(self.entries) - 1)

    def select_name(self, name: str) -> bool:
        for i, e in enumerate(self.entries):
            if e.name == name:
                self._set_cursor(i)
                return True
        return False

    def on_tile_clicked(self, message: Tile.Clicked) -> None:
        message.stop()
        self.focus()
        self._set_cursor(message.tile.index)
        if message.double and message.tile.entry is not None:
            self.post_message(self.Activated(message.tile.entry.name))

    def visible_tiles(self) -> list[Tile]:
        """Tiles on screen in the last update (thumbnails are fetched only for these)."""
        return [t for t in self._tiles if t.entry is not None and t.is_on_screen]

"""Rendering Rich ``Text`` lines straight into ``Strip`` rows, with a per-line cache.

The tiles, the header and the banner repaint every second (ages, countdowns) and on every
fleet change. Going through ``Static.update`` would re-layout the screen each time; these
widgets have a fixed height instead, build one ``Strip`` per line, and refresh only the
lines whose content actually changed, so an idle fleet writes (almost) nothing to the
terminal.
"""

from __future__ import annotations

from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

__all__ = ["LineCache", "text_strip"]


def text_strip(console: Console, text: Text, width: int, base: Style) -> Strip:
    """One line of ``text``, cut with an ellipsis or padded to exactly ``width`` cells."""
    if width <= 0:
        return Strip([], 0)
    line = text.copy()
    line.no_wrap = True
    line.truncate(width, overflow="ellipsis", pad=True)
    segments = list(line.render(console, end=""))
    return Strip(segments, width).apply_style(base).simplify()


class LineCache:
    """Keeps the rendered strips of a widget's text lines and what they were made from."""

    def __init__(self) -> None:
        self._keys: list[tuple[str, int]] = []
        self._strips: list[Strip] = []
        self._width = -1
        self._base: Style | None = None

    def clear(self) -> None:
        self._keys.clear()
        self._strips.clear()
        self._width = -1
        self._base = None

    def update(
        self,
        widget: Widget,
        lines: list[Text],
        width: int,
        base: Style,
        *,
        y_offset: int = 0,
        refresh: bool = True,
    ) -> bool:
        """Re-renders the lines that changed; refreshes only their regions. Returns
        whether anything changed."""
        console = widget.app.console
        changed_rows: list[int] = []
        if width != self._width or base != self._base:
            self._keys.clear()
            self._strips.clear()
            self._width = width
            self._base = base
        for i, text in enumerate(lines):
            # Plain text + spans identify what is drawn; hashing them is far cheaper than
            # rendering and comparing strips.
            key = (
                text.plain,
                hash((str(text.style), *((s.start, s.end, str(s.style)) for s in text.spans))),
            )
            if i < len(self._keys) and self._keys[i] == key:
                continue
            strip = text_strip(console, text, width, base)
            if i < len(self._keys):
                self._keys[i] = key
                self._strips[i] = strip
            else:
                self._keys.append(key)
                self._strips.append(strip)
            changed_rows.append(i)
        if len(self._keys) > len(lines):
            changed_rows.extend(range(len(lines), len(self._keys)))
            del self._keys[len(lines) :]
            del self._strips[len(lines) :]
        if refresh and changed_rows:
            top, bottom = min(changed_rows), max(changed_rows)
            widget.refresh(Region(0, y_offset + top, max(width, 1), bottom - top + 1))
        return bool(changed_rows)

    def get(self, y: int) -> Strip | None:
        return self._strips[y] if 0 <= y < len(self._strips) else None

    def __len__(self) -> int:
        return len(self._strips)

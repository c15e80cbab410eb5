"""What a log view shows of a :class:`LogBuffer`: the lines that pass its filter.

Kept apart from the widget (as Toolong keeps its model apart from ``LogLines``): the
widget only measures and draws ``shown``. The filter always runs over every line the
buffer holds — changing it re-reads the whole buffer, new lines are filtered as they
arrive — so a match is found wherever it is in memory, not only in the rows on screen.
Lines the buffer evicted at its cap are gone; :attr:`FilteredLog.dropped` counts them
and :meth:`FilteredLog.summary` says so, so an empty search is never mistaken for "it
did not happen".
"""

from __future__ import annotations

from dataclasses import dataclass

from locotui.data.logs import LogBuffer, LogFilter, LogLine

__all__ = ["FilteredLog", "LogUpdate"]


@dataclass(frozen=True)
class LogUpdate:
    """What a :meth:`FilteredLog.sync` changed in ``shown``."""

    removed: int = 0
    """Lines removed from the front (the buffer evicted them)."""
    added: tuple[LogLine, ...] = ()
    """Lines appended at the end (new lines that pass the filter)."""

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)


class FilteredLog:
    """The lines of ``buffer`` that pass ``filter``, in order, kept in step by
    :meth:`sync` (new lines, evictions) and :meth:`rebuild` (a new filter, a cleared
    buffer)."""

    def __init__(self, buffer: LogBuffer, flt: LogFilter | None = None) -> None:
        self.buffer = buffer
        self.filter = flt or LogFilter()
        self.shown: list[LogLine] = []
        self._last_seq = 0
        self.rebuild()

    def set_filter(self, flt: LogFilter) -> None:
        self.filter = flt
        self.rebuild()

    def rebuild(self) -> None:
        """Filters everything the buffer holds again."""
        lines = self.buffer.lines()
        self.shown = [ln for ln in lines if self.filter.matches(ln)]
        if lines:
            self._last_seq = lines[-1].seq

    def sync(self) -> LogUpdate:
        """Takes the lines appended since the last sync and drops the evicted ones."""
        new = self.buffer.since(self._last_seq)
        if new:
            self._last_seq = new[-1].seq
        oldest = self.buffer.oldest_seq()
        removed = 0
        while removed < len(self.shown) and (oldest is None or self.shown[removed].seq < oldest):
            removed += 1
        if removed:
            del self.shown[:removed]
        added = tuple(ln for ln in new if self.filter.matches(ln))
        self.shown.extend(added)
        return LogUpdate(removed, added)

    @property
    def held(self) -> int:
        """Lines in memory, all of which the filter searched."""
        return len(self.buffer)

    @property
    def dropped(self) -> int:
        """Older lines evicted at the buffer's cap (no filter can find them)."""
        return self.buffer.dropped

    def summary(self) -> str:
        """``12 of 10000 lines match; 2345 older lines dropped at the 10000-line cap``."""
        if self.filter.active:
            text = f"{len(self.shown)} of {self.held} lines match"
        else:
            text = f"{self.held} lines"
        if self.dropped:
            text += f"; {self.dropped} older dropped at the {self.buffer.cap_text()} cap"
        return text

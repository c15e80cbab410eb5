"""The log view's model: the filter searches every line held, and says what was dropped."""

from __future__ import annotations

from locotui.data.logs import LogBuffer, LogFilter
from locotui.data.logwindow import FilteredLog


def filled(n: int, cap: int) -> LogBuffer:
    buffer = LogBuffer(max_lines=cap)
    for i in range(n):
        buffer.append(f"line {i:05d}", "loco-0")
    return buffer


def test_filter_searches_every_line_held_not_only_the_newest() -> None:
    buffer = filled(3000, cap=1000)
    log = FilteredLog(buffer)
    assert len(log.shown) == 1000 and log.shown[0].message == "line 02000"
    # The oldest line still held, far above any screenful of the newest.
    log.set_filter(LogFilter("line 02000"))
    assert [ln.message for ln in log.shown] == ["line 02000"]
    log.set_filter(LogFilter("line 01999"))  # dropped at the cap: gone for good
    assert log.shown == []
    assert log.summary() == "0 of 1000 lines match; 2000 older dropped at the 1000-line cap"


def test_sync_follows_appends_and_evictions_under_a_filter() -> None:
    buffer = filled(10, cap=10)
    log = FilteredLog(buffer, LogFilter(r"[02468]$", regex=True))
    assert [ln.message[-1] for ln in log.shown] == ["0", "2", "4", "6", "8"]
    for i in range(10, 14):
        buffer.append(f"line {i:05d}", "loco-0")
    update = log.sync()
    # 0..3 evicted (0 and 2 were shown), 10 and 12 added.
    assert update.removed == 2 and [ln.message for ln in update.added] == [
        "line 00010",
        "line 00012",
    ]
    assert [ln.message for ln in log.shown] == [f"line {i:05d}" for i in (4, 6, 8, 10, 12)]
    assert not log.sync()  # nothing new


def test_summary_without_filter_and_after_clear() -> None:
    buffer = filled(5, cap=100)
    log = FilteredLog(buffer)
    assert log.summary() == "5 lines"
    more = filled(150, cap=100)
    assert FilteredLog(more).summary() == "100 lines; 50 older dropped at the 100-line cap"
    more.clear()
    log = FilteredLog(more)
    assert log.dropped == 0 and log.summary() == "0 lines"


def test_byte_cap_is_named_when_it_is_what_evicted() -> None:
    buffer = LogBuffer(max_lines=1000, max_bytes=1024 * 1024)
    for i in range(200):
        buffer.append(f"{i} " + "x" * 10_000, "loco-0")
    log = FilteredLog(buffer)
    assert log.dropped > 0 and log.summary().endswith("dropped at the 1 MiB cap")

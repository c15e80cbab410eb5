"""The log model: parsing, bounds, filtering with spans, merged tails, saving, sources."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emulator import jsonlog
from locotui.data.errors import DataError, NotFound
from locotui.data.logs import (
    LogBuffer,
    LogFilter,
    LogLine,
    LogTail,
    SaveRefused,
    format_line,
    parse_line,
    save_lines,
)
from tests.support.waiting import eventually


def project_log_lines() -> list[str]:
    """Real output of the project's JSON logger (emulator/jsonlog.py)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(jsonlog.JsonFormatter())
    logger = logging.getLogger("emulator.supervisor.test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        jsonlog.log(logger, logging.WARNING, "qemu exited", pid=42, reason="SIGKILL")
        logger.info("plain info")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("crashed")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().splitlines()


def test_parses_the_projects_json_log_lines() -> None:
    warn, info, crash = (parse_line(raw, "loco-0") for raw in project_log_lines())
    assert warn.is_json and warn.level == "warning" and warn.logger == "emulator.supervisor.test"
    assert warn.message == "qemu exited" and warn.context == {"pid": 42, "reason": "SIGKILL"}
    assert warn.timestamp is not None and warn.timestamp.tzinfo is not None
    assert info.context is None and info.level == "info"
    assert crash.level == "error" and "RuntimeError: boom" in crash.context["error"]  # type: ignore[index]
    text = format_line(warn)
    assert text.startswith("[loco-0] ") and "WARNING emulator.supervisor.test: qemu exited" in text
    assert text.endswith("pid=42 reason=SIGKILL")


def test_parses_variants_plain_lines_and_kubectl_timestamps() -> None:
    kubesim_style = parse_line('{"level":"warn","msg":"disk image verified","pod":"p-0"}')
    assert kubesim_style.level == "warning" and kubesim_style.message == "disk image verified"
    assert kubesim_style.context == {"pod": "p-0"}
    numeric = parse_line('{"severity":"CRITICAL","time":1700000000.5,"event":{"k":1}}')
    assert numeric.level == "critical" and numeric.timestamp is not None
    assert numeric.message == '{"k": 1}'
    odd_level = parse_line('{"level":"chatty","message":"x"}')
    assert odd_level.level is None and odd_level.context == {"level": "chatty"}
    plain = parse_line("QEMU 7.2.0 monitor - type 'help' for more information\r\n")
    assert (
        not plain.is_json
        and plain.message == plain.raw == "QEMU 7.2.0 monitor - type 'help' for more information"
    )
    broken = parse_line('{"level":"info", oops}')
    assert not broken.is_json and broken.raw == '{"level":"info", oops}'
    array = parse_line("[1, 2]")
    assert not array.is_json
    stamped = parse_line('2024-05-01T12:00:00.123456789Z {"level":"info","message":"hi"}')
    assert stamped.is_json and stamped.message == "hi"
    assert stamped.timestamp is not None and stamped.timestamp.microsecond == 123456
    assert stamped.raw == '{"level":"info","message":"hi"}'
    plain_stamped = parse_line("2024-05-01T12:00:00Z booting")
    assert plain_stamped.raw == "booting" and plain_stamped.timestamp is not None
    assert format_line(plain_stamped, show_instance=False) == "12:00:00.000 booting"


def test_buffer_is_bounded_by_lines_and_bytes() -> None:
    buf = LogBuffer(max_lines=5, max_bytes=10_000)
    calls: list[int] = []
    buf.subscribe(lambda: calls.append(buf.version))
    for i in range(12):
        buf.append(f"line {i}", "a")
    assert [ln.message for ln in buf.lines()] == [f"line {i}" for i in range(7, 12)]
    assert buf.dropped == 7 and len(calls) == 12
    assert [ln.seq for ln in buf.lines()] == [8, 9, 10, 11, 12]
    assert [ln.message for ln in buf.since(10)] == ["line 10", "line 11"]
    by_bytes = LogBuffer(max_lines=1000, max_bytes=2000)
    for _ in range(100):
        by_bytes.append("x" * 100)
    assert by_bytes.bytes <= 2000 and len(by_bytes) < 20
    # One line bigger than the cap is still kept (never an empty view).
    huge = LogBuffer(max_lines=10, max_bytes=100)
    huge.append("y" * 1000)
    assert len(huge) == 1
    with pytest.raises(ValueError):
        LogBuffer(max_lines=0)


def test_filter_matches_and_spans() -> None:
    lines = [
        parse_line('{"level":"debug","message":"probe ok"}', "loco-0"),
        parse_line('{"level":"error","message":"QEMU exited: Error 1"}', "loco-1"),
        parse_line("plain error text", "loco-1"),
    ]
    f = LogFilter("error")
    shown = f.apply(lines)
    assert [ln.instance for ln, _, _ in shown] == ["loco-1", "loco-1"]
    _, text, spans = shown[0]
    assert [text[a:b] for a, b in spans] == ["ERROR", "Error"]  # case-insensitive
    # Smartcase: an upper-case letter makes it case-sensitive.
    assert [t[a:b] for _, t, sp in LogFilter("Error").apply(lines) for a, b in sp] == ["Error"]
    rx = LogFilter(r"exited: \w+ \d", regex=True)
    ((_, text, spans),) = rx.apply(lines)
    assert [text[a:b] for a, b in spans] == ["exited: Error 1"]
    assert [ln.message for ln, _, _ in LogFilter(min_level="info").apply(lines)] == [
        "QEMU exited: Error 1",
        "plain error text",  # unknown level: never hidden by a level filter
    ]
    assert len(LogFilter(instances=["loco-0"]).apply(lines)) == 1
    assert not LogFilter().active and LogFilter("x").active
    assert LogFilter("a*", regex=True).spans("bbb") == []  # empty matches are not spans
    with pytest.raises(ValueError, match="bad regular expression"):
        LogFilter("(", regex=True)
    with pytest.raises(ValueError, match="unknown level"):
        LogFilter(min_level="loud")


async def lines_from(items: list[str], delay: float = 0.0) -> AsyncIterator[str]:
    for item in items:
        if delay:
            await asyncio.sleep(delay)
        yield item


async def failing(after: list[str]) -> AsyncIterator[str]:
    for item in after:
        yield item
    raise NotFound('pods "loco-9" not found', source="kubernetes")


async def test_tail_merges_sources_with_instance_tags_and_survives_failures() -> None:
    tail = LogTail(LogBuffer())
    tail.add("loco-0", lines_from(["a0", "a1", "a2"], 0.01))
    tail.add("loco-1", lines_from(['{"level":"info","message":"b0"}', "b1"], 0.015))
    tail.add("loco-9", failing(["c0"]))
    await eventually(lambda: not tail.running, what="sources done")
    got = [(ln.instance, ln.message) for ln in tail.buffer.lines() if not ln.marker]
    assert sorted(got) == sorted(
        [
            ("loco-0", "a0"),
            ("loco-0", "a1"),
            ("loco-0", "a2"),
            ("loco-1", "b0"),
            ("loco-1", "b1"),
            ("loco-9", "c0"),
        ]
    )
    # Interleaved by arrival, each source in its own order.
    assert [m for i, m in got if i == "loco-0"] == ["a0", "a1", "a2"]
    assert tail.errors == {"loco-9": 'pods "loco-9" not found'}
    markers = [ln for ln in tail.buffer.lines() if ln.marker]
    assert {ln.instance for ln in markers} == {"loco-0", "loco-1", "loco-9"}
    assert any(ln.level == "error" and "not found" in ln.message for ln in markers)
    await tail.stop()


async def test_tail_stop_cancels_endless_sources() -> None:
    async def endless() -> AsyncIterator[str]:
        while True:
            await asyncio.sleep(0.01)
            yield "tick"

    tail = LogTail(LogBuffer(max_lines=50))
    tail.add("x", endless())
    await eventually(lambda: len(tail.buffer) >= 3, what="ticks")
    await tail.stop()
    n = len(tail.buffer)
    await asyncio.sleep(0.05)
    assert len(tail.buffer) == n and tail.running == []


async def test_save_is_atomic_and_refuses_to_overwrite(tmp_path: Path) -> None:
    lines = [parse_line('{"level":"info","message":"m1"}', "a"), parse_line("plain", "b")]
    target = tmp_path / "out.log"
    assert await save_lines(lines, target) == target
    assert target.read_text() == '[a] {"level":"info","message":"m1"}\n[b] plain\n'
    with pytest.raises(SaveRefused, match="exists"):
        await save_lines(lines[:1], target)
    assert target.read_text().count("\n") == 2  # untouched
    await save_lines(lines[:1], target, overwrite=True, mode="pretty")
    assert target.read_text() == "INFO    m1\n"  # one instance: no tag
    single = tmp_path / "single.log"
    await save_lines([parse_line("only", "a")], single)
    assert single.read_text() == "only\n"  # one instance: no tag
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    with pytest.raises(DataError, match="cannot save"):
        await save_lines(lines, tmp_path / "missing-dir" / "x.log")
    with pytest.raises(SaveRefused, match="exists"):
        await save_lines(lines, tmp_path)  # a directory


def test_logline_size_counts_toward_bytes() -> None:
    line = LogLine(raw="abc", message="abc", instance="i")
    assert line.size > 3

"""The generated blocks of docs/performance.md: replaced in place, prose left alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.report import HEADING, Run, write_block


def run(name: str, output: str) -> Run:
    return Run(
        name=name,
        title=f"Title of {name}",
        command=f".venv/bin/python -m bench.{name}",
        started=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        seconds=12.0,
        load_before="0.10 0.20 0.30",
        load_after="0.40 0.50 0.60",
        outcome="completed",
        output=output,
    )


def test_blocks_are_appended_then_replaced_and_the_prose_stays(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    prose = "# Performance\n\nHand-written words.\n\n## Backend\n\nMore words.\n"
    doc.write_text(prose)
    write_block(run("bench_a", "first figures\n"), doc)
    write_block(run("bench_b", "b figures\n"), doc)
    text = doc.read_text()
    assert text.startswith(prose.rstrip("\n"))
    assert text.count(HEADING) == 1
    assert text.index("first figures") < text.index("b figures")
    assert "2026-01-02 03:04 UTC" in text and "cores" in text and "bench.bench_a`" in text

    write_block(run("bench_a", "second figures\n"), doc)
    again = doc.read_text()
    assert "first figures" not in again and "second figures" in again
    assert again.index("second figures") < again.index("b figures"), "replaced in place"
    assert again.startswith(prose.rstrip("\n")) and again.count(HEADING) == 1

"""The generated part of ``docs/performance.md``: one block per benchmark, between markers.

Each block says when it was measured, on what machine (cores, processor model, kernel,
memory, Python), with which command, under what load, and holds the benchmark's own
output. Blocks are replaced in place when a benchmark runs again; a new one is appended
under :data:`HEADING`. Everything outside the markers is written by people and left as it
is.
"""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
HEADING = "## Figures from the last runs (generated)"
_INTRO = (
    "Written by `make bench` and `make soak` (`bench/run.py`, `bench/soak.py`): each block is "
    "replaced when its benchmark runs again. Edit the prose above, not these blocks."
)


def _begin(name: str) -> str:
    return f"<!-- generated: {name} (do not edit by hand) -->"


def _end(name: str) -> str:
    return f"<!-- end generated: {name} -->"


def machine() -> str:
    """Cores, processor model, kernel, memory and Python of this machine, on one line."""
    model = "unknown processor"
    memory = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({model}){memory}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Run:
    """One benchmark's run, as the block reports it."""

    name: str
    title: str
    command: str
    started: datetime
    seconds: float
    load_before: str
    load_after: str
    outcome: str
    """``completed``, or what went wrong (its exit status, a time limit)."""
    output: str


def render(run: Run) -> str:
    when = run.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        _begin(run.name),
        f"### {run.title}",
        "",
        f"* When: {when}, {run.seconds:.0f} s, {run.outcome}",
        f"* Machine: {machine()}",
        f"* Command: `{run.command}`",
        f"* Load average (1, 5, 15 min): {run.load_before} before, {run.load_after} after",
        "",
        "```text",
        run.output.rstrip().replace("```", "'''"),
        "```",
        _end(run.name),
    ]
    return "\n".join(lines)


def write_block(run: Run, doc: Path = DOC) -> None:
    """Puts ``run``'s block into ``doc``: in place of its previous one, else at the end of
    the generated part (which is created after the prose when missing)."""
    text = doc.read_text() if doc.exists() else "# Performance\n"
    block = render(run)
    pattern = re.compile(re.escape(_begin(run.name)) + r".*?" + re.escape(_end(run.name)), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        if HEADING not in text:
            text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{_INTRO}\n"
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text if text.endswith("\n") else text + "\n")

"""`locotui demo` as a person uses it: in a terminal (tmux), from the keyboard.

The fleet comes up healthy with real frame rates, a soft reset and a restart are done from
the keyboard and show their results, the log view shows the emulator's lines, and quitting
leaves no process behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests.support.console import fps_of, uptime_of
from tests.support.paths import ROOT
from tests.support.processes import descendants
from tests.support.supervisor import wait_gone
from tests.support.tmux import Tmux
from tests.support.waiting import poll_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("qemu"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]


@pytest.fixture
def demo(term: Tmux) -> Tmux:
    """``locotui demo`` with two instances in the terminal, from the repository."""
    term.start(
        [sys.executable, "-m", "locotui.cli", "demo", "--instances", "2", "--no-prometheus"],
        {"COLORTERM": "truecolor"},
        cwd=ROOT,
    )
    return term


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_demo_from_the_keyboard(demo: Tmux) -> None:
    term = demo
    screen = term.wait(
        lambda s: (
            s.count("● healthy") >= 2 and all((fps_of(s, n) or 0) > 5 for n in ("loco-1", "loco-2"))
        ),
        120,
        "two healthy tiles with a frame rate",
    )
    assert "backend ● live" in screen
    shell = int(poll_until(lambda: term.pid_file.read_text().strip(), 10, "the pane's shell"))
    pids = descendants(shell)
    assert len(pids) >= 6, "demo, two supervisors, two QEMUs, backend"

    # Soft reset of the focused (first) tile.
    term.keys("r")
    term.wait(lambda s: "Soft reset loco-1" in s, 10, "reset confirmation")
    term.keys("y")
    term.wait(lambda s: re.search(r"✔\s+loco-1\s+ok\s+system_reset sent", s), 15, "reset done")
    # Wait for Escape to land: a key typed right after it would arrive as Alt+key.
    term.keys("Escape")
    term.wait(lambda s: "Soft reset —" not in s, 10, "dialog closed")

    # Restart the second tile (resets and restarts of one instance are rate-limited):
    # a new QEMU, so its uptime starts again.
    before = uptime_of(term.screen(), "loco-2") or 0
    term.keys("l")  # vi-style: move right
    term.keys("R")
    term.wait(lambda s: "Restart QEMU of loco-2" in s, 10, "restart confirmation")
    term.keys("y")
    term.wait(lambda s: re.search(r"✔\s+loco-2\s+ok", s), 15, "restart done")
    term.keys("Escape")
    term.wait(lambda s: "Restart pod —" not in s, 10, "dialog closed")
    term.wait(
        lambda s: (u := uptime_of(s, "loco-2")) is not None and u < before,
        60,
        "loco-2 running again on a new QEMU",
    )

    # The log view shows the supervisor's own lines, including the restart.
    term.keys("L")
    logs = term.wait(lambda s: "QEMU started" in s and "logs" in s, 15, "log lines")
    assert "logs  loco-2" in logs, "the focused tile's logs"
    term.keys("Escape")
    term.wait(lambda s: "● healthy" in s, 10, "back to the tiles")

    # One of the demo's own processes dies: the console says so, and the instance stays
    # on screen as lost instead of vanishing.
    supervisor = next(p for p in pids if "emulator.cli" in _cmdline(p) and "loco-2" in _cmdline(p))
    os.kill(supervisor, signal.SIGKILL)
    screen = term.wait(
        lambda s: (
            f"demo: loco-2 (pid {supervisor}) killed by SIGKILL" in s and "supervisor lost" in s
        ),
        20,
        "the death said in the banner, the tile lost",
    )
    assert "loco-2" in screen

    term.keys("q")
    assert term.wait_exit(60, "the demo to exit") == 0
    assert wait_gone(pids, 30) == [], "quitting left processes behind"

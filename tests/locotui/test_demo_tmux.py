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
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.processes import descendants
from tests.support.supervisor import wait_gone

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("qemu"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]

ROOT = Path(__file__).resolve().parents[2]


class Terminal:
    def __init__(self, socket: str, session: str) -> None:
        self.socket, self.session = socket, session

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return out.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def wait(self, accept: Callable[[str], bool], deadline: float, what: str) -> str:
        end = time.monotonic() + deadline
        screen = ""
        while time.monotonic() < end:
            screen = self.screen()
            if accept(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{what} not on screen within {deadline:.0f} s:\n{screen}")


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[Terminal, Path]]:
    socket = f"loco-test-{uuid.uuid4().hex[:8]}"
    exit_file = tmp_path / "exit"
    term = Terminal(socket, "demo")
    command = (
        f"cd {ROOT} && COLORTERM=truecolor {sys.executable} -m locotui.cli demo "
        f"--instances 2 --no-prometheus; "
        f"echo $? > {exit_file}; sleep 600"
    )
    term.tmux("new-session", "-d", "-s", "demo", "-x", "160", "-y", "50", command)
    try:
        yield term, exit_file
    finally:
        term.tmux("kill-server")


def tile_value(screen: str, name: str, pattern: str) -> str | None:
    """The first match of ``pattern`` inside the tile titled ``name`` (tiles sit side by
    side, so only the columns under the title count)."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if f" {name} " not in line:
            continue
        title = line.index(f" {name} ")
        left = max(0, title - 2)  # the tile's left border
        ends = [p for p in (line.find("╮", title), line.find("┓", title)) if p >= 0]
        right = min(ends) + 1 if ends else len(line)
        for below in lines[i + 1 : i + 6]:
            match = re.search(pattern, below[left:right])
            if match:
                return match.group(1)
    return None


def fps_of(screen: str, name: str) -> float | None:
    value = tile_value(screen, name, r"(\d+\.\d) fps")
    return float(value) if value else None


def uptime_of(screen: str, name: str) -> int | None:
    value = tile_value(screen, name, r"up (\d+)s")
    return int(value) if value else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_demo_from_the_keyboard(terminal: tuple[Terminal, Path]) -> None:
    term, exit_file = terminal
    screen = term.wait(
        lambda s: (
            s.count("● healthy") >= 2 and all((fps_of(s, n) or 0) > 5 for n in ("loco-1", "loco-2"))
        ),
        120,
        "two healthy tiles with a frame rate",
    )
    assert "backend ● live" in screen
    pane = int(term.tmux("display-message", "-p", "-t", "demo", "#{pane_pid}").strip())
    pids = [p for p in descendants(pane) if "sleep" not in _cmdline(p)]
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
    end = time.monotonic() + 60
    while not exit_file.exists() and time.monotonic() < end:
        time.sleep(0.2)
    assert exit_file.read_text().strip() == "0"
    assert wait_gone(pids, 30) == [], "quitting left processes behind"

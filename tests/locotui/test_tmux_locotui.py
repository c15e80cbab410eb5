"""The real ``locotui`` binary in a real terminal (tmux), against a real backend.

Reads the screen with ``tmux capture-pane`` (deadline-bounded polling), sends keys, and
checks the process ends: after ``q``, and after the terminal goes away (SIGHUP).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backend import BackendProcess
from tests.support.console import TOKEN
from tests.support.fakefleet import FakeFleet
from tests.support.paths import BIN
from tests.support.processes import alive
from tests.support.tmux import Tmux, console_env
from tests.support.waiting import poll_until

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    tmp = tmp_path_factory.mktemp("tmux-stack")
    fleet = FakeFleet(["loco-0", "loco-1", "loco-2", "loco-3"], token=TOKEN).start()
    fleet.baseline()
    proc = BackendProcess.static(fleet.static_file(tmp / "static.json"), token=TOKEN).start()
    try:
        yield proc
    finally:
        proc.stop()
        fleet.stop()


def test_locotui_in_tmux_help_and_quit(backend: BackendProcess, term: Tmux, tmp_path: Path) -> None:
    term.start([str(BIN / "locotui"), "--backend", backend.url], console_env(tmp_path, TOKEN))
    pid = term.pid()
    screen = poll_until(
        lambda: (s := term.screen()).count("● healthy") == 3 and "◐ degraded" in s and s,
        60,
        "the fleet on screen",
        describe=term.screen,
    )
    assert "loco-0" in screen and "loco-3" in screen
    assert "backend ● live" in screen
    # Truecolor output (COLORTERM honoured): 24-bit SGR sequences on the wire.
    assert "38;2;" in term.screen(escapes=True)
    term.keys("?")
    # The whole help, painted (a capture can land between two writes of one frame).
    poll_until(
        lambda: (
            "keys (remap them" in (s := term.screen())
            and "soft_reset" in s
            and "rolling_restart" in s
        ),
        20,
        "help",
        describe=term.screen,
    )
    term.keys("Escape")
    poll_until(
        lambda: "keys (remap them" not in term.screen(), 20, "help closed", describe=term.screen
    )
    term.keys("q")
    poll_until(lambda: not alive(pid), 20, "locotui to exit after q", describe=term.screen)
    assert term.wait_exit(10) == 0


def test_closed_terminal_ends_the_process(
    backend: BackendProcess, term: Tmux, tmp_path: Path
) -> None:
    term.start([str(BIN / "locotui"), "--backend", backend.url], console_env(tmp_path, TOKEN))
    pid = term.pid()
    poll_until(lambda: "loco-0" in term.screen(), 60, "the console", describe=term.screen)
    # Killing the server closes the pty: the kernel sends SIGHUP to the session and its
    # foreground process group (the shell and the console, as when ssh drops).
    term.kill_server()
    poll_until(
        lambda: not alive(pid),
        15,
        "locotui to end after SIGHUP",
        describe=lambda: Path(f"/proc/{pid}/status").read_text() if alive(pid) else "",
    )


def test_copy_reaches_tmux_as_osc52_and_the_screen_dump(
    backend: BackendProcess, term: Tmux, tmp_path: Path
) -> None:
    """c writes the OSC 52 sequence: tmux (set-clipboard on) takes it into its paste
    buffer, which is what the operator's terminal would get. D writes the screen dump."""
    term.conf.write_text("set -g set-clipboard on\n")
    term.start(
        [str(BIN / "locotui"), "--backend", backend.url, "--read-only", "--view", "table"],
        console_env(tmp_path, TOKEN),
        size=(80, 24),
    )
    poll_until(lambda: "loco-3" in term.screen(), 60, "the fleet", describe=term.screen)

    def buffer() -> str:
        return term.tmux("show-buffer", check=False).stdout

    term.keys("j", "c")
    poll_until(lambda: buffer() == "loco-1", 20, "loco-1 in tmux's buffer", describe=buffer)
    term.keys("C")
    poll_until(
        lambda: buffer() == f"{backend.url}/api/instances/loco-1",
        20,
        "the URL in tmux's buffer",
        describe=buffer,
    )
    target = tmp_path / "dump"
    term.keys("D")
    poll_until(lambda: "save the screen" in term.screen(), 20, "the prompt", describe=term.screen)
    term.keys("BSpace")  # the default is selected: one key clears it
    poll_until(lambda: "locotui-dump-" not in term.screen(), 20, "cleared", describe=term.screen)
    term.keys("-l", str(target))
    poll_until(lambda: "/dump " in term.screen(), 20, "the path typed", describe=term.screen)
    term.keys("Enter")
    poll_until(lambda: (target / "screen.txt").exists(), 30, "the dump", describe=term.screen)
    text = (target / "screen.txt").read_text()
    assert "loco-0" in text and "READ-ONLY" in text
    assert (target / "screen.svg").exists()
    assert (target / "loco-0.png").read_bytes().startswith(b"\x89PNG")
    term.keys("q")

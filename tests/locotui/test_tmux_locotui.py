"""The real ``locotui`` binary in a real terminal (tmux), against a real backend.

Reads the screen with ``tmux capture-pane`` (deadline-bounded polling), sends keys, and
checks the process ends: after ``q``, and after the terminal goes away (SIGHUP).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.locotui.test_ui_support import TOKEN, BackendProcess, FakeFleet

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

BIN = Path(sys.executable).parent


class Tmux:
    """One tmux server on a private socket (never the user's), one session."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"locotui-test-{os.getpid()}-{id(self)}"
        self.session = "ui"
        self.tmp = tmp
        self.pid_file = tmp / "shell.pid"
        self.status_file = tmp / "locotui.status"
        self.conf = tmp / "tmux.conf"
        self.conf.write_text("")  # not the user's ~/.tmux.conf

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # COLUMNS/LINES (set inside pytest by a plugin) would win over the pane's real size
        # in shutil.get_terminal_size: keep them out of the tmux server's environment.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=10,
            env=env,
        )

    def start(
        self, argv: list[str], env: dict[str, str], size: tuple[int, int] = (160, 50)
    ) -> None:
        # A shell runs the console in the foreground, as a login shell would, and
        # records its exit status (tmux's pane_dead_status is not reliable).
        script = f"echo $$ > {self.pid_file}; {' '.join(argv)}; echo $? > {self.status_file}"
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        self.tmux(
            "new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y", str(size[1]),
            *env_args, "sh", "-c", script,
        )  # fmt: skip

    def screen(self, escapes: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", self.session] + (["-e"] if escapes else [])
        return self.tmux(*args, check=False).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def pid(self) -> int:
        """The console's pid: the child of the shell that runs it."""
        wait_until(
            lambda: self.pid_file.exists() and self.pid_file.read_text().strip(), 10, "pid file"
        )
        shell = int(self.pid_file.read_text())
        children = Path(f"/proc/{shell}/task/{shell}/children")
        found = wait_until(
            lambda: children.exists() and children.read_text().split(), 10, "the console process"
        )
        return int(found[0])

    def exit_status(self) -> int | None:
        text = self.status_file.read_text().strip() if self.status_file.exists() else ""
        return int(text) if text.isdigit() else None

    def kill_server(self) -> None:
        self.tmux("kill-server", check=False)


def wait_until(
    check: Callable[[], Any], timeout: float, what: str, describe: Callable[[], str] | None = None
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = f"\n{describe()}" if describe else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackendProcess]:
    tmp = tmp_path_factory.mktemp("tmux-stack")
    fleet = FakeFleet(["loco-0", "loco-1", "loco-2", "loco-3"], token=TOKEN).start()
    fleet.baseline()
    proc = BackendProcess(fleet.static_file(tmp / "static.json")).start()
    try:
        yield proc
    finally:
        proc.stop()
        fleet.stop()


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Tmux]:
    tmux = Tmux(tmp_path)
    try:
        yield tmux
    finally:
        tmux.kill_server()


def console_env(tmp: Path) -> dict[str, str]:
    return {
        "COLORTERM": "truecolor",
        "TERM": "tmux-256color",
        "HOME": str(tmp),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "KUBECONFIG": "",
        "LOCOTUI_CONTROL_TOKEN": TOKEN,
    }


def test_locotui_in_tmux_help_and_quit(backend: BackendProcess, term: Tmux, tmp_path: Path) -> None:
    term.start([str(BIN / "locotui"), "--backend", backend.url], console_env(tmp_path))
    pid = term.pid()
    screen = wait_until(
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
    wait_until(
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
    wait_until(
        lambda: "keys (remap them" not in term.screen(), 20, "help closed", describe=term.screen
    )
    term.keys("q")
    wait_until(lambda: not alive(pid), 20, "locotui to exit after q", describe=term.screen)
    wait_until(lambda: term.exit_status() is not None, 10, "the exit status")
    assert term.exit_status() == 0


def test_closed_terminal_ends_the_process(
    backend: BackendProcess, term: Tmux, tmp_path: Path
) -> None:
    term.start([str(BIN / "locotui"), "--backend", backend.url], console_env(tmp_path))
    pid = term.pid()
    wait_until(lambda: "loco-0" in term.screen(), 60, "the console", describe=term.screen)
    # Killing the server closes the pty: the kernel sends SIGHUP to the session and its
    # foreground process group (the shell and the console, as when ssh drops).
    term.kill_server()
    wait_until(
        lambda: not alive(pid),
        15,
        "locotui to end after SIGHUP",
        describe=lambda: Path(f"/proc/{pid}/status").read_text() if alive(pid) else "",
    )

"""A real terminal for console tests: one tmux server on a private socket, one session."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.waiting import poll_until


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
        self,
        argv: list[str],
        env: dict[str, str],
        size: tuple[int, int] = (160, 50),
        cwd: Path | None = None,
    ) -> None:
        """Runs ``argv`` in the session's pane, with ``env`` added to the environment."""
        # A shell runs the console in the foreground, as a login shell would, and
        # records its exit status (tmux's pane_dead_status is not reliable).
        script = f"echo $$ > {self.pid_file}; {' '.join(argv)}; echo $? > {self.status_file}"
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        # Started in the test's own directory unless told otherwise: whatever the program
        # writes relative to its working directory (a save, a dump) lands there, not in
        # the repository.
        self.tmux(
            "new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y", str(size[1]),
            "-c", str(cwd if cwd is not None else self.tmp), *env_args, "sh", "-c", script,
        )  # fmt: skip

    def screen(self, escapes: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", self.session] + (["-e"] if escapes else [])
        return self.tmux(*args, check=False).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def wait(self, accept: Callable[[str], object], timeout: float, what: str) -> str:
        """The screen, once ``accept`` holds for it; the failure shows the last screen."""

        def screen() -> str | None:
            text = self.screen()
            return text if accept(text) else None

        return poll_until(screen, timeout, what, describe=self.screen, interval=0.2)

    def pid(self) -> int:
        """The console's pid: the child of the shell that runs it."""
        poll_until(
            lambda: self.pid_file.exists() and self.pid_file.read_text().strip(), 10, "pid file"
        )
        shell = int(self.pid_file.read_text())
        children = Path(f"/proc/{shell}/task/{shell}/children")
        found = poll_until(
            lambda: children.exists() and children.read_text().split(), 10, "the console process"
        )
        return int(found[0])

    def exit_status(self) -> int | None:
        text = self.status_file.read_text().strip() if self.status_file.exists() else ""
        return int(text) if text.isdigit() else None

    def wait_exit(self, timeout: float, what: str = "the program's exit status") -> int:
        """The exit status once the shell has recorded it.

        The program's pid goes away a moment before the shell writes the status, so a
        test that saw the process die still has to wait for this.
        """
        status = poll_until(
            self.exit_status,
            timeout,
            what,
            describe=self.screen,
            accept=lambda s: s is not None,  # 0 is an answer
        )
        assert status is not None
        return status

    def kill_server(self) -> None:
        self.tmux("kill-server", check=False)


def console_env(tmp: Path, token: str | None = None) -> dict[str, str]:
    """A console's environment isolated from the user's (config, state, kubeconfig)."""
    env = {
        "COLORTERM": "truecolor",
        "TERM": "tmux-256color",
        "HOME": str(tmp),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "KUBECONFIG": "",
    }
    if token:
        env["LOCOTUI_CONTROL_TOKEN"] = token
    return env

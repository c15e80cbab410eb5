"""The backend killed and started again while an operator's console is open on it."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

import pytest

from tests.chaos.harness import TOKEN, local_fleet, status_is
from tests.support.processes import alive
from tests.support.tmux import Tmux, console_env
from tests.support.waiting import poll_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("qemu"),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]

BIN = Path(sys.executable).parent


async def test_the_console_rides_out_a_backend_restart(tmp_path: Path) -> None:
    async with local_fleet(tmp_path, ["r1", "r2"]) as fleet:
        term = Tmux(tmp_path)
        try:
            term.start(
                [str(BIN / "locotui"), "--backend", fleet.backend.url],
                console_env(tmp_path, TOKEN),
            )
            pid = term.pid()
            poll_until(
                lambda: term.screen().count("● healthy") == 2,
                60,
                "both emulators healthy on screen",
                describe=term.screen,
            )
            fleet.backend.stop(signal.SIGKILL)
            screen = poll_until(
                lambda: "BACKEND UNREACHABLE" in (s := term.screen()) and s,
                15,
                "the banner",
                describe=term.screen,
            )
            assert "r1" in screen and "r2" in screen, "last-known data stays on screen"
            fleet.backend.start()
            poll_until(
                lambda: (
                    "BACKEND UNREACHABLE" not in (s := term.screen())
                    and s.count("● healthy") == 2
                    and "backend ● live" in s
                ),
                30,
                "live again, both healthy",
                describe=term.screen,
            )
            assert alive(pid), "the console survived"
            for name in ("r1", "r2"):
                await fleet.watch.until(name, status_is("healthy"), 10, "healthy after")
            term.keys("q")
            poll_until(lambda: not alive(pid), 20, "the console to quit")
        finally:
            term.kill_server()

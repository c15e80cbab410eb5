"""`locotui demo --no-console`: the fleet comes up, two demos do not collide, and stopping
leaves nothing behind. (The console on top of it is driven in tmux by test_demo_tmux.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.processes import descendants
from tests.support.supervisor import wait_gone
from tests.support.waiting import GiveUp, poll_until

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qemu")]

ROOT = Path(__file__).resolve().parents[2]


def start_demo(tmp: Path, name: str, *args: str) -> tuple[subprocess.Popen[str], Path]:
    log = tmp / f"{name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "locotui.cli", "demo", "--no-console", "--no-prometheus", *args]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        text=True,
        env=env,
        cwd=ROOT,
        # Ctrl-C as from a terminal: a run started in the background (nohup, `&` in a
        # script) passes SIGINT down ignored, and the SIGINT this test sends would be lost.
        preexec_fn=_default_sigint,
    )
    return proc, log


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_line(log: Path, pattern: str, proc: subprocess.Popen[str], deadline: float) -> str:
    """The first group (or the whole match) of ``pattern`` once the demo logs it."""

    def line() -> str | None:
        match = re.search(pattern, log.read_text())
        if match:
            return match.group(1) if match.groups() else match.group(0)
        if proc.poll() is not None:
            raise GiveUp(f"demo exited {proc.returncode}:\n{log.read_text()}")
        return None

    found: str = poll_until(line, deadline, repr(pattern), describe=log.read_text)
    return found


def test_two_demos_side_by_side_then_nothing_left(tmp_path: Path) -> None:
    first, log1 = start_demo(tmp_path, "one", "--instances", "2")
    second, log2 = start_demo(tmp_path, "two", "--instances", "1")
    try:
        url1 = wait_for_line(log1, r"backend (http://\S+)", first, 120)
        url2 = wait_for_line(log2, r"backend (http://\S+)", second, 120)
        assert url1 != url2
        # The backend's address is printed when it starts, before the emulators are seen
        # healthy through it: wait for the demo to say so.
        wait_for_line(log1, r"backend ready", first, 120)
        wait_for_line(log2, r"backend ready", second, 120)
        fleet1 = httpx.get(f"{url1}/api/instances", timeout=5).json()["items"]
        fleet2 = httpx.get(f"{url2}/api/instances", timeout=5).json()["items"]
        assert sorted(i["name"] for i in fleet1) == ["loco-1", "loco-2"]
        assert [i["name"] for i in fleet2] == ["loco-1"]
        urls1 = {i["health_url"] for i in fleet1}
        assert not urls1 & {i["health_url"] for i in fleet2}, "two demos share a supervisor"
        assert all(i["status"] == "healthy" for i in fleet1 + fleet2)
        state1 = wait_for_line(log1, r"state and logs in (\S+)", first, 5)
        state2 = wait_for_line(log2, r"state and logs in (\S+)", second, 5)
        assert state1 != state2
        token_file = Path(state1) / "control-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text()
        assert token not in log1.read_text()
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert token not in ps, "the token must never be on a command line"
        pids = descendants(first.pid) + descendants(second.pid)
        assert len(pids) >= 3 * 2 + 2, "supervisors, their QEMUs and two backends"
    finally:
        for proc in (first, second):
            proc.send_signal(signal.SIGINT)
        codes = [proc.wait(60) for proc in (first, second)]
    assert codes == [130, 130]
    assert wait_gone(pids, 20) == [], "the demo left processes behind"
    assert not Path(state1).exists(), "its own state dir is removed"


def test_same_state_dir_is_refused_clearly(tmp_path: Path) -> None:
    state = tmp_path / "shared"
    first, log1 = start_demo(tmp_path, "one", "--instances", "1", "--state-dir", str(state))
    try:
        wait_for_line(log1, r"backend (http://\S+)", first, 120)
        second, log2 = start_demo(tmp_path, "two", "--instances", "1", "--state-dir", str(state))
        assert second.wait(60) == 1
        err = log2.read_text()
        assert f"state dir {state} is in use by another demo (pid {first.pid})" in err
        assert "Traceback" not in err
        assert first.poll() is None, "the first demo is untouched"
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) in (0, 130)
    assert state.exists(), "a state dir the user gave is kept"
    assert (state / "logs" / "loco-1.log").exists()

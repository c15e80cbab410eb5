"""QEMU killed, hung and resumed, hung for good: each seen within seconds and recovered."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.chaos.harness import local_fleet, status_is

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qemu")]


async def test_qemu_killed_is_seen_and_restarted(tmp_path: Path) -> None:
    async with local_fleet(tmp_path, ["k1", "k2"]) as fleet:
        sup = fleet.sup("k1")
        pid = sup.qemu_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await fleet.watch.until(
            "k1", status_is("unhealthy", "killed by SIGKILL"), 5, "the crash, with its cause"
        )
        inst, _ = await fleet.watch.until("k1", status_is("healthy"), 30, "healthy again")
        assert inst["health"]["qemu"]["restarts"] == 1
        assert inst["health"]["qemu"]["pid"] != pid
        assert fleet.watch.latest["k2"]["status"] == "healthy", "the neighbour is untouched"
        fleet.watch.assert_none_lost()


async def test_qemu_stopped_a_moment_is_unhealthy_then_healthy_without_a_restart(
    tmp_path: Path,
) -> None:
    async with local_fleet(tmp_path, ["s1"]) as fleet:
        pid = fleet.sup("s1").qemu_pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            await fleet.watch.until(
                "s1", status_is("unhealthy", "QMP does not answer"), 5, "the hang noticed"
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        inst, _ = await fleet.watch.until("s1", status_is("healthy"), 15, "healthy again")
        assert inst["health"]["qemu"]["pid"] == pid, "a short stop is not a reason to restart"
        assert inst["health"]["qemu"]["hangs"] == 0
        fleet.watch.assert_none_lost()


async def test_qemu_hung_for_good_is_killed_and_restarted(tmp_path: Path) -> None:
    async with local_fleet(tmp_path, ["h1"], args=["--hang-limit", "4"]) as fleet:
        pid = fleet.sup("h1").qemu_pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        await fleet.watch.until(
            "h1", status_is("unhealthy", "QMP does not answer"), 5, "the hang noticed"
        )
        inst, _ = await fleet.watch.until(
            "h1",
            lambda i: i["status"] == "healthy" and i["health"]["qemu"]["pid"] != pid,
            30,
            "a new QEMU, healthy",
        )
        qemu = inst["health"]["qemu"]
        assert qemu["hangs"] == 1 and qemu["last_exit"].startswith("hung: QMP silent")
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
        fleet.watch.assert_none_lost()

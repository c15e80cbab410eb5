"""A supervisor killed, a supervisor hung, and a second supervisor on a taken directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from emulator.errors import ExitCode
from tests.chaos.harness import TOKEN, local_fleet, status_is
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.supervisor import qemu_processes_for, wait_gone

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("qemu")]


async def test_a_killed_supervisor_is_shown_lost_until_forgotten_and_takes_qemu_along(
    tmp_path: Path,
) -> None:
    async with local_fleet(tmp_path, ["v1", "v2"]) as fleet:
        sup = fleet.sup("v1")
        qemu = qemu_processes_for(sup.state_dir)
        assert qemu
        sup.proc.send_signal(signal.SIGKILL)
        sup.proc.wait()
        inst, _ = await fleet.watch.until(
            "v1", lambda i: i.get("lost_since") is not None, 5, "shown lost"
        )
        assert inst["status"] == "unhealthy"
        assert f"(pid {sup.proc.pid}) ended without unregistering" in inst["status_reason"]
        assert inst["stale"] and inst["fps"] is None
        assert not wait_gone(qemu), "QEMU outlived its supervisor"
        # Still listed a while later: lost is a state, not a step on the way out.
        await fleet.watch.samples_pass(10)
        assert fleet.watch.latest["v1"]["lost_since"] == inst["lost_since"]
        fleet.watch.assert_none_lost()
        async with httpx.AsyncClient(trust_env=False) as client:
            resp = await client.delete(
                f"{fleet.backend.url}/api/instances/v1",
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        assert resp.status_code == 200, resp.text
        assert "v1" not in fleet.backend.instances()
        assert "v2" in fleet.backend.instances()
        fleet.supervisors.pop("v1")


async def test_a_hung_supervisor_is_unreachable_then_back(tmp_path: Path) -> None:
    async with local_fleet(tmp_path, ["u1"]) as fleet:
        sup = fleet.sup("u1")
        sup.proc.send_signal(signal.SIGSTOP)
        try:
            inst, _ = await fleet.watch.until(
                "u1", status_is("unhealthy", "supervisor unreachable"), 10, "unreachable"
            )
            assert inst["breaker"]["state"] == "open" and inst["stale"]
            assert inst.get("lost_since") is None, "a hung supervisor is not a dead one"
        finally:
            sup.proc.send_signal(signal.SIGCONT)
        await fleet.watch.until("u1", status_is("healthy"), 20, "healthy again")
        fleet.watch.assert_none_lost()


async def test_a_second_supervisor_on_a_taken_directory_exits_and_touches_nothing(
    tmp_path: Path,
) -> None:
    async with local_fleet(tmp_path, ["w1"]) as fleet:
        sup = fleet.sup("w1")
        state = sup.state_dir
        before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in state.iterdir()}
        registration = (state / "instance.json").read_bytes()
        qemu = qemu_processes_for(state)
        for extra in ([], ["--fresh-overlay"]):
            result = subprocess.run(
                [sys.executable, "-m", "emulator.cli", "run", "--disk", str(fleet.image),
                 "--state-dir", str(state), "--health-port", str(free_port()),
                 "--vnc", "127.0.0.1:99", "--name", "intruder",
                 "--log-file", str(state / "intruder.log"), *extra],
                capture_output=True, text=True, timeout=30, cwd=ROOT,
                env={**os.environ, "LOCO_CONTROL_TOKEN": TOKEN},
            )  # fmt: skip
            assert result.returncode == ExitCode.STATE_DIR_IN_USE, result.stderr
            assert f"in use by another supervisor (pid {sup.proc.pid})" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
        after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in state.iterdir()}
        assert after == before, "the second supervisor changed the directory"
        assert (state / "instance.json").read_bytes() == registration
        assert qemu_processes_for(state) == qemu, "a second QEMU was started"
        inst, _ = await fleet.watch.until("w1", status_is("healthy"), 5, "still healthy")
        assert inst["health"]["qemu"]["restarts"] == 0
        fleet.watch.assert_none_lost()

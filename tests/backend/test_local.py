"""Local discovery: registration files of supervisors on this machine, alive or lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.models import InstanceSource, InstanceStatus
from emulator.registration import LocalRegistration, remove_registration, write_registration
from emulator.statedir import LOCK_NAME, take_lock
from tests.backend.helpers import backend_for
from tests.support.fake_emulator import FakeEmulators
from tests.support.waiting import eventually

TOKEN = "local-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def register(root: Path, fake: FakeEmulators, name: str, pid: int | None = None) -> Path:
    """A registration as a supervisor writes it (the lock, which says it is alive, apart)."""
    state = root / name
    state.mkdir(parents=True, exist_ok=True)
    log_file = state / "supervisor.log"
    log_file.write_text(
        f'{{"level":"info","message":"{name} booting"}}\n'
        f'{{"level":"info","message":"{name} running"}}\n'
    )
    write_registration(
        state,
        LocalRegistration(
            name=name,
            health_url=fake.url(name),
            vnc="127.0.0.1:5901",
            pid=pid or os.getpid(),
            state_dir=str(state),
            log_file=str(log_file),
            started_at=datetime.now(UTC),
        ),
    )
    return state


def local_backend(tmp_path: Path, root: Path) -> Any:
    return backend_for(
        tmp_path / "unused.yaml",
        discovery=InstanceSource.LOCAL,
        local_dir=root,
        control_token=TOKEN,
    )


def hold(state: Path) -> int:
    """Holds the state directory as a live supervisor does; close the fd to 'die'."""
    return take_lock(state / LOCK_NAME)


async def test_registrations_come_and_go(tmp_path: Path) -> None:
    root = tmp_path / "state"
    async with FakeEmulators(["a", "b"], token=TOKEN) as fake:
        state_a = register(root, fake, "a")
        lock_a = hold(state_a)
        async with local_backend(tmp_path, root) as (runtime, client):
            fleet = runtime.fleet

            def status(name: str) -> InstanceStatus | None:
                inst = fleet.get(name)
                return inst.status if inst else None

            await eventually(lambda: status("a") is InstanceStatus.HEALTHY, fleet=fleet)
            assert sorted(fleet.names()) == ["a"]
            inst = fleet.get("a")
            assert inst is not None and inst.source is InstanceSource.LOCAL
            assert inst.logs_available and inst.vnc == "127.0.0.1:5901"
            assert inst.lost_since is None

            # restart = the supervisor's POST /restart, with the control token
            resp = await client.post("/api/instances/a/restart", headers=AUTH)
            assert resp.status_code == 200, resp.text
            assert fake.instances["a"].restarts == 1
            # logs = the registered log file
            resp = await client.get("/api/instances/a/logs", params={"tail": 1})
            assert resp.text == '{"level":"info","message":"a running"}\n'

            state_b = register(root, fake, "b")
            lock_b = hold(state_b)
            await eventually(lambda: status("b") is InstanceStatus.HEALTHY, fleet=fleet)
            # a clean exit unregisters: the instance leaves the list
            remove_registration(state_a)
            os.close(lock_a)
            await eventually(lambda: sorted(fleet.names()) == ["b"], fleet=fleet)
            os.close(lock_b)


async def test_a_supervisor_that_dies_is_lost_not_dropped_until_forgotten(
    tmp_path: Path,
) -> None:
    root = tmp_path / "state"
    # Polled supervisors: "not probed" is counted in probes (a lost streaming one's stream
    # is closed: tests/backend/test_streams.py).
    async with FakeEmulators(["a", "clock"], token=TOKEN, streams=False) as fake:
        state = register(root, fake, "a")
        lock = hold(state)
        clock_lock = hold(register(root, fake, "clock"))
        async with local_backend(tmp_path, root) as (runtime, client):
            fleet = runtime.fleet
            await eventually(
                lambda: (i := fleet.get("a")) is not None and i.status is InstanceStatus.HEALTHY,
                fleet=fleet,
            )
            resp = await client.delete("/api/instances/a", headers=AUTH)
            assert resp.status_code == 409, "a live instance is never forgotten"
            assert "not lost" in resp.json()["message"]

            os.close(lock)  # the supervisor dies without removing its registration
            lost = await eventually(
                lambda: (i := fleet.get("a")) is not None and i.lost_since is not None and i,
                fleet=fleet,
                what="a shown lost",
            )
            assert lost.status is InstanceStatus.UNHEALTHY
            assert lost.status_reason is not None
            assert "ended without unregistering" in lost.status_reason
            assert "a running" in lost.status_reason, "its last log line says what it did last"
            assert lost.stale and lost.fps is None, "its last health is last-known, not live"
            since = lost.lost_since
            probes = fake.instances["a"].probes
            # still listed, and not probed: over the time a live peer is probed five times
            clock = fake.instances["clock"]
            ticks = clock.probes + 5
            await eventually(lambda: clock.probes >= ticks, what="five probes of a live peer")
            again = fleet.get("a")
            assert again is not None and again.lost_since == since
            assert fake.instances["a"].probes == probes
            seq = fleet.seq

            resp = await client.delete("/api/instances/a")
            assert resp.status_code == 401, "forgetting is a mutation: token required"
            resp = await client.delete("/api/instances/a", headers=AUTH)
            assert resp.status_code == 200, resp.text
            assert resp.json()["action"] == "forget"
            assert fleet.get("a") is None and fleet.seq > seq
            assert not (state / "instance.json").exists()
            assert (state / "supervisor.log").exists(), "the state directory is kept"
            ticks = clock.probes + 3
            await eventually(lambda: clock.probes >= ticks, what="rescans after forgetting")
            assert fleet.get("a") is None, "a forgotten instance does not come back"
            os.close(clock_lock)


async def test_a_zombie_supervisor_counts_as_gone(tmp_path: Path) -> None:
    """A killed process that nobody reaped still has its pid; its lock is gone."""
    root = tmp_path / "state"
    async with FakeEmulators(["z"], token=TOKEN) as fake:
        state = register(root, fake, "z")
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, time; from pathlib import Path; from emulator.statedir import "
                "take_lock; take_lock(Path(sys.argv[1])); print('held', flush=True); "
                "time.sleep(600)",
                str(state / LOCK_NAME),
            ],
            stdout=subprocess.PIPE,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            async with local_backend(tmp_path, root) as (runtime, _client):
                fleet = runtime.fleet
                await eventually(
                    lambda: (
                        (i := fleet.get("z")) is not None and i.status is InstanceStatus.HEALTHY
                    ),
                    fleet=fleet,
                )
                os.kill(holder.pid, signal.SIGKILL)  # not waited for: a zombie now
                await eventually(
                    lambda: (i := fleet.get("z")) is not None and i.lost_since is not None,
                    fleet=fleet,
                    what="the zombie's instance shown lost",
                )
                assert Path(f"/proc/{holder.pid}").exists(), "the pid is still there"
        finally:
            holder.kill()
            holder.wait()

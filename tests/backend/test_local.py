"""Local discovery: registration files of supervisors on this machine."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from backend.models import InstanceSource, InstanceStatus
from emulator.registration import LocalRegistration, remove_registration, write_registration
from tests.backend.fake_emulator import FakeEmulators
from tests.backend.helpers import backend_for, eventually

TOKEN = "local-token"


def register(root: Path, fake: FakeEmulators, name: str, pid: int | None = None) -> Path:
    state = root / name
    state.mkdir(parents=True, exist_ok=True)
    log_file = state / "supervisor.log"
    log_file.write_text(f"{name} booting\n{name} running\n")
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


async def test_registrations_come_and_go(tmp_path: Path) -> None:
    root = tmp_path / "state"
    async with FakeEmulators(["a", "b"], token=TOKEN) as fake:
        state_a = register(root, fake, "a")
        # a leftover of a killed supervisor (its pid is gone) is ignored
        register(root, fake, "b", pid=2**22 + 12345)
        async with backend_for(
            tmp_path / "unused.yaml",
            discovery=InstanceSource.LOCAL,
            local_dir=root,
            control_token=TOKEN,
        ) as (runtime, client):
            fleet = runtime.fleet

            def status(name: str) -> InstanceStatus | None:
                inst = fleet.get(name)
                return inst.status if inst else None

            await eventually(lambda: status("a") is InstanceStatus.HEALTHY, fleet=fleet)
            assert sorted(fleet.names()) == ["a"]
            inst = fleet.get("a")
            assert inst is not None and inst.source is InstanceSource.LOCAL
            assert inst.logs_available and inst.vnc == "127.0.0.1:5901"

            # restart = the supervisor's POST /restart, with the control token
            resp = await client.post(
                "/api/instances/a/restart", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert resp.status_code == 200, resp.text
            assert fake.instances["a"].restarts == 1
            # logs = the registered log file
            resp = await client.get("/api/instances/a/logs", params={"tail": 1})
            assert resp.text == "a running\n"

            register(root, fake, "b")  # now with a live pid
            await eventually(lambda: status("b") is InstanceStatus.HEALTHY, fleet=fleet)
            remove_registration(state_a)
            await eventually(lambda: sorted(fleet.names()) == ["b"], fleet=fleet)

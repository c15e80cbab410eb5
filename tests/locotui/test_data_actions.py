"""Actions: confirmation texts, read-only, the audit log, and resets and restarts through
a real backend. Restarts through Kubernetes (per-target progress, RBAC denials, rolling
restarts) are tested against the real local cluster in tests/cluster/test_console_data.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.models import InstanceSource
from locotui.data.actions import (
    ActionKind,
    ActionRunner,
    AuditLog,
    Phase,
    Progress,
    describe,
)
from locotui.data.backend_client import BackendClient
from locotui.data.errors import Forbidden, ReadOnly
from locotui.data.fleet import FleetModel
from tests.support.backend import CONSOLE_DATA_ARGS, BackendProcess
from tests.support.builders import instance
from tests.support.fake_emulator import FakeEmulators, write_static


def test_describe_gives_the_exact_confirmation_text() -> None:
    assert describe(ActionKind.RESTART_POD, ["loco-emulator-2"], namespace="loco") == (
        "Delete pod loco-emulator-2 in namespace loco; its StatefulSet recreates it "
        "(the emulator reboots, ~45 s of downtime)."
    )
    assert describe("restart_pod", ["a", "b", "c"], namespace="loco", downtime=30) == (
        "Delete 3 pods in namespace loco (a, b, c); their StatefulSet recreates them "
        "(each emulator reboots, ~30 s of downtime)."
    )
    assert describe(ActionKind.RESTART_POD, ["loco-0"], mode="backend") == (
        "Restart QEMU of loco-0 through the backend (the emulator reboots, ~45 s of downtime)."
    )
    assert describe(ActionKind.RESTART_POD, ["p-1"], mode="backend_pod") == (
        "Delete pod p-1 through the backend (its service account); its StatefulSet recreates "
        "it (the emulator reboots, ~45 s of downtime)."
    )
    assert describe(ActionKind.SOFT_RESET, ["loco-0"]) == (
        "Soft reset loco-0 (QMP system_reset through the backend): the guest reboots in "
        "place, ~15 s without a usable picture; the pod keeps running."
    )
    many = [f"p{i}" for i in range(8)]
    assert "8 instances (p0, p1, p2, p3, p4 and 3 more)" in describe("soft_reset", many)
    assert describe(
        ActionKind.ROLLING_RESTART,
        ["loco-emulator-0"],
        namespace="loco",
        statefulsets=["loco-emulator"],
        replicas=9,
    ) == (
        "Rolling restart of StatefulSet loco-emulator in namespace loco: its 9 pods are "
        "replaced one at a time (each emulator reboots, ~45 s of downtime each, about "
        "~7 min in total)."
    )


async def test_read_only_refuses_and_is_audited() -> None:
    audit = AuditLog()
    runner = ActionRunner(audit=audit, read_only=True)
    with pytest.raises(ReadOnly, match="read-only mode: restart pod is disabled"):
        await runner.run(ActionKind.RESTART_POD, ["loco-emulator-0"])
    (entry,) = audit.entries
    assert entry.result == "refused" and entry.targets == ("loco-emulator-0",)


async def test_pausing_the_policy_is_an_audited_action(tmp_path: Path) -> None:
    refusing = ActionRunner(audit=AuditLog(), read_only=True)
    with pytest.raises(ReadOnly, match="pause remediation is disabled"):
        await refusing.pause_remediation(60, "racks")
    assert refusing.audit.entries[0].targets == ("auto-recovery",)
    assert refusing.audit.entries[0].result == "refused"
    # Without a backend: a failure that says why, audited.
    (alone,) = await ActionRunner().resume_remediation()
    assert alone.phase is Phase.FAILED and "no backend configured" in alone.message
    async with FakeEmulators(["loco-0"], token="tok") as fake:
        static = write_static(tmp_path / "s.yaml", fake)
        async with (
            BackendProcess.static(
                static, token="tok", extra=["--remediation"], timing=CONSOLE_DATA_ARGS
            ) as proc,
            BackendClient(proc.url, token="tok") as backend,
        ):
            fleet = FleetModel()
            audit = AuditLog(path=tmp_path / "audit.jsonl")
            runner = ActionRunner(backend=backend, audit=audit, fleet=fleet)
            seen: list[Progress] = []
            (paused,) = await runner.pause_remediation(15, "moving racks", seen.append)
            assert [p.phase for p in seen] == [Phase.RUNNING, Phase.OK]
            assert paused.message.startswith("now PAUSED until ")
            assert paused.message.endswith("(by 127.0.0.1: moving racks)")
            # The answer is the new state, in the model at once.
            assert fleet.remediation is not None and fleet.remediation.paused
            (resumed,) = await runner.resume_remediation()
            assert resumed.phase is Phase.OK and resumed.message == "now on"
            assert fleet.remediation.enabled and not fleet.remediation.paused
    lines = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(x["action"], x["result"]) for x in lines] == [
        ("pause_remediation", "ok"),
        ("resume_remediation", "ok"),
    ]
    assert "moving racks" in lines[0]["details"][0]


async def test_soft_reset_and_backend_restart(tmp_path: Path) -> None:
    async with FakeEmulators(["loco-0", "loco-1"], token="tok") as fake:
        static = write_static(tmp_path / "s.yaml", fake)
        async with BackendProcess.static(static, token="tok", timing=CONSOLE_DATA_ARGS) as proc:
            fleet = FleetModel()
            for name in ("loco-0", "loco-1"):
                fleet.upsert(instance(name, source=InstanceSource.STATIC))
            async with BackendClient(proc.url, token="tok") as backend:
                runner = ActionRunner(backend=backend, fleet=fleet)
                assert runner.mode_for("loco-0") == "backend"
                progress = [p async for p in runner.stream(ActionKind.SOFT_RESET, ["loco-0"])]
                assert [p.phase for p in progress] == [Phase.PENDING, Phase.RUNNING, Phase.OK]
                assert fake.instances["loco-0"].resets == 1
                assert runner.describe(ActionKind.RESTART_POD, ["loco-1"]).startswith(
                    "Restart QEMU of loco-1 through the backend"
                )
                (r,) = await runner.run(ActionKind.RESTART_POD, ["loco-1"])
                assert r.phase is Phase.OK and fake.instances["loco-1"].restarts == 1
            async with BackendClient(proc.url, token="wrong") as bad:
                (r,) = await ActionRunner(backend=bad).run(ActionKind.SOFT_RESET, ["loco-0"])
                assert r.phase is Phase.FAILED and isinstance(r.error, Forbidden)
                assert (
                    r.message
                    == "reset loco-0: the control token is wrong (check LOCOTUI_CONTROL_TOKEN)"
                )

"""Actions: confirmation texts, read-only, per-target progress and the audit log, run
against the Kubernetes simulator and a real backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
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
from locotui.data.kube_client import KubeClient
from tests.backend.fake_emulator import FakeEmulators
from tests.backend.helpers import write_static
from tests.kubesim import KubeSim
from tests.locotui.test_data_support import BackendProcess, instance


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with KubeSim(namespace="loco", emulators=3, kubeconfig=tmp_path / "kubeconfig") as s:
        s.wait_pods_ready(3)
        yield s


@pytest.fixture
async def kube(sim: KubeSim) -> AsyncIterator[KubeClient]:
    client = await KubeClient.aconnect(sim.kubeconfig)
    yield client
    await client.aclose()


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
            BackendProcess(static, token="tok", extra=["--remediation"]) as proc,
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


async def test_restart_pods_with_progress_and_audit(
    sim: KubeSim, kube: KubeClient, tmp_path: Path
) -> None:
    audit = AuditLog(path=tmp_path / "audit.jsonl")
    seen: list[Progress] = []
    audit_seen: list[object] = []
    audit.subscribe(audit_seen.append)
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()}
    runner = ActionRunner(kube=kube, audit=audit, poll=0.02, ready_timeout=20)
    assert runner.describe(ActionKind.RESTART_POD, ["loco-emulator-0"]).startswith(
        "Delete pod loco-emulator-0 in namespace loco;"
    )
    results = await runner.run(
        ActionKind.RESTART_POD, ["loco-emulator-0", "loco-emulator-1"], seen.append
    )
    assert {r.target: r.phase for r in results} == {
        "loco-emulator-0": Phase.OK,
        "loco-emulator-1": Phase.OK,
    }
    assert all("recreated and Ready" in r.message for r in results)
    phases = [p.phase for p in seen if p.target == "loco-emulator-0"]
    assert phases[0] is Phase.PENDING and phases[-1] is Phase.OK and Phase.RUNNING in phases
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods()}
    assert after["loco-emulator-0"] != uids["loco-emulator-0"]
    assert after["loco-emulator-2"] == uids["loco-emulator-2"]
    (entry,) = audit.entries
    assert entry.result == "ok" and entry.error is None and len(entry.details) == 2
    assert audit_seen == [entry]
    saved = json.loads((tmp_path / "audit.jsonl").read_text())
    assert saved["action"] == "restart_pod" and saved["result"] == "ok"


async def test_rbac_denial_and_partial_failure_are_reported_per_target(sim: KubeSim) -> None:
    ro = await KubeClient.aconnect(sim.kubeconfig, context=sim.context_for(sim.readonly))
    audit = AuditLog()
    try:
        results = await ActionRunner(kube=ro, audit=audit).run(
            ActionKind.RESTART_POD, ["loco-emulator-0"]
        )
    finally:
        await ro.aclose()
    (r,) = results
    assert r.phase is Phase.FAILED and isinstance(r.error, Forbidden)
    assert 'User "kubesim-readonly" cannot delete resource "pods"' in r.message
    assert audit.entries[-1].result == "failed" and "RBAC denied" in (audit.entries[-1].error or "")

    admin = await KubeClient.aconnect(sim.kubeconfig)
    try:
        runner = ActionRunner(kube=admin, audit=audit, wait_ready=False)
        results = await runner.run(ActionKind.RESTART_POD, ["loco-emulator-1", "ghost"])
    finally:
        await admin.aclose()
    by = {r.target: r for r in results}
    assert by["loco-emulator-1"].phase is Phase.OK and "deleted" in by["loco-emulator-1"].message
    assert by["ghost"].phase is Phase.FAILED and 'pods "ghost" not found' in by["ghost"].message
    assert audit.entries[-1].result == "partial"


async def test_rolling_restart_follows_the_rollout(sim: KubeSim, kube: KubeClient) -> None:
    uids = {p["metadata"]["uid"] for p in sim.pods()}
    runner = ActionRunner(kube=kube, poll=0.05, ready_timeout=30)
    seen = [p async for p in runner.stream(ActionKind.ROLLING_RESTART, ["loco-emulator-0"])]
    assert seen[-1].target == "loco-emulator" and seen[-1].phase is Phase.OK
    assert "all 3 pods replaced" in seen[-1].message
    assert not uids & {p["metadata"]["uid"] for p in sim.pods()}
    assert runner.audit.entries[-1].targets == ("loco-emulator-0",)
    # Without Kubernetes access it fails clearly.
    (r,) = await ActionRunner().run(ActionKind.ROLLING_RESTART, ["x"])
    assert r.phase is Phase.FAILED and "needs Kubernetes access" in r.message


async def test_soft_reset_and_backend_restart(tmp_path: Path) -> None:
    async with FakeEmulators(["loco-0", "loco-1"], token="tok") as fake:
        static = write_static(tmp_path / "s.yaml", fake)
        async with BackendProcess(static, token="tok") as proc:
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

"""``/api/remediation`` and the timeline: the HTTP contract, with fake supervisors.

The ladder itself is shown on real emulators (tests/chaos/test_remediation.py); here the
policy is driven by a fake supervisor's reported status, with the failure made by hand.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from backend.models import RemediationStatus
from emulator.models import OverallStatus
from tests.backend.helpers import JsonLines, backend_for
from tests.support.fake_emulator import FakeEmulators, write_static
from tests.support.waiting import eventually

TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# A fleet of one: one unhealthy instance is all of it (the fraction budget allows one).
ON = {
    "control_token": TOKEN,
    "remediation": True,
    "remediation_interval": 0.1,
    "remediation_cooldown": 0.1,
    "remediation_thresholds": {
        "testimage": {"bad_for": 0.3, "watch_reset": 60, "recovered_for": 0.3}
    },
}


@pytest.fixture
async def fake() -> FakeEmulators:
    async with FakeEmulators(["loco-0"], token=TOKEN) as f:
        yield f  # type: ignore[misc]


def degrade(fake: FakeEmulators) -> None:
    """QEMU runs, the guest is not right: what the policy acts on."""
    inst = fake.instances["loco-0"]
    inst.qemu_ok = True
    inst.reasons = ["display is blank"]
    inst.overall_status = OverallStatus.DEGRADED


async def status(client: httpx.AsyncClient) -> RemediationStatus:
    resp = await client.get("/api/remediation")
    assert resp.status_code == 200, resp.text
    return RemediationStatus.model_validate_json(resp.content)


async def test_off_by_default(tmp_path: Path, fake: FakeEmulators) -> None:
    path = write_static(tmp_path / "f.yaml", fake)
    async with backend_for(path, control_token=TOKEN) as (_runtime, client):
        got = await status(client)
        assert not got.enabled and not got.leader
        resp = await client.post("/api/remediation/pause", headers=AUTH)
        assert resp.status_code == 409 and "--remediation" in resp.json()["message"]
        assert "loco_remediation_enabled 0.0" in (await client.get("/metrics")).text


async def test_an_unhealthy_instance_is_reset_and_the_timeline_says_so(
    tmp_path: Path, fake: FakeEmulators
) -> None:
    path = write_static(tmp_path / "f.yaml", fake)
    async with backend_for(path, **ON) as (runtime, client):
        got = await status(client)
        assert got.enabled and got.leader and got.holder == got.identity
        await eventually(lambda: runtime.fleet.get("loco-0") is not None, fleet=runtime.fleet)
        degrade(fake)
        await eventually(lambda: fake.instances["loco-0"].resets == 1, what="the reset")
        inst = await eventually(lambda: runtime.fleet.get("loco-0").remediation)  # type: ignore[union-attr]
        assert inst.rung == "reset"
        fake.instances["loco-0"].overall_status = OverallStatus.HEALTHY
        await eventually(
            lambda: runtime.fleet.get("loco-0").remediation is None,  # type: ignore[union-attr]
            what="off the ladder once healthy",
        )
        timeline = (await client.get("/api/instances/loco-0/timeline")).json()
        kinds = [(e["kind"], e["text"].split(":")[0]) for e in timeline]
        assert ("remediation", "reset (acted)") in kinds, kinds
        assert any(k == "remediation" and t.startswith("recovered") for k, t in kinds), kinds
        assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
        # A person's action lands on the same timeline.
        resp = await client.post("/api/instances/loco-0/restart", headers=AUTH)
        assert resp.status_code == 200
        timeline = (await client.get("/api/instances/loco-0/timeline")).json()
        assert timeline[-1]["kind"] == "action" and timeline[-1]["by"] == "127.0.0.1"
        assert (await client.get("/api/instances/nope/timeline")).status_code == 404


async def test_pause_and_resume_are_guarded_and_audited(
    tmp_path: Path, fake: FakeEmulators
) -> None:
    path = write_static(tmp_path / "f.yaml", fake)
    with JsonLines("backend.audit") as audit:
        async with backend_for(path, **ON) as (runtime, client):
            assert (await client.post("/api/remediation/pause")).status_code == 401
            wrong = {"Authorization": "Bearer wrong"}
            assert (await client.post("/api/remediation/pause", headers=wrong)).status_code == 403
            bad = await client.post("/api/remediation/pause", json={"minutes": -1}, headers=AUTH)
            assert bad.status_code == 422
            resp = await client.post(
                "/api/remediation/pause",
                json={"minutes": 60, "reason": "moving racks"},
                headers=AUTH,
            )
            assert resp.status_code == 200, resp.text
            got = RemediationStatus.model_validate_json(resp.content)
            assert got.paused and got.paused_reason == "moving racks"
            assert got.paused_until is not None and got.paused_by == "127.0.0.1"
            metrics = (await client.get("/metrics")).text
            assert "loco_remediation_paused 1.0" in metrics
            # Paused: a failure is reported, not acted on.
            degrade(fake)
            await eventually(
                lambda: runtime.fleet.get("loco-0").status.value == "degraded",  # type: ignore[union-attr]
                fleet=runtime.fleet,
            )
            resp = await client.post("/api/remediation/resume", headers=AUTH)
            assert resp.status_code == 200 and not resp.json()["paused"]
            await eventually(lambda: fake.instances["loco-0"].resets == 1, what="acted after")
    actions = [(x["context"]["action"], x["context"]["result"]) for x in audit.parsed()]
    assert actions[:5] == [
        ("remediation pause", "unauthorized"),
        ("remediation pause", "forbidden"),
        ("remediation pause", "ok"),
        ("remediation resume", "ok"),
        ("remediation reset", "acted"),
    ], actions
    assert all(TOKEN not in line for line in audit.lines)

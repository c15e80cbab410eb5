"""The automatic recovery on real emulators: each rung of the ladder, the budgets, dry run.

A guest is made to stop drawing over its serial port (the test image freezes its picture
on ``f``); the backend's policy sees the measured 0 frames/s and climbs. Thresholds are
shortened with the same ``--remediation-thresholds`` setting operators use, so a test
takes a minute, not ten. A frozen guest reads 0 frames/s a few seconds after it froze;
``recovered_for`` is set longer than that plus ``frozen_for`` where a test refreezes a
guest after an action, so the policy sees one incident, not two.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.chaos.harness import TOKEN, EventLog, Fleet, local_fleet, status_is

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("remediation")]

FAST = "testimage.bad_for=2,testimage.frozen_for=2"


def policy(thresholds: str, *extra: str) -> list[str]:
    return [
        "--remediation",
        "--remediation-thresholds",
        f"{FAST},{thresholds}",
        "--remediation-cooldown",
        "3",
        *extra,
    ]


def drawing(inst: dict[str, Any]) -> bool:
    return (inst.get("fps") or 0) > 0


def still(inst: dict[str, Any]) -> bool:
    return inst.get("fps") == 0


def resets_in_log(fleet: Fleet, name: str) -> int:
    """``system_reset``s the supervisor carried out (its audit lines)."""
    count = 0
    for line in fleet.sup(name).log().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == "emulator.audit" and entry.get("message") == "reset":
            count += 1
    return count


async def remediation_status(fleet: Fleet) -> dict[str, Any]:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        resp = await client.get(f"{fleet.backend.url}/api/remediation")
        resp.raise_for_status()
        return resp.json()


async def metrics_text(fleet: Fleet) -> str:
    async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
        return (await client.get(f"{fleet.backend.url}/metrics")).text


def on_rung(rung: str | None) -> Callable[[dict[str, Any]], bool]:
    def accept(inst: dict[str, Any]) -> bool:
        info = inst.get("remediation")
        return (info or {}).get("rung") == rung if rung else info is None

    return accept


async def test_a_frozen_guest_is_reset_and_recovers(tmp_path: Path) -> None:
    args = policy("testimage.watch_reset=30,testimage.recovered_for=4")
    async with local_fleet(tmp_path, ["r1", "r2"], backend_args=args) as fleet:
        events = EventLog(fleet.backend).start()
        try:
            await fleet.sup("r1").freeze_picture()
            reset = await events.until("r1", "reset", "acted", 60)
            assert "no new frame" in reset["reason"]
            await fleet.watch.until("r1", on_rung("reset"), 5, "the rung on the instance")
            await fleet.watch.until("r1", drawing, 20, "drawing again after the reset")
            await events.until("r1", "recovered", "acted", 30)
            await fleet.watch.until("r1", on_rung(None), 5, "off the ladder")
            assert resets_in_log(fleet, "r1") == 1
            assert events.of("r2") == [], "the healthy neighbour is left alone"
            timeline = httpx.get(
                f"{fleet.backend.url}/api/instances/r1/timeline", trust_env=False
            ).json()
            texts = [e["text"] for e in timeline]
            assert any(t.startswith("reset (acted)") for t in texts), texts
            assert any(t.startswith("recovered") for t in texts), texts
            text = await metrics_text(fleet)
            assert (
                'loco_remediation_actions_total{action="reset",outcome="acted",reason="frozen"} 1.0'
                in text
            )
        finally:
            await events.stop()
        fleet.watch.assert_none_lost()


async def test_the_whole_ladder_reset_restart_then_a_person(tmp_path: Path) -> None:
    args = policy("testimage.watch_reset=25,testimage.watch_restart=25,testimage.recovered_for=60")
    async with local_fleet(tmp_path, ["l1"], backend_args=args) as fleet:
        sup = fleet.sup("l1")
        events = EventLog(fleet.backend).start()
        try:
            first_qemu = sup.qemu_pid()
            await sup.freeze_picture()
            await events.until("l1", "reset", "acted", 40)
            # Drawing again after the reboot; frozen once more: the reset did not help.
            await fleet.watch.until("l1", drawing, 20, "drawing after the reset")
            await sup.freeze_picture()
            restart = await events.until("l1", "restart", "acted", 60)
            assert restart["rung"] == "restart"
            await fleet.watch.until(
                "l1",
                lambda i: (
                    (i.get("health") or {}).get("qemu", {}).get("pid") not in (None, first_qemu)
                    and drawing(i)
                ),
                30,
                "a new QEMU, drawing",
            )
            await sup.freeze_picture()
            gave_up = await events.until("l1", "give_up", "acted", 60)
            assert gave_up["rung"] == "needs_person"
            await fleet.watch.until("l1", on_rung("needs_person"), 5, "needs a person")
            status = await remediation_status(fleet)
            assert status["needing_a_person"] == ["l1"]
            assert 'loco_remediation_needs_person{instance="l1"} 1.0' in await metrics_text(fleet)
            # Given up means given up: still frozen, and nothing more is done.
            await fleet.watch.samples_pass(25)
            assert events.of("l1") == [
                ("reset", "acted"),
                ("restart", "acted"),
                ("give_up", "acted"),
            ]
        finally:
            await events.stop()


async def test_a_fleet_failing_at_once_is_treated_a_few_at_a_time(tmp_path: Path) -> None:
    """Four instances frozen together, at most 25 % of the fleet in remediation: one at a
    time. At most one action per instance an hour: a second freeze is given up on."""
    names = ["b1", "b2", "b3", "b4"]
    args = policy(
        "testimage.watch_reset=30,testimage.recovered_for=4",
        "--remediation-max-fraction",
        "0.25",
        "--remediation-max-actions",
        "1",
    )
    async with local_fleet(tmp_path, names, backend_args=args) as fleet:
        events = EventLog(fleet.backend).start()
        try:
            for name in names:
                await fleet.sup(name).freeze_picture()
            for name in names:
                await events.until(name, "recovered", "acted", 150)
            in_remediation, most = set(), 0
            for e in events.remediation:
                if e["outcome"] == "acted" and e["action"] == "reset":
                    in_remediation.add(e["instance"])
                elif e["action"] == "recovered":
                    in_remediation.discard(e["instance"])
                most = max(most, len(in_remediation))
            assert most == 1, events.remediation
            skipped = [e for e in events.remediation if e["outcome"] == "skipped_budget"]
            assert skipped, "the others were held back, and said so"
            for name in names:
                assert events.of(name).count(("reset", "acted")) == 1
            # b1 freezes again within the hour: its one action is spent.
            await fleet.sup("b1").freeze_picture()
            gave_up = await events.until("b1", "give_up", "acted", 40)
            assert "in the last hour" in gave_up["reason"]
            assert events.of("b1").count(("reset", "acted")) == 1
        finally:
            await events.stop()


async def test_dry_run_reports_everything_and_changes_nothing(tmp_path: Path) -> None:
    args = policy("testimage.watch_reset=6,testimage.watch_restart=6", "--remediation-dry-run")
    async with local_fleet(tmp_path, ["d1"], backend_args=args) as fleet:
        sup = fleet.sup("d1")
        events = EventLog(fleet.backend).start()
        try:
            qemu = sup.qemu_pid()
            await sup.freeze_picture()
            await events.until("d1", "reset", "dry_run", 40)
            await events.until("d1", "restart", "dry_run", 20)
            await events.until("d1", "give_up", "acted", 20)
            inst = fleet.watch.latest["d1"]
            assert still(inst), "nobody reset it: still frozen"
            assert inst["health"]["qemu"]["pid"] == qemu
            assert inst["health"]["qemu"]["restarts"] == 0
            assert resets_in_log(fleet, "d1") == 0
            assert (await remediation_status(fleet))["dry_run"] is True
        finally:
            await events.stop()


async def test_pause_holds_the_policy_and_resume_lets_it_act(tmp_path: Path) -> None:
    args = policy("testimage.watch_reset=30,testimage.recovered_for=4")
    async with local_fleet(tmp_path, ["p1"], backend_args=args) as fleet:
        url = fleet.backend.url
        events = EventLog(fleet.backend).start()
        try:
            async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
                refused = await client.post(f"{url}/api/remediation/pause")
                assert refused.status_code == 401
                paused = await client.post(
                    f"{url}/api/remediation/pause",
                    json={"minutes": 30, "reason": "maintenance"},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert paused.status_code == 200, paused.text
                assert paused.json()["paused"] is True
                await fleet.sup("p1").freeze_picture()
                skipped = await events.until("p1", "reset", "skipped_paused", 40)
                assert "paused" in skipped["reason"]
                await fleet.watch.samples_pass(15)
                assert ("reset", "acted") not in events.of("p1")
                resumed = await client.post(
                    f"{url}/api/remediation/resume",
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert resumed.json()["paused"] is False
            await events.until("p1", "reset", "acted", 10)
            await fleet.watch.until("p1", status_is("healthy"), 30, "healthy after the reset")
            audit = fleet.backend.log_path.read_text()
            assert "remediation pause" in audit and "remediation resume" in audit
            assert TOKEN not in audit
        finally:
            await events.stop()

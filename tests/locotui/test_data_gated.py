"""The health-gated rolling restart's state machine, with a fake clock and fleet."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from locotui.data.gated import GatedRollout, InstanceStep, Observation, RolloutState, drive
from tests.support.builders import NOW

OLD = NOW - timedelta(hours=2)


class Fleet:
    """Instances that come back when told to, at the frame rate they are told."""

    def __init__(self, names: list[str]) -> None:
        self.seen = {n: Observation(True, 25.0, OLD) for n in names}
        self.restarts: list[str] = []

    def restart(self, name: str) -> None:
        self.restarts.append(name)
        self.seen[name] = Observation(False, None, OLD)  # going down, still the old pod

    def back(self, name: str, fps: float = 25.0, healthy: bool = True, minute: int = 1) -> None:
        self.seen[name] = Observation(healthy, fps, NOW + timedelta(minutes=minute))


def run_to(rollout: GatedRollout, fleet: Fleet, now: float) -> list[str]:
    names = rollout.step(now, fleet.seen)
    for n in names:
        fleet.restart(n)
        rollout.restarted(n)
    return names


def test_one_at_a_time_each_only_when_back_healthy_and_at_target() -> None:
    fleet = Fleet(["a", "b", "c"])
    r = GatedRollout(["a", "b", "c"], target_fps=20, settle=10, timeout=300)
    assert run_to(r, fleet, 0) == ["a"]
    assert run_to(r, fleet, 5) == []  # a is still down
    fleet.back("a", fps=4.0)  # back, but drawing 4 fps: not good enough
    assert run_to(r, fleet, 20) == [] and r.items["a"].step is InstanceStep.RESTARTING
    assert "4.0 fps" in r.items["a"].note
    fleet.back("a", fps=24.0)
    assert run_to(r, fleet, 30) == [] and r.items["a"].step is InstanceStep.SETTLING
    assert run_to(r, fleet, 39) == []  # settling for 10 s
    assert run_to(r, fleet, 40) == ["b"] and r.items["a"].step is InstanceStep.DONE
    fleet.back("b")
    run_to(r, fleet, 41)
    assert run_to(r, fleet, 51) == ["c"]
    fleet.back("c")
    run_to(r, fleet, 52)
    assert run_to(r, fleet, 62) == [] and r.state is RolloutState.DONE
    assert fleet.restarts == ["a", "b", "c"]
    assert r.summary() == "done: 3/3 done"


def test_stops_at_the_first_instance_that_does_not_come_back() -> None:
    fleet = Fleet(["a", "b", "c"])
    r = GatedRollout(["a", "b", "c"], target_fps=20, settle=5, timeout=60)
    run_to(r, fleet, 0)
    fleet.back("a", healthy=False, fps=None)  # type: ignore[arg-type]
    assert run_to(r, fleet, 59) == []
    assert run_to(r, fleet, 60) == [] and r.state is RolloutState.STOPPED
    assert r.items["a"].step is InstanceStep.FAILED and "not back after 60 s" in r.items["a"].note
    assert run_to(r, fleet, 1000) == [] and fleet.restarts == ["a"]
    assert "stopped at a" in r.summary()


def test_a_dip_while_settling_starts_the_settling_again() -> None:
    fleet = Fleet(["a", "b"])
    r = GatedRollout(["a", "b"], target_fps=20, settle=10)
    run_to(r, fleet, 0)
    fleet.back("a")
    run_to(r, fleet, 1)
    fleet.back("a", fps=2.0)
    run_to(r, fleet, 8)
    fleet.back("a")
    run_to(r, fleet, 9)
    assert run_to(r, fleet, 18) == []  # 9 s steady, not 10
    assert run_to(r, fleet, 19) == ["b"]


def test_the_old_incarnation_does_not_count_as_back() -> None:
    fleet = Fleet(["a", "b"])
    r = GatedRollout(["a", "b"], target_fps=20, settle=0, timeout=30)
    run_to(r, fleet, 0)
    fleet.seen["a"] = Observation(True, 25.0, OLD)  # still the old pod, healthy
    assert run_to(r, fleet, 10) == [] and r.items["a"].step is InstanceStep.RESTARTING


def test_batches_pause_resume_abort() -> None:
    fleet = Fleet(["a", "b", "c", "d", "e"])
    r = GatedRollout(list(fleet.seen), target_fps=20, batch=2, settle=0)
    assert run_to(r, fleet, 0) == ["a", "b"]
    fleet.back("a")
    assert run_to(r, fleet, 1) == []  # b is not back yet: the batch waits
    r.pause()
    fleet.back("b")
    assert run_to(r, fleet, 2) == [] and r.state is RolloutState.PAUSED
    assert r.counts()[InstanceStep.DONE] == 2  # watched while paused
    r.resume()
    assert run_to(r, fleet, 3) == ["c", "d"]
    r.abort()
    assert run_to(r, fleet, 4) == [] and r.state is RolloutState.ABORTED
    assert fleet.restarts == ["a", "b", "c", "d"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        GatedRollout([], target_fps=10)
    with pytest.raises(ValueError):
        GatedRollout(["a"], target_fps=10, batch=0)


async def test_drive_restarts_reports_failures_and_wakes_on_changes() -> None:
    fleet = Fleet(["a", "b"])
    clock = [0.0]
    wake = asyncio.Event()
    r = GatedRollout(["a", "b"], target_fps=20, settle=0, timeout=100)

    async def restart(name: str) -> None:
        if name == "b":
            raise RuntimeError('pods "b" is forbidden')
        fleet.restart(name)
        fleet.back(name)  # comes straight back
        wake.set()

    async def changed(timeout: float) -> None:
        clock[0] += timeout  # the fake clock moves by the longest wait
        wake.clear()

    await asyncio.wait_for(
        drive(
            r,
            restart=restart,
            observe=lambda: fleet.seen,
            monotonic=lambda: clock[0],
            changed=changed,
        ),
        5,
    )
    assert r.state is RolloutState.STOPPED
    assert r.items["a"].step is InstanceStep.DONE
    assert r.items["b"].note == 'restart failed: pods "b" is forbidden'

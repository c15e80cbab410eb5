"""Pilot and snapshots: the health-gated rolling restart (G) against a fake fleet whose
instances come back after a restart — or come back drawing 2 fps."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot

from backend.models import ActionResult, Instance, InstanceStatus
from locotui.data.actions import ActionKind
from locotui.data.gated import InstanceStep, RolloutState
from locotui.ui.app import LocoApp
from locotui.ui.clock import FrozenClock
from locotui.ui.screens.gated import GatedScreen
from locotui.ui.screens.prompt import AskScreen
from tests.support.builders import NOW, demo_instances, frozen_model, instance
from tests.support.console import screen_text, ui_settings
from tests.support.snapshots import SIZES
from tests.support.waiting import wait_for


class Backend:
    """Restarts come back (a pod started later) healthy at 25 fps, or as ``bad`` says."""

    base_url = "http://backend:8081"

    def __init__(self, bad: set[str] | None = None) -> None:
        self.bad = bad or set()
        self.restarts: list[str] = []
        self.app: LocoApp | None = None

    async def thumbnail(self, name: str, width: int = 160) -> bytes:
        raise AssertionError("no pictures here")

    async def restart(self, name: str) -> ActionResult:
        self.restarts.append(name)
        assert self.app is not None
        model = self.app.model

        def come_back() -> None:
            fps = 2.0 if name in self.bad else 25.0
            status = InstanceStatus.DEGRADED if name in self.bad else InstanceStatus.HEALTHY
            new: Instance = instance(name, status, fps=fps)
            assert new.pod is not None
            pod = new.pod.model_copy(update={"start_time": NOW + timedelta(minutes=5)})
            model.upsert(new.model_copy(update={"pod": pod}))

        asyncio.get_running_loop().call_later(0.1, come_back)
        return ActionResult(ok=True, action="restart", instance=name, message="restarting", at=NOW)


def build(backend: Backend, read_only: bool = False) -> LocoApp:
    settings = ui_settings(
        "http://backend:8081",
        thumbnails=False,
        default_view="table",
        read_only=read_only,
        restart_settle=0.3,
        restart_timeout=5,
    )
    instances = [i for i in demo_instances(9) if i.status is InstanceStatus.HEALTHY][:3]
    app = LocoApp(
        settings,
        backend=backend,  # type: ignore[arg-type]
        model=frozen_model(instances),
        clock=FrozenClock(NOW, 1000.0),
        start_feeds=False,
        context="kind-loco",
    )
    backend.app = app
    return app


async def start(pilot: Pilot[Any]) -> GatedScreen:
    app: LocoApp = pilot.app  # type: ignore[assignment]
    await pilot.press("G")
    await wait_for(pilot, lambda: isinstance(app.screen, AskScreen), what="the question")
    assert "stops by itself" in screen_text(app)
    await pilot.press("y")
    return await wait_for(
        pilot, lambda: isinstance(app.screen, GatedScreen) and app.screen, what="progress"
    )


async def test_one_at_a_time_until_done_and_audited() -> None:
    backend = Backend()
    app = build(backend)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        rollout = app.gated
        await wait_for(pilot, lambda: rollout.state is RolloutState.DONE, timeout=20, what="done")
        assert backend.restarts == ["loco-0", "loco-1", "loco-3"]
        assert "DONE" in screen_text(app) and "3/3 done" in screen_text(app)
        kinds = [e.action for e in app.audit.entries]
        assert kinds.count(ActionKind.RESTART_POD) == 3 and kinds[-1] is ActionKind.GATED_RESTART
        assert app.audit.entries[-1].result == "ok"


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_stops_at_the_first_that_does_not_come_back(size: tuple[int, int]) -> None:
    backend = Backend(bad={"loco-1"})
    app = build(backend)
    async with app.run_test(size=size) as pilot:
        await start(pilot)
        rollout = app.gated
        await wait_for(
            pilot, lambda: rollout.state is RolloutState.STOPPED, timeout=30, what="stopped"
        )
        assert backend.restarts == ["loco-0", "loco-1"]  # loco-3 never touched
        assert rollout.items["loco-1"].step is InstanceStep.FAILED
        assert "2.0 fps" in rollout.items["loco-1"].note
        await wait_for(pilot, lambda: "STOPPED" in screen_text(app), what="shown")
        assert app.audit.entries[-1].result == "failed"


async def test_pause_resume_abort_and_hide() -> None:
    backend = Backend()
    app = build(backend)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        rollout = app.gated
        await pilot.press("p")
        assert rollout.state is RolloutState.PAUSED
        await wait_for(pilot, lambda: "PAUSED" in screen_text(app), what="paused shown")
        await pilot.pause(0.5)
        assert backend.restarts == ["loco-0"]  # nothing new while paused
        await pilot.press("escape")  # hidden, still there
        await wait_for(pilot, lambda: not isinstance(app.screen, GatedScreen), what="hidden")
        await pilot.press("G")
        await wait_for(pilot, lambda: isinstance(app.screen, GatedScreen), what="shown again")
        await pilot.press("p")
        await wait_for(pilot, lambda: len(backend.restarts) >= 2, what="resumed")
        await pilot.press("a")
        await wait_for(pilot, lambda: rollout.state is RolloutState.ABORTED, what="aborted")
        assert len(backend.restarts) == 2


async def test_batches_from_the_setting() -> None:
    backend = Backend()
    app = build(backend)
    app.settings = app.settings.model_copy(update={"restart_batch": 2})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("G")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen), what="the question")
        assert "2 at a time" in screen_text(app)
        await pilot.press("y")
        rollout = await wait_for(pilot, lambda: app.gated, what="started")
        await wait_for(pilot, lambda: rollout.state is RolloutState.DONE, timeout=20, what="done")
        # loco-0 and loco-1 together, then loco-3 once both were back.
        assert sorted(backend.restarts[:2]) == ["loco-0", "loco-1"]
        assert backend.restarts[2] == "loco-3"


async def test_read_only_refuses() -> None:
    backend = Backend()
    app = build(backend, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("G")
        await wait_for(pilot, lambda: app.audit.entries, what="refusal audited")
        assert app.audit.entries[-1].result == "refused" and app.gated is None
        assert backend.restarts == []


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_gated_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    """Stopped at loco-1, which came back at 2 fps."""
    backend = Backend(bad={"loco-1"})
    app = build(backend)

    async def run(pilot: Pilot[Any]) -> None:
        await start(pilot)
        await wait_for(
            pilot, lambda: app.gated.state is RolloutState.STOPPED, timeout=30, what="stopped"
        )
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run)

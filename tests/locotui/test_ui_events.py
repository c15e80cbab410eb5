"""Pilot and snapshots: the fleet's events view (E) — Kubernetes' events merged with the
backend's timelines, newest first, filterable, read-only safe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot

from backend.models import Instance, TimelineEntry
from locotui.data.kube_client import KubeEvent
from locotui.ui.app import LocoApp
from locotui.ui.clock import FrozenClock
from locotui.ui.screens.detail import DetailScreen
from locotui.ui.screens.events import EventsScreen
from tests.support.builders import NOW, demo_instances, frozen_model
from tests.support.console import screen_text, ui_settings
from tests.support.snapshots import SIZES
from tests.support.waiting import wait_for


def at(minutes: float) -> Any:
    return NOW - timedelta(minutes=minutes)


class Backend:
    base_url = "http://backend:8081"

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def thumbnail(self, name: str, width: int = 160) -> bytes:
        raise AssertionError("no pictures in these tests")

    async def get_instance(self, name: str) -> Instance:
        """The full form the detail view fetches."""
        return {i.name: i for i in demo_instances(9)}[name]

    async def timeline(self, name: str) -> list[TimelineEntry]:
        self.asked.append(name)
        if name == "loco-2":
            return [
                TimelineEntry(at=at(12), kind="status", text="healthy"),
                TimelineEntry(at=at(9), kind="status", text="degraded: display is blank"),
                TimelineEntry(
                    at=at(8),
                    kind="remediation",
                    text="reset (acted): display is blank",
                    by="remediation",
                ),
                TimelineEntry(
                    at=at(2), kind="action", text="reset: system_reset sent", by="10.0.0.3"
                ),
            ]
        if name == "loco-4":
            return [
                TimelineEntry(at=at(6), kind="status", text="unhealthy: supervisor unreachable")
            ]
        return []


class Kube:
    context = "kind-loco"
    namespace = "loco"
    namespace_source = "flag"

    async def namespace_events(self) -> list[KubeEvent]:
        def ev(m: float, kind: str, reason: str, msg: str, obj: str, count: int = 1) -> KubeEvent:
            return KubeEvent(kind, reason, msg, count, at(m), "kubelet", obj)

        oom = "Memory cgroup out of memory: killed qemu"
        unschedulable = "0/3 nodes are available: 3 Insufficient memory"
        return [
            ev(30, "Normal", "Started", "Started container emulator", "Pod/loco-4"),
            ev(7, "Warning", "OOMKilling", oom, "Pod/loco-4"),
            ev(5, "Warning", "Unhealthy", "Readiness probe failed: 503", "Pod/loco-4", 12),
            ev(1, "Warning", "FailedScheduling", unschedulable, "Pod/loco-9"),
        ]


def build(read_only: bool = True) -> tuple[LocoApp, Backend]:
    backend = Backend()
    settings = ui_settings(
        "http://backend:8081", namespace="loco", thumbnails=False, read_only=read_only
    )
    app = LocoApp(
        settings,
        backend=backend,  # type: ignore[arg-type]
        kube=Kube(),  # type: ignore[arg-type]
        model=frozen_model(demo_instances(9)),
        clock=FrozenClock(NOW, 1000.0),
        start_feeds=False,
        context="kind-loco",
    )
    return app, backend


async def open_events(pilot: Pilot[Any]) -> None:
    app: LocoApp = pilot.app  # type: ignore[assignment]
    await pilot.press("E")
    for _ in range(200):
        await pilot.pause(0.02)
        if isinstance(app.screen, EventsScreen) and app.screen.result is not None:
            break
    await pilot.pause(0.1)


async def test_events_newest_first_filter_and_jump() -> None:
    app, backend = build()
    async with app.run_test(size=(160, 50)) as pilot:
        await open_events(pilot)
        screen = app.screen
        assert isinstance(screen, EventsScreen)
        assert sorted(backend.asked) == sorted(app.model.names())  # every timeline
        reasons = [e.reason for e in screen.shown]
        assert reasons == [
            "FailedScheduling", "reset", "Unhealthy", "unhealthy", "OOMKilling",
            "reset", "degraded", "healthy", "Started",
        ]  # fmt: skip
        text = screen_text(app)
        assert "Readiness probe failed: 503 (x12)" in text and "9 newest first" in text
        await pilot.press("slash", *"source:kube !reason:started", "enter")
        await wait_for(
            pilot,
            lambda: (
                [e.reason for e in screen.shown] == ["FailedScheduling", "Unhealthy", "OOMKilling"]
            ),
            what="kube warnings",
        )
        assert "3 of 9" in screen_text(app)
        await pilot.press("slash", "ctrl+u", *"reason:oom", "enter")
        await wait_for(pilot, lambda: len(screen.shown) == 1, what="the OOM kill")
        await pilot.press("enter")  # jump to loco-4
        await wait_for(pilot, lambda: app.cursor_name == "loco-4", what="jumped")
        assert not isinstance(app.screen, EventsScreen)


async def test_events_of_one_instance_from_its_detail() -> None:
    app, _ = build()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "enter")  # loco-2's detail (table view? tiles)
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail")
        name = app.screen.instance_name  # type: ignore[attr-defined]
        await open_events(pilot)
        screen = app.screen
        assert isinstance(screen, EventsScreen)
        assert screen.shown and {e.name for e in screen.shown} == {name}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_events_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _ = build()
    assert snap_compare(app, terminal_size=size, run_before=open_events)

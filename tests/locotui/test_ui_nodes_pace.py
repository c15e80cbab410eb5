"""Pilot: frame rate by node (N), and the pace of repaints and pictures (+/-)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from locotui.ui.app import LocoApp
from locotui.ui.clock import FrozenClock
from locotui.ui.screens.nodes import NodesScreen
from tests.support.builders import NOW, demo_instances, frozen_model, instance
from tests.support.console import screen_text, ui_settings
from tests.support.waiting import wait_for


def build(read_only: bool = True) -> LocoApp:
    settings = ui_settings(
        "http://backend:8081", thumbnails=False, default_view="table", read_only=read_only
    )
    return LocoApp(
        settings,
        model=frozen_model(demo_instances(9)),
        clock=FrozenClock(NOW, 1000.0),
        start_feeds=False,
        context="kind-loco",
    )


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_nodes_screen_follows_the_fleet_and_filters_to_a_node(size: tuple[int, int]) -> None:
    app = build()
    async with app.run_test(size=size) as pilot:
        await pilot.press("N")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, NodesScreen) and app.screen, what="nodes"
        )
        text = screen_text(app)
        assert "node-a" in text and "1 stuck" in text and "loco-2" in text
        # node-b slows down as a whole: its median drops under the target.
        slow = [instance(f"loco-{i}", fps=3.0 + i / 10, node="node-b") for i in (1, 3, 5, 7)]
        for inst in slow:
            app.model.upsert(inst)
        await wait_for(
            pilot,
            lambda: screen.nodes and screen.nodes[0].key == "node-b",
            what="node-b worst",
        )
        assert screen.nodes[0].verdict == "node slow"
        await wait_for(pilot, lambda: "node slow" in screen_text(app), what="shown")
        table = screen.query_one("#nodes-table", DataTable)
        assert table.cursor_row == 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, NodesScreen), what="back")
        assert [e.name for e in app.model.view()] == ["loco-1", "loco-3", "loco-5", "loco-7"]


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_plus_and_minus_change_the_pace_shown_in_the_header(size: tuple[int, int]) -> None:
    app = build()
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: "⟳10/s ▣0.5s" in screen_text(app), what="the pace")
        await pilot.press("minus", "minus")
        await wait_for(pilot, lambda: "⟳4/s ▣2s" in screen_text(app), what="slower")
        assert app.loops.pace.pictures == 2.0 and app.loops.pace.refresh == 0.25
        await pilot.press("plus")
        await wait_for(pilot, lambda: "⟳10/s ▣1s" in screen_text(app), what="faster")

"""Pilot: the fleet filter's terms, inverse and by field, and saved views (F, palette)."""

from __future__ import annotations

from typing import Any

import pytest

from locotui.ui.app import LocoApp
from locotui.ui.clock import FrozenClock
from tests.support.builders import NOW, demo_instances, frozen_model
from tests.support.console import screen_text, ui_settings
from tests.support.waiting import wait_for

VIEWS = {"sick": "!status:healthy", "rack-b": "node:node-b"}


def build(read_only: bool = False, views: dict[str, str] | None = None) -> LocoApp:
    settings = ui_settings("http://backend:8081", thumbnails=False, default_view="table")
    settings = settings.model_copy(
        update={"views": VIEWS if views is None else views, "read_only": read_only}
    )
    return LocoApp(
        settings,
        model=frozen_model(demo_instances(9)),
        clock=FrozenClock(NOW, 1000.0),
        start_feeds=False,
        context="kind-loco",
    )


def names(app: LocoApp) -> list[str]:
    return [e.name for e in app.model.view()]


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_inverse_and_field_terms_from_the_filter_bar(size: tuple[int, int]) -> None:
    app = build()
    async with app.run_test(size=size) as pilot:
        await pilot.press("slash", *"!status:healthy", "enter")
        await wait_for(
            pilot, lambda: names(app) == ["loco-2", "loco-4", "loco-6"], what="not healthy"
        )
        await pilot.press("slash", "ctrl+u", *"node:node-b !loco-3", "enter")
        await wait_for(pilot, lambda: names(app) == ["loco-1", "loco-5", "loco-7"], what="b")
        text = screen_text(app)
        # Rows, not the header (which shows the filter, "!loco-3" included, when wide).
        assert "loco-1 ●" in text and "loco-3 ●" not in text
        # A bad field: the bar says why; the last good filter (as typed) stays.
        await pilot.press("slash", "ctrl+u", *"nod:x")
        await wait_for(pilot, lambda: app.filter_bar.has_class("-error"), what="error")
        assert "did you mean node:" in str(app.filter_bar.border_title)
        assert app.model.filter_text == "nod"
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(names(app)) == 9, what="cleared")


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_saved_views_cycle_with_F_and_from_the_palette(size: tuple[int, int]) -> None:
    app = build(read_only=True)  # looking is not acting: views work read-only
    async with app.run_test(size=size) as pilot:
        await pilot.press("F")
        await wait_for(pilot, lambda: app.model.filter_text == "@sick", what="first view")
        assert names(app) == ["loco-2", "loco-4", "loco-6"]
        await pilot.press("F")
        await wait_for(pilot, lambda: app.model.filter_text == "@rack-b", what="second view")
        assert all(app.model.get(n).node == "node-b" for n in names(app))  # type: ignore[union-attr]
        await pilot.press("F")
        await wait_for(pilot, lambda: app.model.filter_text == "", what="none after the last")
        # The palette lists the views with their queries.
        await pilot.press("ctrl+p", *"view: sick")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.model.filter_text == "@sick", what="palette view")
        # Combined with typed terms.
        await pilot.press("slash", "ctrl+u", *"@sick !loco-4", "enter")
        await wait_for(pilot, lambda: names(app) == ["loco-2", "loco-6"], what="combined")


async def test_F_without_views_says_how_to_add_one() -> None:
    app = build(views={})
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        original = app.notify

        def spy(message: str, *args: Any, **kwargs: Any) -> None:
            notes.append(message)
            original(message, *args, **kwargs)

        app.notify = spy  # type: ignore[method-assign]
        await pilot.press("F")
        await wait_for(pilot, lambda: notes, what="a notice")
        assert "[views]" in notes[0] and app.model.filter_text == ""

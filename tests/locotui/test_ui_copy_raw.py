"""Pilot: the raw YAML view (y), copying names, URLs, YAML and log lines (OSC 52), and
the screen dump (D); all of them in read-only mode, where they change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import Input

from backend.models import Instance
from locotui.data.errors import NotFound
from locotui.ui.app import LocoApp
from locotui.ui.clock import FrozenClock
from locotui.ui.screens.logs import LogScreen
from locotui.ui.screens.prompt import PromptScreen
from locotui.ui.screens.raw import RawScreen
from tests.support.builders import NOW, demo_instances, frozen_model, png
from tests.support.console import screen_text, ui_settings
from tests.support.waiting import wait_for


class Backend:
    """What these screens ask of the backend."""

    base_url = "http://backend:8081"

    def __init__(self) -> None:
        self.instances = {i.name: i for i in demo_instances(9)}
        self.resets = 0

    async def get_instance(self, name: str) -> Instance:
        return self.instances[name]

    async def thumbnail(self, name: str, width: int = 160) -> bytes:
        if name == "loco-0":
            raise NotFound("thumbnail of loco-0: no frame yet", source="backend")
        return png(64, 40)

    async def logs(self, name: str, tail: int = 200) -> list[str]:
        return [f'{{"level": "info", "message": "line {i}"}}' for i in range(50)]

    async def follow_logs(self, name: str, tail: int = 200) -> AsyncIterator[str]:
        for line in await self.logs(name, tail):
            yield line

    async def timeline(self, name: str) -> list[Any]:
        return []

    async def reset(self, name: str) -> Any:  # must never be called here
        self.resets += 1
        raise AssertionError("a read-only console reset an instance")


def build(backend: Backend, read_only: bool = True) -> LocoApp:
    settings = ui_settings("http://backend:8081", default_view="table", read_only=read_only)
    return LocoApp(
        settings,
        backend=backend,  # type: ignore[arg-type]
        model=frozen_model(demo_instances(9)),
        clock=FrozenClock(NOW, 1000.0),
        start_feeds=False,
        thumb_fetch=backend.thumbnail,
        context="kind-loco",
    )


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_raw_yaml_view_and_copy(size: tuple[int, int]) -> None:
    backend = Backend()
    app = build(backend)
    async with app.run_test(size=size) as pilot:
        await pilot.press("down", "down", "y")  # loco-2
        screen = await wait_for(
            pilot,
            lambda: isinstance(app.screen, RawScreen) and app.screen.text and app.screen,
            what="the YAML",
        )
        doc = yaml.safe_load(screen.text)
        assert doc["name"] == "loco-2" and doc["instance"]["status"] == "degraded"
        assert doc["instance"]["health"]["video"]["estimated_frame_rate"] == 4.0
        assert "no Kubernetes access" in doc["pod"]["note"]
        assert "status: degraded" in screen_text(app)
        await pilot.press("c")
        await wait_for(pilot, lambda: app.copied == screen.text, what="YAML copied")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RawScreen), what="back")
    assert backend.resets == 0


async def test_copy_name_selection_and_url() -> None:
    app = build(Backend())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "c")
        await wait_for(pilot, lambda: app.copied == "loco-1", what="name copied")
        await pilot.press("C")
        await wait_for(
            pilot,
            lambda: app.copied == "http://backend:8081/api/instances/loco-1",
            what="URL copied",
        )
        await pilot.press("space", "space", "c")  # loco-1 and loco-2 selected
        await wait_for(pilot, lambda: app.copied == "loco-1\nloco-2", what="names copied")


async def test_log_lines_copy_as_shown() -> None:
    app = build(Backend())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("L")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, LogScreen) and app.screen, what="log screen"
        )
        await wait_for(pilot, lambda: len(screen.view.shown) >= 50, what="lines")
        await pilot.press("slash", *"line 4", "enter")
        await wait_for(pilot, lambda: len(screen.view.shown) == 11, what="line 4, 40-49")
        await pilot.press("c")
        await wait_for(pilot, lambda: app.copied, what="copied")
        assert app.copied is not None
        lines = app.copied.splitlines()
        assert len(lines) == 11 and lines[0].endswith("INFO    line 4")


async def test_screen_dump_writes_text_svg_and_pictures(tmp_path: Path) -> None:
    app = build(Backend())
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.press("D")
        prompt = await wait_for(
            pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen, what="prompt"
        )
        assert "locotui-dump-" in prompt.query_one(Input).value
        target = tmp_path / "dump"
        prompt.query_one(Input).value = str(target)
        await pilot.press("enter")
        dump = await wait_for(pilot, lambda: app.last_dump, what="the dump")
    names = sorted(p.name for p in dump.files)
    assert names[:2] == ["loco-1.png", "loco-2.png"] and "screen.svg" in names
    assert (target / "loco-1.png").read_bytes().startswith(b"\x89PNG")
    text = (target / "screen.txt").read_text()
    assert "loco-3" in text and "frame rate low" in text  # what was on screen
    assert "loco-0: thumbnail of loco-0: no frame yet" in text
    assert "<svg" in (target / "screen.svg").read_text()

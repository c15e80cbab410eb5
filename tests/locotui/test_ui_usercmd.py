"""Pilot and snapshots: user commands (!) — picked, confirmed with the exact argv, run
without a shell, shown, audited; refused and audited in read-only mode."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from textual.pilot import Pilot

from locotui.data.actions import ActionKind
from locotui.data.usercommands import parse_commands
from locotui.ui.app import LocoApp
from locotui.ui.clock import FrozenClock
from locotui.ui.screens.usercmd import UserCommandScreen
from tests.support.builders import NOW, demo_instances, frozen_model
from tests.support.console import screen_text, ui_settings
from tests.support.snapshots import SIZES
from tests.support.waiting import wait_for

COMMANDS = parse_commands(
    {
        "show": {
            "argv": [sys.executable, "-c", "import sys; print(sys.argv[1:])", "$NAME", "$NODE"],
            "description": "print what it was given",
        },
        "describe": ["kubectl", "-n", "$NAMESPACE", "describe", "pod", "$NAME"],
    }
)


def build(read_only: bool = False) -> LocoApp:
    settings = ui_settings(
        "http://backend:8081",
        namespace="loco",
        thumbnails=False,
        default_view="table",
        read_only=read_only,
    ).model_copy(update={"commands": COMMANDS})
    return LocoApp(
        settings,
        model=frozen_model(demo_instances(9)),
        clock=FrozenClock(NOW, 1000.0),
        start_feeds=False,
        context="kind-loco",
    )


async def open_commands(pilot: Pilot[Any]) -> None:
    app: LocoApp = pilot.app  # type: ignore[assignment]
    await pilot.press("down", "exclamation_mark")
    for _ in range(100):
        await pilot.pause(0.02)
        if isinstance(app.screen, UserCommandScreen):
            break
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)], ids=["80x24", "160x50"])
async def test_pick_confirm_run_show_and_audit(size: tuple[int, int]) -> None:
    app = build()
    async with app.run_test(size=size) as pilot:
        await open_commands(pilot)
        screen = app.screen
        assert isinstance(screen, UserCommandScreen)
        text = screen_text(app)
        assert "kubectl -n loco describe pod loco-1" in text
        await pilot.press("enter")  # "show", the first
        await wait_for(pilot, lambda: "Run " in screen_text(app), what="the question")
        assert screen.chosen is not None and screen.chosen[1][-2:] == ["loco-1", "node-b"]
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.result is not None, what="the result")
        assert screen.result is not None and screen.result.ok
        await wait_for(pilot, lambda: "['loco-1', 'node-b']" in screen_text(app), what="the output")
        assert "exit 0" in screen_text(app)
        entry = app.audit.entries[-1]
        assert entry.action is ActionKind.USER_COMMAND and entry.result == "ok"
        assert entry.targets == ("loco-1",)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, UserCommandScreen), what="closed")


async def test_read_only_refuses_and_audits() -> None:
    app = build(read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "exclamation_mark")
        await wait_for(pilot, lambda: app.audit.entries, what="the refusal audited")
        assert not isinstance(app.screen, UserCommandScreen)
        entry = app.audit.entries[-1]
        assert entry.action is ActionKind.USER_COMMAND and entry.result == "refused"
        assert entry.targets == ("loco-1",)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_user_commands_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    # The argv holds the interpreter's path, which differs between machines: only the
    # kubectl line and the descriptions are shown in full.
    commands = {
        "describe": COMMANDS["describe"],
        "ssh-node": parse_commands({"ssh-node": ["ssh", "$NODE"]})["ssh-node"],
    }
    app = build()
    app.settings = app.settings.model_copy(update={"commands": commands})
    assert snap_compare(app, terminal_size=size, run_before=open_commands)

"""The console and the backend's automatic recovery, through Textual's Pilot.

The real ``loco-backend`` with the policy on (``--remediation``, thresholds of a few
seconds for the test image the fake supervisors report) probes fake supervisors this
module makes bad by hand: QEMU runs, the instance is degraded, so the policy resets it,
restarts it and gives up. Every wait is a deadline-bounded poll of the app or the backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from backend.models import RemediationEvent
from locotui.data.actions import ActionKind
from locotui.data.backend_client import BackendClient
from locotui.ui.app import LocoApp
from locotui.ui.clock import FrozenClock
from locotui.ui.screens.confirm import ActionScreen, PauseScreen
from locotui.ui.screens.detail import DetailScreen
from locotui.ui.tile import Tile
from tests.support.backend import BackendProcess
from tests.support.builders import NOW, demo_instances, frozen_model
from tests.support.console import TOKEN, screen_text, ui_settings
from tests.support.fakefleet import FakeFleet
from tests.support.waiting import poll_until, wait_for

NAMES = ["loco-0", "loco-1", "loco-2"]
SIZE = (160, 50)
HEALTHY = {"overall_status": "healthy", "fps": 25.0, "reasons": [], "qemu_ok": None}
# A guest that runs but is not right: what the policy acts on.
BAD = {"overall_status": "degraded", "qemu_ok": True, "reasons": ["display is blank"]}
# Quick enough for a test, slow enough that every rung is seen on a busy machine.
LADDER = (
    "testimage.bad_for=0.3,testimage.watch_reset=2,testimage.watch_restart=2,"
    "testimage.recovered_for=0.5"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("ui-remediation")
    fleet = FakeFleet(NAMES, token=TOKEN).start()
    for name in NAMES:
        fleet.set(name, **HEALTHY)
    extra = ["--remediation", "--remediation-cooldown", "0.1", "--remediation-thresholds", LADDER]
    backend = BackendProcess.static(
        fleet.static_file(tmp / "static.json"), extra=extra, token=TOKEN
    ).start()
    try:
        yield {"fleet": fleet, "backend": backend}
    finally:
        backend.stop()
        fleet.stop()


def _backend(stack: dict[str, Any], method: str, path: str) -> Any:
    r = httpx.request(
        method,
        f"{stack['backend'].url}{path}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
        trust_env=False,
    )
    r.raise_for_status()
    return r.json()


@pytest.fixture
def fleet(stack: dict[str, Any]) -> Iterator[FakeFleet]:
    """All healthy, the policy running and nobody on its ladder, before and after."""

    def settle() -> None:
        for name in NAMES:
            stack["fleet"].set(name, **HEALTHY)
        _backend(stack, "POST", "/api/remediation/resume")
        poll_until(
            lambda: all(
                i["remediation"] is None and i["status"] == "healthy"
                for i in _backend(stack, "GET", "/api/instances")["items"]
            ),
            20,
            "a healthy fleet off the ladder",
        )

    settle()
    yield stack["fleet"]
    settle()


def make_app(stack: dict[str, Any], token: str = TOKEN, **overrides: Any) -> LocoApp:
    backend = stack["backend"]
    settings = ui_settings(backend.url, thumbnails=False, **overrides)
    return LocoApp(settings, backend=BackendClient(backend.url, token=token))


def spy_notes(app: LocoApp) -> list[str]:
    notes: list[str] = []
    original = app.notify

    def spy(message: str, **kw: Any) -> None:
        notes.append(message)
        original(message, **kw)

    app.notify = spy  # type: ignore[method-assign]
    return notes


def tile(app: LocoApp, name: str) -> Tile:
    return next(t for t in app.grid.tiles if t.entry is not None and t.entry.name == name)


async def ready(pilot: Any, app: LocoApp) -> None:
    """Every instance probed and on screen, and the policy's state read."""
    await wait_for(
        pilot,
        lambda: (
            len(app.grid.tiles) == len(NAMES)
            and all(e.summary.qemu for e in app.model.entries.values())
            and "auto-recovery ● on" in screen_text(app)
        ),
        what="probed tiles and the policy read",
        describe=lambda: screen_text(app),
    )


async def open_pause(pilot: Any, app: LocoApp) -> PauseScreen:
    """Presses the pause key; the pause dialog once it is up."""
    await pilot.press("P")
    screen: PauseScreen = await wait_for(
        pilot, lambda: isinstance(app.screen, PauseScreen) and app.screen, what="the dialog"
    )
    return screen


def timeline_text(app: LocoApp) -> str:
    screen = app.screen
    assert isinstance(screen, DetailScreen)
    return " ".join(f"{e.kind} {e.text}" for e in screen._timeline or [])


async def test_an_incident_from_reset_to_needing_a_person(
    stack: dict[str, Any], fleet: FakeFleet
) -> None:
    app = make_app(stack)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        notes = spy_notes(app)
        await ready(pilot, app)
        fleet.set("loco-1", **BAD)
        # The reset rung lasts watch_reset (2 s): a loaded machine may first show the next.
        await wait_for(
            pilot,
            lambda: (
                "ago, watching" in (t := screen_text(app)) and ("⟳ reset" in t or "⟳ restart" in t)
            ),
            timeout=20,
            what="the rung on the tile",
            describe=lambda: screen_text(app),
        )
        assert any(n.startswith("auto-recovery reset loco-1: display is blank") for n in notes)
        # The detail, opened while the policy is on it, follows the incident by itself.
        app.jump_to("loco-1")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: "remediation reset (acted)" in timeline_text(app),
            what="the reset on the timeline",
        )
        await wait_for(
            pilot,
            lambda: "remediation give_up (acted)" in timeline_text(app),
            timeout=30,
            what="the give-up on the timeline, without reopening the screen",
            describe=lambda: timeline_text(app),
        )
        text = timeline_text(app)
        order = [text.index(s) for s in ("reset (acted)", "restart (acted)", "give_up (acted)")]
        assert order == sorted(order), text
        assert "Incident timeline" in screen_text(app)
        await pilot.press("escape")
        await wait_for(
            pilot,
            lambda: tile(app, "loco-1").has_class("-needs-person"),
            what="the tile marked",
        )
        text = screen_text(app)
        assert "⚑ needs a person · display is blank" in text, text
        assert "⚑ NEEDS A PERSON" in text and "⚑ 1 needs a person" in text
        # Kept in the banner, not only a toast.
        banner = app.banner.text
        assert banner is not None and "loco-1 needs a person: the automatic recovery gave up" in (
            banner.plain
        )
        assert fleet.get("loco-1")["resets"] == 1 and fleet.get("loco-1")["restarts"] == 1
        # Decisions are data, not "unexpected items" or malformed events.
        assert app.model.links["backend"].malformed == 0  # type: ignore[index]
        assert app.model.links["backend"].error is None  # type: ignore[index]


async def test_pause_and_resume_from_the_keyboard(stack: dict[str, Any], fleet: FakeFleet) -> None:
    app = make_app(stack)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        notes = spy_notes(app)
        await ready(pilot, app)
        screen = await open_pause(pilot, app)
        assert "Pause automatic recovery for 60 minutes? It resumes by itself at" in (
            screen_text(app)
        )
        await pilot.press("up")  # 60 -> 15
        await wait_for(
            pilot, lambda: "for 15 minutes?" in screen_text(app), what="the shorter choice"
        )
        await pilot.press("tab", *"moving racks", "enter")
        await wait_for(pilot, lambda: screen.state == "done", what="the pause done")
        state = _backend(stack, "GET", "/api/remediation")
        assert state["paused"] and state["paused_reason"] == "moving racks"
        assert state["paused_by"] == "127.0.0.1" and state["paused_until"]
        await pilot.press("escape")
        # Shown from the answer at once, not at the next periodic read.
        assert "auto-recovery ‖ PAUSED until" in screen_text(app)
        assert "(by 127.0.0.1: moving racks)" in screen_text(app)
        assert any(n.startswith("now PAUSED until") for n in notes), notes
        # The palette says which of the two the action does now.
        labels = {name: label for name, label, _ in app.palette_actions()}
        assert labels["pause_remediation"].startswith("Resume the automatic recovery (PAUSED")
        entry = app.audit.entries[-1]
        assert entry.action is ActionKind.PAUSE_REMEDIATION and entry.result == "ok"
        assert "moving racks" in entry.details[0]

        # Paused: a bad instance is reported, not acted on.
        fleet.set("loco-2", **BAD)
        await wait_for(
            pilot,
            lambda: any(
                d.instance == "loco-2" and d.outcome == "skipped_paused"
                for d in app.model.decisions
            ),
            timeout=20,
            what="the skipped reset",
        )
        assert fleet.get("loco-2")["resets"] == 0

        # The same key resumes, with a confirmation of its own.
        await pilot.press("P")
        resume = await wait_for(
            pilot,
            lambda: isinstance(app.screen, ActionScreen) and app.screen,
            what="the resume dialog",
        )
        assert resume.kind is ActionKind.RESUME_REMEDIATION
        assert "Resume automatic recovery (now PAUSED until" in screen_text(app)
        assert "1 instance is not healthy now and may be reset soon" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: resume.state == "done", what="resumed")
        await pilot.press("escape")
        assert "auto-recovery ● on" in screen_text(app)
        await wait_for(
            pilot,
            lambda: any(n.startswith("auto-recovery reset loco-2") for n in notes),
            timeout=20,
            what="the reset once resumed",
        )
        assert fleet.get("loco-2")["resets"] == 1
        assert [e.action for e in app.audit.entries] == [
            ActionKind.PAUSE_REMEDIATION,
            ActionKind.RESUME_REMEDIATION,
        ]


async def test_pause_refused_says_what_to_do(stack: dict[str, Any], fleet: FakeFleet) -> None:
    # A wrong token: the dialog says DENIED and the toast says which setting to check.
    app = make_app(stack, token="wrong")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        notes = spy_notes(app)
        await ready(pilot, app)
        screen = await open_pause(pilot, app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.state == "done", what="the refusal")
        assert "DENIED" in screen_text(app)
        assert any("control token is wrong (check LOCOTUI_CONTROL_TOKEN)" in n for n in notes)
        assert app.audit.entries[-1].result == "failed"
        assert not _backend(stack, "GET", "/api/remediation")["paused"]
        # A minutes value the backend would refuse is refused in the dialog.
        await pilot.press("escape")
        screen = await open_pause(pilot, app)
        await pilot.press("backspace", "backspace", *"99999", "enter")
        await wait_for(pilot, lambda: "at most 10080 (a week)" in screen_text(app), what="why")
        assert screen.state == "asking"

    # Read-only: the key is disabled and says so.
    app = make_app(stack, read_only=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        notes = spy_notes(app)
        await ready(pilot, app)
        assert app.check_action("pause_remediation", ()) is None
        await pilot.press("P")
        await wait_for(
            pilot,
            lambda: any(
                "automatic recovery: disabled (locotui runs with --read-only)" in n for n in notes
            ),
            what="the read-only note",
        )
        assert not isinstance(app.screen, PauseScreen)


async def test_a_decision_is_announced_even_when_a_key_repaints_first() -> None:
    """A key's repaint can take the model's change before the render loop sees it; the
    decision that came with that change is announced all the same."""
    model = frozen_model(demo_instances(3))
    app = LocoApp(
        ui_settings(thumbnails=False), model=model, clock=FrozenClock(NOW), start_feeds=False
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        gave_up = RemediationEvent(
            seq=9, instance="loco-1", action="give_up", reason="still bad", outcome="acted",
            rung="needs_person", at=NOW,
        )  # fmt: skip
        model.apply_event(gave_up)
        app.action_sort_next()  # repaints at once, before the loop wakes
        await wait_for(
            pilot,
            lambda: app.banner.text and "loco-1 needs a person" in app.banner.text.plain,
            what="the alert",
        )
        assert len(app.header_info.alerts) == 1  # once, not again by the loop

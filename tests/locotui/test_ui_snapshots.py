"""Snapshot tests of the main screens at 80x24 and 160x50.

Deterministic: a frozen clock (ages, countdowns), a fleet model filled from fixed
instances, a fixed picture for thumbnails, a fixed history. Snapshots are SVG files under
``tests/locotui/snapshots/``; after an intended change of the UI, review and accept with
``pytest tests/locotui/test_ui_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot

from backend.models import Instance, InstanceStatus, RemediationStatus, TimelineEntry
from locotui.data.fleet import Origin, Source
from locotui.data.link import LinkState
from locotui.ui.app import LocoApp, can_have_picture
from locotui.ui.clock import FrozenClock
from locotui.ui.screens.detail import DetailScreen
from locotui.ui.screens.raw import RawScreen
from tests.support.builders import NOW, demo_instances, frozen_model, on_rung, png
from tests.support.console import ui_settings
from tests.support.snapshots import SIZES

PICTURE = png(64, 40)


class FixedHistory:
    name = "session"

    async def fps(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> dict[str, list[tuple[float, float]]]:
        base = NOW.timestamp()
        return {n: [(base - 60 + i, 20.0 + (i % 7)) for i in range(60)] for n in instances or []}

    async def status(
        self, instances: Sequence[str] | None = None, window: float = 3600, step: float = 15
    ) -> dict[str, list[tuple[float, InstanceStatus]]]:
        base = NOW.timestamp()
        return {
            n: [
                (base - 600, InstanceStatus.STARTING),
                (base - 540, InstanceStatus.HEALTHY),
                (base - 120, InstanceStatus.DEGRADED),
                (base - 60, InstanceStatus.HEALTHY),
            ]
            for n in instances or []
        }


class FixedTimeline:
    """The backend, as far as the detail screen asks: the instance's full form, and a
    timeline of an incident that went from a reset through a restart to needing a person,
    then a person's reset."""

    base_url = "http://backend:8081"

    def __init__(self, instances: list[Instance] | None = None) -> None:
        self.instances = {i.name: i for i in instances or []}

    async def get_instance(self, name: str) -> Instance:
        return self.instances[name]

    async def timeline(self, name: str) -> list[TimelineEntry]:
        t = NOW - timedelta(minutes=12)
        steps = [
            (0, "status", "healthy", None),
            (120, "status", "degraded: display is blank", None),
            (180, "remediation", "reset (acted): display is blank", "remediation"),
            (420, "remediation", "restart (acted): display is blank", "remediation"),
            (
                660,
                "remediation",
                "give_up (acted): still bad after a reset and a restart: display is blank",
                "remediation",
            ),
            (690, "action", "reset: system_reset sent", "10.0.0.3"),
        ]
        return [
            TimelineEntry(at=t + timedelta(seconds=s), kind=k, text=x, by=b)  # type: ignore[arg-type]
            for s, k, x, b in steps
        ]


class RawBackend(FixedTimeline):
    """And the instance record, for the raw view."""

    async def get_instance(self, name: str) -> Instance:
        return demo_instances(9)[int(name.rsplit("-", 1)[1])]


PAUSED = RemediationStatus(
    enabled=True,
    leader=True,
    dry_run=False,
    paused=True,
    paused_since=NOW - timedelta(minutes=5),
    paused_until=NOW.replace(hour=10, minute=21),
    paused_by="10.0.0.3",
    paused_reason="moving racks",
)


def build_app(
    thumbnails: bool = True,
    view: str = "tiles",
    incident: bool = False,
    backend: FixedTimeline | None = None,
) -> LocoApp:
    """The demo fleet; with ``incident``, loco-2 needs a person, loco-5 was just reset by
    the automatic recovery, and the recovery is paused."""

    async def picture(name: str, width: int) -> bytes:
        return PICTURE

    settings = ui_settings(
        "http://backend:8081", namespace="loco", thumbnails=thumbnails, default_view=view
    )
    instances = demo_instances(9)
    if incident:
        instances[2] = on_rung(instances[2], "needs_person", 60)
        instances[5] = on_rung(
            instances[5].model_copy(
                update={"status": InstanceStatus.DEGRADED, "status_reason": "display is blank"}
            ),
            "reset",
            40,
        )
    model = frozen_model(instances)
    for entry in model.entries.values():
        # As the summary stream leaves them: the detail view fetches the full form.
        entry.full = entry.full_for = None
    if incident:
        model.set_remediation(PAUSED)
    return LocoApp(
        settings,
        backend=backend or FixedTimeline(instances),  # type: ignore[arg-type]
        model=model,
        clock=FrozenClock(NOW, 1000.0),
        start_feeds=False,
        thumb_fetch=picture,
        history=FixedHistory(),  # type: ignore[arg-type]
        context="kind-loco",
    )


async def _settle(pilot: Pilot[Any]) -> None:
    """Waits (bounded) until every tile that can have a picture shows it."""
    app: LocoApp = pilot.app  # type: ignore[assignment]

    def settled() -> bool:
        plan = app.grid.plan
        if app.view_mode != "tiles" or not plan.thumb_rows or app.thumbs is None:
            return True
        tiles = [t for t in app.grid.visible_tiles() if t.entry is not None]
        return bool(tiles) and all(t._thumb.strips for t in tiles if can_have_picture(t.entry))

    for _ in range(250):
        await pilot.pause(0.02)
        if settled():
            break
    await pilot.pause(0.05)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tiles(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(build_app(), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_table(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(build_app(view="table"), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_incident(snap_compare: Any, size: tuple[int, int]) -> None:
    """One instance needs a person, one is being watched after a reset, the automatic
    recovery is paused: the tiles, the header's count and the policy's state."""
    assert snap_compare(build_app(incident=True), terminal_size=size, run_before=_settle)


async def open_detail(pilot: Pilot[Any]) -> None:
    app: LocoApp = pilot.app  # type: ignore[assignment]
    await _settle(pilot)
    await pilot.press("right", "right", "enter")  # loco-2, the degraded one
    for _ in range(200):
        await pilot.pause(0.02)
        screen = app.screen
        if isinstance(screen, DetailScreen):
            picture = screen.query_one("#detail-picture")
            if (
                picture.thumb.strips  # type: ignore[attr-defined]
                and screen._fps is not None
                and screen._timeline is not None
                and app.model.entries["loco-2"].full is not None
            ):
                break
    await pilot.pause(0.05)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_detail(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(build_app(), terminal_size=size, run_before=open_detail)


def test_detail_incident(snap_compare: Any) -> None:
    """80x24: the detail of an instance that needs a person opens at its timeline."""
    assert snap_compare(build_app(incident=True), terminal_size=(80, 24), run_before=open_detail)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(
        build_app(thumbnails=False), terminal_size=size, press=["question_mark"], run_before=_settle
    )


def test_backend_gone_kube_only(snap_compare: Any) -> None:
    """The banner over a Kubernetes-only view: pods without emulator health."""
    from locotui.data.kube_client import KubePod, pod_instance

    app = build_app(thumbnails=False)
    model = app.model
    pods = [
        KubePod(name=i.name, namespace="loco", uid=None, facts=i.pod)  # type: ignore[arg-type]
        for i in demo_instances(9)
    ]
    model.apply_pods(pod_instance(p) for p in pods)
    model.set_link(
        Source.BACKEND,
        LinkState.RECONNECTING,
        error="backend http://backend:8081 unreachable: connection refused",
        retry_in=4.0,
    )
    model.set_link(Source.KUBERNETES, LinkState.CONNECTED, detail="https://k8s:6443 ns loco")
    assert all(e.origin is Origin.KUBERNETES for e in model.entries.values())
    assert snap_compare(app, terminal_size=(160, 50), run_before=_settle)


async def open_raw(pilot: Pilot[Any]) -> None:
    app: LocoApp = pilot.app  # type: ignore[assignment]
    await _settle(pilot)
    await pilot.press("right", "right", "y")  # loco-2, the degraded one
    for _ in range(200):
        await pilot.pause(0.02)
        screen = app.screen
        if isinstance(screen, RawScreen) and screen.text is not None:
            break
    await pilot.pause(0.05)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_raw_yaml(snap_compare: Any, size: tuple[int, int]) -> None:
    """y: the instance as YAML; without a kubeconfig the pod part says why it is absent."""
    app = build_app(thumbnails=False, backend=RawBackend())
    assert snap_compare(app, terminal_size=size, run_before=open_raw)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_nodes(snap_compare: Any, size: tuple[int, int]) -> None:
    """N: frame rate by node and accelerator; loco-2 is stuck on an otherwise fine node."""
    assert snap_compare(
        build_app(thumbnails=False), terminal_size=size, press=["N"], run_before=_settle
    )

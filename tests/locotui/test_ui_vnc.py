"""Pilot: screen access (V) — a port-forward to a pod's VNC through the Kubernetes layer
(here against a fake API-server websocket that echoes), the viewer command shown and
copied; a local instance's VNC directly; refused in read-only mode."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from backend.kube.portforward import PortForward
from backend.models import InstanceSource
from locotui.data.usercommands import parse_viewer
from locotui.ui.app import LocoApp
from locotui.ui.clock import FrozenClock
from tests.support.builders import NOW, demo_instances, frozen_model
from tests.support.console import ui_settings
from tests.support.portforward import EchoPod
from tests.support.waiting import wait_for


class Kube:
    context = "kind-loco"
    namespace = "loco"
    namespace_source = "flag"

    def __init__(self) -> None:
        self.forwards: list[tuple[str, int]] = []

    async def port_forward(self, name: str, port: int) -> PortForward:
        self.forwards.append((name, port))

        async def open_ws() -> EchoPod:
            return EchoPod(port)

        forward = PortForward(open_ws, port)
        await forward.start()
        return forward

    async def aclose(self) -> None:
        pass


def build(kube: Kube | None, read_only: bool = False, local: bool = False) -> LocoApp:
    instances = demo_instances(3)
    if local:
        instances = [
            i.model_copy(
                update={"source": InstanceSource.LOCAL, "pod": None, "vnc": "127.0.0.1:5901"}
            )
            for i in instances
        ]
    settings = ui_settings(
        "http://backend:8081", namespace="loco", thumbnails=False, read_only=read_only
    )
    return LocoApp(
        settings,
        kube=kube,  # type: ignore[arg-type]
        model=frozen_model(instances),
        clock=FrozenClock(NOW, 1000.0),
        start_feeds=False,
        context="kind-loco",
    )


async def test_port_forward_to_the_pods_vnc_and_the_viewer_command() -> None:
    kube = Kube()
    app = build(kube)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("V")
        await wait_for(pilot, lambda: app.forwards.get("loco-0"), what="the forward")
        forward = app.forwards["loco-0"]
        assert kube.forwards == [("loco-0", 5900)]
        assert app.copied == f"vncviewer 127.0.0.1::{forward.local_port}"
        reader, writer = await asyncio.open_connection("127.0.0.1", forward.local_port)
        writer.write(b"rfb")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(3), 5) == b"RFB"
        writer.close()
        await pilot.press("V")  # the same forward again, not a second one
        await pilot.pause(0.2)
        assert kube.forwards == [("loco-0", 5900)]


async def test_local_instance_vnc_is_direct() -> None:
    app = build(None, local=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("V")
        await wait_for(pilot, lambda: app.copied, what="the command")
        assert app.copied == "vncviewer 127.0.0.1::5901" and not app.forwards


async def test_read_only_opens_no_forward() -> None:
    kube = Kube()
    app = build(kube, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("V")
        await pilot.pause(0.3)
        assert kube.forwards == [] and app.copied is None


async def test_the_configured_viewer_is_launched_with_the_forward(tmp_path: Path) -> None:
    out = tmp_path / "viewer-args"
    script = tmp_path / "viewer.py"
    script.write_text(
        f"import sys, pathlib\npathlib.Path({str(out)!r}).write_text(repr(sys.argv[1:]))\n"
    )
    kube = Kube()
    app = build(kube)
    app.settings = app.settings.model_copy(
        update={"vnc_viewer": parse_viewer([sys.executable, str(script), "$HOST::$PORT", "$NAME"])}
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("V")
        await wait_for(pilot, lambda: app.launched, what="the viewer started")
        await wait_for(pilot, out.exists, what="the viewer ran")
        port = app.forwards["loco-0"].local_port
        assert out.read_text() == repr([f"127.0.0.1::{port}", "loco-0"])
        assert app.copied is None  # launched, not copied

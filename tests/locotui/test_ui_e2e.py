"""End to end: real QEMU emulators, the Kubernetes API simulator, the real backend
(Kubernetes discovery), and the console driven through Pilot.

Two ``loco-emulator run`` supervisors boot the test guest; each simulated pod is bound to
one of them (health URL, VNC address, log file, readiness from ``/ready``). The backend
discovers the pods through the simulator and probes the real supervisors. From the
console: the tiles show real health and a real picture, a soft reset goes through the
backend to QMP, a pod restart goes through Kubernetes with the operator's credentials,
and the log view tails a pod's log through the Kubernetes API.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from locotui.data.backend_client import BackendClient
from locotui.data.kube_client import KubeClient
from locotui.ui.app import LocoApp
from locotui.ui.screens.confirm import ActionScreen
from locotui.ui.screens.logs import LogScreen
from tests.kubesim import KubeSim
from tests.locotui.test_ui_support import (
    BIN,
    ROOT,
    TOKEN,
    free_port,
    screen_text,
    ui_settings,
    wait_for,
)
from tests.support.supervisor import SupervisorProcess, make_image, start_supervisor

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed"),
]

PODS = ["loco-emulator-0", "loco-emulator-1"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, object]]:
    image = make_image(tmp_path)
    sups: list[SupervisorProcess] = []
    backend: subprocess.Popen[bytes] | None = None
    sim = KubeSim(namespace="loco", emulators=len(PODS), kubeconfig=tmp_path / "kubeconfig")
    try:
        for name in PODS:
            sups.append(start_supervisor(tmp_path, name=name, image=image, token=TOKEN))
        sim.start()
        for sup in sups:
            sim.bind_pod(
                sup.name,
                health_url=sup.url,
                vnc=f"127.0.0.1:{sup.vnc_port}",
                log_file=sup.log_path,
                probe_readiness=True,
            )
        port = free_port()
        env = {**sim.env(), "LOCO_CONTROL_TOKEN": TOKEN, "LOG_LEVEL": "warning"}
        env.pop("LOCO_DISCOVERY", None)
        with (tmp_path / "backend.log").open("wb") as log:
            backend = subprocess.Popen(
                [str(BIN / "loco-backend"), "--host", "127.0.0.1", "--port", str(port),
                 "--discovery", "kubernetes", "--namespace", "loco", "--probe-interval", "0.5",
                 "--action-interval", "0.5", "--no-access-log"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=1, trust_env=False).status_code == 200:
                    break
            assert backend.poll() is None, (tmp_path / "backend.log").read_text()
            assert time.monotonic() < deadline, "backend not ready"
            time.sleep(0.1)
        yield {"sim": sim, "url": url, "sups": sups, "tmp": tmp_path}
    finally:
        if backend is not None and backend.poll() is None:
            backend.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                backend.wait(10)
        sim.stop()
        for sup in sups:
            sup.stop()


async def test_real_emulators_through_backend_and_kubernetes(cluster: dict[str, object]) -> None:
    sim: KubeSim = cluster["sim"]  # type: ignore[assignment]
    url: str = cluster["url"]  # type: ignore[assignment]
    kube = await KubeClient.aconnect(sim.kubeconfig, namespace="loco", env={})
    app = LocoApp(
        ui_settings(url, thumbnails=True, thumbnail_interval=1.0),
        backend=BackendClient(url, token=TOKEN),
        kube=kube,
    )
    async with app.run_test(size=(160, 50)) as pilot:
        # Real health: both emulators boot the test guest and report healthy.
        await wait_for(
            pilot,
            lambda: screen_text(app).count("● healthy") == 2,
            timeout=90,
            what="two healthy emulators",
            describe=lambda: screen_text(app),
        )
        text = screen_text(app)
        assert "Running ready" in text and "qemu running" in text
        # A real picture from the guest, as half blocks.
        await wait_for(
            pilot,
            lambda: all(t._thumb.strips for t in app.grid.tiles),
            timeout=30,
            what="thumbnails from the guest",
        )

        # Soft reset of the first one: backend -> supervisor -> QMP system_reset.
        await pilot.press("r")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, what="confirmation"
        )
        assert "Soft reset loco-emulator-0" in screen_text(app)
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.state == "done", timeout=30, what="reset done")
        assert "done: 1 ok, 0 failed" in screen_text(app), screen_text(app)
        await pilot.press("escape")

        # Pod restart: delete through Kubernetes, wait for the Ready replacement.
        old_uid = sim.pod("loco-emulator-0")["metadata"]["uid"]  # type: ignore[index]
        await pilot.press("R")
        screen = await wait_for(
            pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen, what="confirmation"
        )
        assert "Delete pod loco-emulator-0 in namespace loco" in screen_text(app)
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: screen.state == "done",
            timeout=90,
            what="restart done",
            describe=lambda: screen_text(app),
        )
        assert "done: 1 ok, 0 failed" in screen_text(app), screen_text(app)
        assert sim.pod("loco-emulator-0")["metadata"]["uid"] != old_uid  # type: ignore[index]
        await pilot.press("escape")
        assert [e.action.value for e in app.audit.entries] == ["soft_reset", "restart_pod"]

        # The log of the other pod (its container was not replaced, so it has the whole
        # boot) through the Kubernetes API: the supervisor's JSON lines, pretty.
        await pilot.press("right")
        assert app.cursor_name == "loco-emulator-1"
        await pilot.press("L")
        logs = await wait_for(
            pilot, lambda: isinstance(app.screen, LogScreen) and app.screen, what="log view"
        )
        await wait_for(
            pilot,
            lambda: len(logs.view.shown) > 3,
            timeout=30,
            what="log lines",
            describe=lambda: screen_text(app),
        )
        assert any(line.is_json for line in logs.view.shown)
        await pilot.press("escape")

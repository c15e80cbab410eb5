"""The console's ways in and its gated rolling restart, on the real cluster.

A port-forward to an emulator's VNC through the API server with the operator's
credentials (refused for the viewer, whose Role has no ``pods/portforward``), the
backend reached through a port-forward when only a context and namespace are given,
and the health-gated rolling restart: one pod at a time, each back healthy and drawing
before the next.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest

from locotui.data.backend_client import BackendClient
from locotui.data.gated import InstanceStep, RolloutState
from locotui.data.kube_client import KubeClient
from locotui.ui.app import LocoApp
from locotui.ui.screens.gated import GatedScreen
from locotui.ui.screens.prompt import AskScreen
from tests.cluster.fleet import CLUSTER, OPERATOR, STATEFULSET, VIEWER, Fleet
from tests.support.console import screen_text, ui_settings
from tests.support.waiting import wait_for

pytestmark = CLUSTER

PODS = [f"{STATEFULSET}-{i}" for i in range(3)]


@pytest.fixture
async def operator(fleet: Fleet) -> AsyncIterator[KubeClient]:
    client = await KubeClient.aconnect(fleet.kubeconfig_for(OPERATOR))
    yield client
    await client.aclose()


async def _banner(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(30):
            return await reader.readexactly(12)
    finally:
        writer.close()


async def test_port_forward_to_an_emulators_vnc_for_the_operator_only(
    fleet: Fleet, operator: KubeClient
) -> None:
    forward = await operator.port_forward(PODS[0], 5900)
    try:
        assert await _banner(forward.local_port) == b"RFB 003.008\n"
        assert forward.connections == 1 and not forward.errors
    finally:
        await forward.stop()

    viewer = await KubeClient.aconnect(fleet.kubeconfig_for(VIEWER))
    try:
        refused = await viewer.port_forward(PODS[0], 5900)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", refused.local_port)
            async with asyncio.timeout(30):
                assert await reader.read() == b"", "the API server refused: nothing flows"
            writer.close()
            assert refused.errors, "the refusal is kept for the console to show"
            assert "forbidden" in refused.errors[0].lower() or "403" in refused.errors[0]
        finally:
            await refused.stop()
    finally:
        await viewer.aclose()


async def test_the_backend_through_a_port_forward(fleet: Fleet, operator: KubeClient) -> None:
    """What ``locotui --context C -n NS`` does without a backend URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    forward = await operator.backend_forward(sock)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
            resp = await client.get(f"http://127.0.0.1:{port}/api/instances")
        assert resp.status_code == 200, resp.text
        assert sorted(i["name"] for i in resp.json()["items"]) == PODS
    finally:
        await forward.stop()


def _started(fleet: Fleet, name: str) -> datetime:
    pod = fleet.pod(name)
    assert pod is not None
    return datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


async def test_gated_rolling_restart_one_pod_at_a_time(fleet: Fleet) -> None:
    url = fleet.service_url()
    settle = 5.0
    app = LocoApp(
        ui_settings(
            url,
            thumbnails=False,
            default_view="table",
            restart_batch=1,
            restart_settle=settle,
            restart_timeout=240,
        ),
        backend=BackendClient(url, token=fleet.control_token()),
        kube=await KubeClient.aconnect(fleet.kubeconfig_for(OPERATOR)),
    )
    uids = {name: fleet.pod(name)["metadata"]["uid"] for name in PODS}  # type: ignore[index]
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_for(
            pilot,
            lambda: sum(e.healthy for e in app.model.entries.values()) == 3,
            timeout=120,
            what="three healthy emulators",
            describe=lambda: screen_text(app),
        )
        await pilot.press("G")
        await wait_for(pilot, lambda: isinstance(app.screen, AskScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, GatedScreen), what="progress")
        rollout = app.gated
        assert rollout is not None
        await wait_for(
            pilot,
            lambda: rollout.finished,
            timeout=600,
            what="the gated restart to finish",
            describe=lambda: f"{rollout.summary()}\n{screen_text(app)}",
        )
        assert rollout.state is RolloutState.DONE, rollout.summary()
        assert all(i.step is InstanceStep.DONE for i in rollout.items.values())
        assert "DONE" in screen_text(app)
    for name in PODS:
        assert fleet.pod(name)["metadata"]["uid"] != uids[name], name  # type: ignore[index]
    # One at a time: each pod was recreated only after the one before it had come back
    # and stayed healthy and drawing for the settle time.
    started = sorted(_started(fleet, name) for name in PODS)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(started)]
    assert all(gap >= settle - 1 for gap in gaps), gaps  # timestamps are whole seconds

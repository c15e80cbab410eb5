"""KubeClient under faults a real API server cannot be made to produce on demand, served
by the API simulator (tests/kubesim): a watch stream ended by the server at a chosen
moment, a 410 as the HTTP status of a watch request, answers of 500 and 429. Everything
else KubeClient does is tested against the real local cluster in
tests/cluster/test_console_data.py."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from locotui.data.errors import NotFound, RateLimited, ServerError
from locotui.data.kube_client import (
    KubeClient,
    PodChange,
    PodSnapshot,
)
from locotui.data.link import Backoff, LinkChange, LinkState
from tests.kubesim import KubeSim
from tests.support.paths import ROOT
from tests.support.waiting import Collector, eventually

PODS = ["loco-emulator-0", "loco-emulator-1", "loco-emulator-2"]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubeSim]:
    with KubeSim(namespace="loco", emulators=3, kubeconfig=tmp_path / "kubeconfig") as s:
        s.wait_pods_ready(3)
        yield s


@pytest.fixture
async def kube(sim: KubeSim) -> AsyncIterator[KubeClient]:
    client = await KubeClient.aconnect(sim.kubeconfig)
    yield client
    await client.aclose()


async def test_a_dropped_watch_resumes_and_a_410_status_relists(
    sim: KubeSim, kube: KubeClient
) -> None:
    watch = Collector(kube.watch_pods(backoff=Backoff(0.05, 0.2)))
    try:
        first = await watch.wait(lambda i: isinstance(i, PodSnapshot), "snapshot")
        assert len(first.pods) == 3
        # A watch the server ends is resumed without a relist.
        await asyncio.to_thread(sim.drop_watches)
        await asyncio.to_thread(sim.scale, 4)
        await watch.wait(
            lambda i: isinstance(i, PodChange) and i.pod.name == "loco-emulator-3", "pod 3"
        )
        assert sum(isinstance(i, PodSnapshot) for i in watch.items) == 1
        # Expired resourceVersion as an HTTP 410 status on the watch request: relist at once.
        sim.add_error(410, path=r".*watch=true.*", count=1, message="too old resource version")
        await asyncio.to_thread(sim.drop_watches)
        await eventually(
            lambda: sum(isinstance(i, PodSnapshot) for i in watch.items) >= 2, what="relist"
        )
        assert not any(
            isinstance(i, LinkChange) and i.state is LinkState.RECONNECTING for i in watch.items
        )
    finally:
        await watch.close()


async def test_the_look_before_opening_starts_the_watch_without_a_second_list(
    sim: KubeSim, kube: KubeClient
) -> None:
    """The console lists the pods once to see that the cluster answers; its view starts
    watching from that list rather than listing the same pods again."""

    def pod_lists() -> int:
        return sum(
            1
            for method, target in sim.ctx.requests
            if method == "GET" and "/pods?" in target and "watch=true" not in target
        )

    looked = await kube.list_pods()
    assert pod_lists() == 1
    watch = Collector(kube.watch_pods(backoff=Backoff(0.05, 0.2)))
    try:
        first = await watch.wait(lambda i: isinstance(i, PodSnapshot), "snapshot")
        assert first.pods == looked.pods
        assert first.resource_version == looked.resource_version
        await asyncio.to_thread(sim.scale, 4)
        await watch.wait(
            lambda i: isinstance(i, PodChange) and i.pod.name == "loco-emulator-3",
            "a change after the look, from its version",
        )
        assert pod_lists() == 1, "no second list"
    finally:
        await watch.close()
    # Once only: a later watch lists afresh.
    again = Collector(kube.watch_pods(backoff=Backoff(0.05, 0.2)))
    try:
        await again.wait(lambda i: isinstance(i, PodSnapshot), "snapshot")
        assert pod_lists() == 2
    finally:
        await again.close()


async def test_pod_manifest_is_the_api_object_without_managed_fields(kube: KubeClient) -> None:
    manifest = await kube.pod_manifest("loco-emulator-1")
    assert manifest["metadata"]["name"] == "loco-emulator-1"
    assert manifest["kind"] == "Pod" and "spec" in manifest and "status" in manifest
    assert "managedFields" not in manifest["metadata"]
    with pytest.raises(NotFound, match='pods "ghost" not found'):
        await kube.pod_manifest("ghost")


async def test_namespace_events_name_what_they_are_about(kube: KubeClient) -> None:
    events = await kube.namespace_events()
    assert events and all(e.last_seen is not None for e in events)
    times = [e.last_seen for e in events]
    assert times == sorted(times)  # type: ignore[type-var]
    pods = {e.pod for e in events if e.pod}
    assert "loco-emulator-1" in pods
    assert {"Scheduled", "Started"} <= {e.reason for e in events if e.pod == "loco-emulator-1"}


async def test_port_forward_without_api_support_says_why(kube: KubeClient) -> None:
    """The simulator has no port-forward endpoint: the listener opens, the connection is
    closed, and the API's refusal is kept for the console to show. (A real forward is
    tested against a real cluster.)"""
    forward = await kube.port_forward("loco-emulator-1", 5900)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", forward.local_port)
        async with asyncio.timeout(10):
            assert await reader.read() == b""
        writer.close()
        assert forward.connections == 1 and forward.errors
        assert "port-forward to pod loco-emulator-1" in forward.errors[0]
    finally:
        await forward.stop()


async def test_backend_endpoint_is_a_ready_backend_pod(sim: KubeSim, kube: KubeClient) -> None:
    with pytest.raises(
        NotFound, match=r"no Ready pod labelled app\.kubernetes\.io/component=backend"
    ):
        await kube.backend_endpoint()
    labels = {
        "app.kubernetes.io/component": "backend",
        "app.kubernetes.io/part-of": "lego-loco-cluster",
    }
    await asyncio.to_thread(sim.create_statefulset, "loco-backend", 1, labels=labels)
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        try:
            endpoint = await kube.backend_endpoint()
            break
        except NotFound:
            assert asyncio.get_running_loop().time() < deadline, "no backend pod became Ready"
            await asyncio.sleep(0.1)
    assert endpoint == ("loco-backend-0", 8081)  # no port named http: the default


def test_context_and_namespace_alone_reach_the_backend_through_the_cluster(
    sim: KubeSim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from locotui import console
    from locotui.config import load_settings

    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "KUBECONFIG": str(sim.kubeconfig)}
    given = load_settings({"namespace": "loco"}, env=env)
    assert console.backend_through_cluster(given)
    assert not console.backend_through_cluster(
        load_settings({"namespace": "loco", "backend_url": "http://b:1"}, env=env)
    )
    assert not console.backend_through_cluster(load_settings({}, env=env))
    # No backend pod in the namespace: one line, exit 2, before any terminal is touched.
    code = console.run_console(given, env)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "no Ready pod labelled app.kubernetes.io/component=backend" in err
    assert "give --backend URL otherwise" in err
    # A backend pod, but no port-forward (the simulator has none; a Role without
    # pods/portforward is refused the same way): found before the console opens.
    labels = {
        "app.kubernetes.io/component": "backend",
        "app.kubernetes.io/part-of": "lego-loco-cluster",
    }
    sim.create_statefulset("loco-backend", 1, labels=labels)
    sim.wait_pods_ready(4)  # three emulators and the backend
    code = console.run_console(given, env)
    err = capsys.readouterr().err
    assert code == 2 and "port-forward to pod loco-backend-0" in err, err


async def test_unreachable_and_server_errors(sim: KubeSim, kube: KubeClient) -> None:
    sim.add_error(500, path="/api/v1/namespaces/loco/pods.*", count=1, message="etcd hiccup")
    with pytest.raises(ServerError, match="API error 500: etcd hiccup"):
        await kube.list_pods()
    sim.add_error(429, path="/api/v1/namespaces/loco/pods.*", count=1)
    with pytest.raises(RateLimited):
        await kube.list_pods()


def test_api_classes_load_in_the_background_not_on_the_way_to_the_first_list(
    sim: KubeSim,
) -> None:
    """In a fresh interpreter: the pod list (what the console's start waits for) does not
    load the generated API classes; they load by themselves soon after, also when the
    first loop ended at once (the look before the console opens), so the first restart
    does not stall the console while a module of megabytes is imported."""
    script = f"""
import asyncio, time
from backend.kube.api import api_modules_loaded
from locotui.data.kube_client import KubeClient

async def look():
    kube = await KubeClient.aconnect({str(sim.kubeconfig)!r})
    await kube.list_pods()
    await kube.aclose()
    return kube

kube = asyncio.run(look())
print("after the look:", api_modules_loaded())

async def app():
    await kube.list_pods()
    deadline = time.monotonic() + 20
    while not api_modules_loaded() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print("later:", api_modules_loaded())
    await kube.aclose()

asyncio.run(app())
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert "after the look: False" in out.stdout, out.stdout
    assert "later: True" in out.stdout, out.stdout

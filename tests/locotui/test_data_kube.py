"""KubeClient under faults a real API server cannot be made to produce on demand, served
by the API simulator (tests/kubesim): a watch stream ended by the server at a chosen
moment, a 410 as the HTTP status of a watch request, answers of 500 and 429. Everything
else KubeClient does is tested against the real local cluster in
tests/cluster/test_console_data.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from locotui.data.errors import RateLimited, ServerError
from locotui.data.kube_client import (
    KubeClient,
    PodChange,
    PodSnapshot,
)
from locotui.data.link import Backoff, LinkChange, LinkState
from tests.kubesim import KubeSim
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


async def test_unreachable_and_server_errors(sim: KubeSim, kube: KubeClient) -> None:
    sim.add_error(500, path="/api/v1/namespaces/loco/pods.*", count=1, message="etcd hiccup")
    with pytest.raises(ServerError, match="API error 500: etcd hiccup"):
        await kube.list_pods()
    sim.add_error(429, path="/api/v1/namespaces/loco/pods.*", count=1)
    with pytest.raises(RateLimited):
        await kube.list_pods()

"""KubeClient (official client, operator credentials) against the Kubernetes API simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.models import InstanceStatus
from locotui.data.backend_client import BackendClient
from locotui.data.errors import Forbidden, NotFound, RateLimited, ServerError, Unreachable
from locotui.data.feeds import FleetFeeds
from locotui.data.fleet import FleetModel, Origin, Source
from locotui.data.kube_client import (
    RESTARTED_AT,
    KubeClient,
    KubeConfigError,
    PodChange,
    PodSnapshot,
)
from locotui.data.link import Backoff, LinkChange, LinkState
from tests.backend.fake_emulator import FakeEmulators
from tests.backend.helpers import write_static
from tests.kubesim import KubeSim
from tests.locotui.test_data_support import BackendProcess, eventually, free_port

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


class Collector:
    """Consumes an async iterator in a task, keeping every item, for deadline-bound asserts."""

    def __init__(self, iterator: AsyncIterator[Any]) -> None:
        self.items: list[Any] = []
        self._it = iterator
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for item in self._it:
            self.items.append(item)

    async def wait(self, predicate: Any, what: str, timeout: float = 10.0) -> Any:
        def find() -> Any:
            return next((i for i in self.items if predicate(i)), None)

        return await eventually(find, timeout, what)

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_connect_like_kubectl(sim: KubeSim, tmp_path: Path) -> None:
    kube = await KubeClient.aconnect(sim.kubeconfig)
    assert (kube.namespace, kube.namespace_source) == ("loco", "kubeconfig")
    assert kube.server == sim.url
    other = await KubeClient.aconnect(sim.kubeconfig, namespace="elsewhere")
    assert (other.namespace, other.namespace_source) == ("elsewhere", "flag")
    # $KUBECONFIG is honoured like kubectl does.
    env_kube = await asyncio.to_thread(KubeClient.connect, env={"KUBECONFIG": str(sim.kubeconfig)})
    assert env_kube.server == sim.url
    with pytest.raises(KubeConfigError, match=r"no context named 'prod'.*kubesim-readonly"):
        await KubeClient.aconnect(sim.kubeconfig, context="prod")
    with pytest.raises(KubeConfigError, match="not found"):
        await KubeClient.aconnect(tmp_path / "nope")
    for k in (kube, other, env_kube):
        await k.aclose()


async def test_list_and_watch_pods(sim: KubeSim, kube: KubeClient) -> None:
    snap = await kube.list_pods()
    assert [p.name for p in snap.pods] == PODS
    assert all(p.owner_kind == "StatefulSet" and p.owner_name == "loco-emulator" for p in snap.pods)
    assert all(p.facts.ready and p.facts.node for p in snap.pods)
    # A pod without the emulator labels is not listed.
    sim.create_statefulset("other", 1, labels={"app": "other"})
    await sim.async_wait_for(lambda: sim.pods(label_selector="app=other"), what="other pod")
    assert [p.name for p in (await kube.list_pods()).pods] == PODS

    watch = Collector(kube.watch_pods(backoff=Backoff(0.05, 0.2)))
    try:
        first = await watch.wait(lambda i: isinstance(i, PodSnapshot), "snapshot")
        assert len(first.pods) == 3
        await asyncio.to_thread(sim.scale, 4)
        added = await watch.wait(
            lambda i: isinstance(i, PodChange) and i.kind == "ADDED", "ADDED pod 3"
        )
        assert added.pod.name == "loco-emulator-3"
        await asyncio.to_thread(sim.delete_pod, "loco-emulator-0")
        await watch.wait(
            lambda i: (
                isinstance(i, PodChange) and i.kind == "DELETED" and i.pod.name == "loco-emulator-0"
            ),
            "DELETED",
        )
        # A watch the server ends is resumed without a relist.
        await asyncio.to_thread(sim.drop_watches)
        await asyncio.to_thread(sim.scale, 5)
        await watch.wait(
            lambda i: isinstance(i, PodChange) and i.pod.name == "loco-emulator-4", "pod 4"
        )
        assert sum(isinstance(i, PodSnapshot) for i in watch.items) == 1
        # Expired resourceVersion (410 Gone, as an HTTP status here): relist at once.
        sim.add_error(410, path=r".*watch=true.*", count=1, message="too old resource version")
        await asyncio.to_thread(sim.drop_watches)
        await eventually(
            lambda: sum(isinstance(i, PodSnapshot) for i in watch.items) >= 2, what="relist"
        )
        assert not any(
            isinstance(i, LinkChange) and i.state is LinkState.RECONNECTING for i in watch.items
        )
        # An outage: RECONNECTING with the reason, then back.
        await asyncio.to_thread(sim.down)
        lost = await watch.wait(
            lambda i: isinstance(i, LinkChange) and i.state is LinkState.RECONNECTING,
            "reconnecting",
        )
        assert "unreachable" in (lost.error or "")
        n = len(watch.items)
        await asyncio.to_thread(sim.up)
        await eventually(
            lambda: any(
                isinstance(i, LinkChange) and i.state is LinkState.CONNECTED
                for i in watch.items[n:]
            ),
            what="reconnected",
        )
    finally:
        await watch.close()


async def test_pod_logs_tail_timestamps_follow_previous_since(
    sim: KubeSim, kube: KubeClient
) -> None:
    name = "loco-emulator-0"
    sim.append_log(name, *(f'{{"level":"info","message":"boot {i}"}}' for i in range(5)))
    lines = [ln async for ln in kube.pod_logs(name, tail=2)]
    assert lines == ['{"level":"info","message":"boot 3"}', '{"level":"info","message":"boot 4"}']
    stamped = [ln async for ln in kube.pod_logs(name, tail=1, timestamps=True)]
    assert stamped[0].endswith(' {"level":"info","message":"boot 4"}') and stamped[0][:4].isdigit()

    follow = kube.pod_logs(name, tail=1, follow=True)
    async with asyncio.timeout(10):
        assert await anext(follow) == '{"level":"info","message":"boot 4"}'
        sim.append_log(name, "new line")
        assert await anext(follow) == "new line"
    await follow.aclose()

    # --previous: the container crashed and was restarted in place.
    await asyncio.to_thread(sim.restart_container, name)
    sim.append_log(name, "after restart")
    assert [ln async for ln in kube.pod_logs(name)] == ["after restart"]
    previous = [ln async for ln in kube.pod_logs(name, previous=True)]
    assert previous[-2:] == ['{"level":"info","message":"boot 4"}', "new line"]

    # sinceSeconds: lines older than that are left out.
    await asyncio.sleep(1.2)  # the only way to make lines older than 1 s is to wait 1 s
    sim.append_log(name, "fresh")
    assert [ln async for ln in kube.pod_logs(name, since_seconds=1)] == ["fresh"]

    with pytest.raises(NotFound, match="ghost"):
        _ = [ln async for ln in kube.pod_logs("ghost")]


async def test_delete_pod_is_recreated_by_the_statefulset(sim: KubeSim, kube: KubeClient) -> None:
    before = await kube.get_pod("loco-emulator-1")
    uid = await kube.delete_pod("loco-emulator-1")
    assert uid == before.uid
    async with asyncio.timeout(10):
        new = await kube.wait_pod_replaced("loco-emulator-1", uid, poll=0.02)
    assert new.uid != uid and new.facts.ready
    events = await kube.pod_events("loco-emulator-1")
    assert {"Scheduled", "Started"} <= {e.reason for e in events}
    assert all(e.last_seen is not None for e in events)
    with pytest.raises(NotFound, match='pods "ghost" not found'):
        await kube.delete_pod("ghost")


async def test_rollout_restart_replaces_every_pod(sim: KubeSim, kube: KubeClient) -> None:
    uids = {p.name: p.uid for p in (await kube.list_pods()).pods}
    assert await kube.statefulsets_of(["loco-emulator-0"]) == ["loco-emulator"]
    stamp = await kube.rollout_restart("loco-emulator")
    sts = sim.statefulset()
    assert sts is not None
    annotation = sts["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    assert annotation == stamp.isoformat().replace("+00:00", "Z")
    async with asyncio.timeout(20):
        while not (status := await kube.rollout_status("loco-emulator")).done:
            await asyncio.sleep(0.05)
    assert status.replicas == status.updated == status.ready == 3
    after = {p.name: p.uid for p in (await kube.list_pods()).pods}
    assert all(after[n] != uids[n] for n in PODS)


async def test_read_only_credentials_get_typed_rbac_denials(sim: KubeSim) -> None:
    ro = await KubeClient.aconnect(sim.kubeconfig, context=sim.context_for(sim.readonly))
    try:
        assert len((await ro.list_pods()).pods) == 3  # reading is allowed
        with pytest.raises(Forbidden) as err:
            await ro.delete_pod("loco-emulator-0")
        assert err.value.source == "kubernetes" and err.value.status == 403
        assert str(err.value) == (
            'delete pod loco-emulator-0: RBAC denied: pods "loco-emulator-0" is forbidden: '
            'User "kubesim-readonly" cannot delete resource "pods" in API group "" in the '
            'namespace "loco"'
        )
        with pytest.raises(Forbidden, match='cannot patch resource "statefulsets"'):
            await ro.rollout_restart("loco-emulator")
    finally:
        await ro.aclose()
    assert sim.pod("loco-emulator-0") is not None


async def test_unreachable_and_server_errors(sim: KubeSim, kube: KubeClient) -> None:
    sim.add_error(500, path="/api/v1/namespaces/loco/pods.*", count=1, message="etcd hiccup")
    with pytest.raises(ServerError, match="API error 500: etcd hiccup"):
        await kube.list_pods()
    sim.add_error(429, path="/api/v1/namespaces/loco/pods.*", count=1)
    with pytest.raises(RateLimited):
        await kube.list_pods()
    await asyncio.to_thread(sim.down)
    try:
        with pytest.raises(Unreachable, match=f"Kubernetes API {sim.url} unreachable"):
            await kube.list_pods()
    finally:
        await asyncio.to_thread(sim.up)


async def test_feeds_fall_back_to_kubernetes_and_back(sim: KubeSim, tmp_path: Path) -> None:
    """The backend is down: pods appear from Kubernetes (no health) as soon as its first
    connection is refused, not after ``fallback_after`` (which is for a backend lost after
    it was connected); once the backend is up its summary snapshot replaces the fallback
    view."""
    port = free_port()
    fleet = FleetModel(max_rate=50)
    async with FakeEmulators(PODS) as fake, BackendClient(f"http://127.0.0.1:{port}") as client:
        feeds = FleetFeeds(
            fleet,
            backend=client,
            kube=lambda: KubeClient.aconnect(sim.kubeconfig),
            fallback_after=600,
            backoff=lambda: Backoff(0.05, 0.2),
            summary=True,
        )
        await feeds.start()
        backend = BackendProcess(write_static(tmp_path / "s.yaml", fake), port=port)
        try:
            await eventually(lambda: len(fleet) == 3, what="fallback pods")
            assert feeds.fallback_active
            e = fleet.get("loco-emulator-0")
            assert e is not None and e.origin is Origin.KUBERNETES and e.summary.qemu is None
            assert fleet.links[Source.KUBERNETES].state is LinkState.CONNECTED
            assert fleet.links[Source.BACKEND].error and not fleet.live
            # Pod changes show up in the fallback view.
            await asyncio.to_thread(sim.delete_pod, "loco-emulator-2")
            await eventually(
                lambda: (
                    (x := fleet.get("loco-emulator-2")) is None
                    or x.status is not InstanceStatus.UNKNOWN
                ),
                what="pod change in fallback",
            )
            await backend.start()
            await eventually(
                lambda: (
                    fleet.live
                    and all(e.origin is Origin.BACKEND for e in fleet.entries.values())
                    and len(fleet) == 3
                ),
                what="backend view back",
            )
            assert not feeds.fallback_active
            assert fleet.links[Source.KUBERNETES].state is LinkState.IDLE
            await eventually(
                lambda: (x := fleet.get("loco-emulator-0")) is not None and x.summary.qemu,
                what="health in the summary",
            )
            back = fleet.get("loco-emulator-0")
            assert back is not None and back.full is None, "the summary stream, no health body"
        finally:
            await feeds.stop()
            await backend.stop()
            if feeds.kube is not None:
                await feeds.kube.aclose()


def test_stream_threads_end_with_the_iteration(sim: KubeSim) -> None:
    """Closing a follow stream from the loop unblocks its reader thread promptly."""
    import threading

    async def run() -> None:
        kube = await KubeClient.aconnect(sim.kubeconfig)
        sim.append_log("loco-emulator-0", "one line")
        follow = kube.pod_logs("loco-emulator-0", follow=True, tail=1)
        async with asyncio.timeout(10):
            assert await anext(follow) == "one line"
        # The reader thread is now blocked in a read on a quiet stream.
        task = asyncio.create_task(anext(follow))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await follow.aclose()
        await kube.aclose()

    asyncio.run(run())
    deadline = time.monotonic() + 5
    while any(t.name == "kube-logs" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "log reader thread still running"
        time.sleep(0.01)

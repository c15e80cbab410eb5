"""Kubernetes discovery against the API simulator (tests/kubesim).

Every simulated pod is bound to a fake supervisor on loopback *before* the backend
starts, and the backend's HTTP transport refuses non-loopback hosts: simulated pod IPs
are private-range addresses that a test must never contact.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from backend.kube.config import connect
from backend.models import (
    FLEET_EVENT_ADAPTER,
    BreakerState,
    InstanceList,
    InstanceSource,
    InstanceStatus,
    NamespaceSource,
    RemovedEvent,
)
from backend.runtime import BackendRuntime, build_runtime
from tests.backend.fake_emulator import FakeEmulators
from tests.backend.helpers import LoopbackOnly, eventually, serve, settings
from tests.kubesim import KubeSim

NS = "loco"
STS = "loco-emulator"
TOKEN = "k8s-test-token"


def pod_names(n: int) -> list[str]:
    return [f"{STS}-{i}" for i in range(n)]


@asynccontextmanager
async def cluster(
    tmp_path: Path, pods: int = 3, spare: int = 2
) -> AsyncIterator[tuple[KubeSim, FakeEmulators]]:
    """A simulator whose pods (and ``spare`` future ones) are bound to fake supervisors."""
    async with FakeEmulators(pod_names(pods + spare), token=TOKEN) as fake:
        sim = KubeSim(namespace=NS, emulators=0, kubeconfig=tmp_path / "kubeconfig")
        sim.start()
        try:
            for name in pod_names(pods + spare):
                sim.bind_pod(name, health_url=fake.url(name), vnc="127.0.0.1:5900")
            sim.create_statefulset(STS, pods)
            await sim.async_wait_pods_ready(pods)
            yield sim, fake
        finally:
            sim.stop()


async def k8s_runtime(sim: KubeSim, transport: LoopbackOnly, **changes: object) -> BackendRuntime:
    opts: dict[str, object] = {
        "discovery": InstanceSource.KUBERNETES,
        "kubeconfig": sim.kubeconfig,
        "namespace": NS,
        "resync_seconds": 30.0,
        "kube_request_timeout": 10.0,
        "control_token": TOKEN,
        "action_interval": 0.1,
    }
    opts.update(changes)
    kube = await connect(sim.kubeconfig, None, env={})
    return build_runtime(settings(**opts), env={}, http_transport=transport, kube=kube)  # type: ignore[arg-type]


def names(runtime: BackendRuntime) -> list[str]:
    return sorted(runtime.fleet.names())


def removed_names(runtime: BackendRuntime, after: int) -> list[str]:
    out = []
    for _, chunk in runtime.fleet.events_after(after) or []:
        event = FLEET_EVENT_ADAPTER.validate_json(chunk.decode().split("data: ", 1)[1])
        if isinstance(event, RemovedEvent):
            out.append(event.name)
    return out


def counter(runtime: BackendRuntime, name: str, **labels: str) -> float:
    return runtime.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_pods_appear_change_and_disappear(tmp_path: Path) -> None:
    transport = LoopbackOnly()
    async with cluster(tmp_path) as (sim, fake):
        runtime = await k8s_runtime(sim, transport)
        fleet = runtime.fleet
        async with serve(runtime) as url, httpx.AsyncClient(base_url=url) as client:

            def all_healthy(n: int) -> bool:
                items = fleet.instances()
                return len(items) == n and all(i.status is InstanceStatus.HEALTHY for i in items)

            await eventually(lambda: all_healthy(3), fleet=fleet, what="3 healthy pods")
            body = InstanceList.model_validate_json((await client.get("/api/instances")).content)
            assert body.discovery.namespace == NS
            assert body.discovery.namespace_source is NamespaceSource.FLAG
            inst = body.items[0]
            assert inst.source is InstanceSource.KUBERNETES and inst.pod is not None
            assert inst.pod.phase == "Running" and inst.pod.ready and inst.pod.node
            assert inst.pod.ip == "127.0.0.1" and inst.pod.start_time is not None
            assert any(c.type == "Ready" and c.status == "True" for c in inst.pod.conditions)
            assert inst.health_url == fake.url(inst.name)
            assert (await client.get("/ready")).status_code == 200

            # scale up: a new pod appears and turns healthy
            sim.scale(4, STS)
            await eventually(lambda: all_healthy(4), fleet=fleet, what="4 healthy pods")

            # a container restart shows in the pod facts
            sim.restart_container(f"{STS}-1")
            await eventually(
                lambda: (fleet.get(f"{STS}-1") or inst).pod.restarts >= 1,  # type: ignore[union-attr]
                fleet=fleet,
                what="restart count",
            )

            # readiness lost: the emulator says healthy, Kubernetes disagrees → degraded
            sim.set_ready(f"{STS}-2", False)
            await eventually(
                lambda: (fleet.get(f"{STS}-2") or inst).status is InstanceStatus.DEGRADED,
                fleet=fleet,
                what="not-ready pod degraded",
            )
            sim.set_ready(f"{STS}-2", None)

            # scale down: pods disappear
            sim.scale(2, STS)
            await eventually(
                lambda: names(runtime) == pod_names(2), fleet=fleet, what="2 pods left", timeout=20
            )
    assert transport.blocked == []


async def test_restart_deletes_the_pod_and_it_comes_back(tmp_path: Path) -> None:
    transport = LoopbackOnly()
    async with cluster(tmp_path, pods=2) as (sim, _fake):
        runtime = await k8s_runtime(sim, transport)
        fleet = runtime.fleet
        async with serve(runtime) as url, httpx.AsyncClient(base_url=url) as client:
            await eventually(lambda: len(fleet) == 2, fleet=fleet, what="2 pods")
            victim = f"{STS}-0"
            old_uid = (sim.pod(victim, NS) or {})["metadata"]["uid"]
            seq = fleet.seq
            resp = await client.post(
                f"/api/instances/{victim}/restart", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert resp.status_code == 200, resp.text
            assert "deleted" in resp.json()["message"]

            def replaced() -> bool:
                inst = fleet.get(victim)
                return (
                    inst is not None
                    and inst.pod is not None
                    and inst.pod.uid not in (None, old_uid)
                    and inst.status is InstanceStatus.HEALTHY
                )

            await eventually(replaced, fleet=fleet, what="replacement pod healthy", timeout=20)
            # on the way: the old pod terminating (unhealthy) and removed, then the new one
            seen = []
            for _, chunk in fleet.events_after(seq) or []:
                event = FLEET_EVENT_ADAPTER.validate_json(chunk.decode().split("data: ", 1)[1])
                if isinstance(event, RemovedEvent) and event.name == victim:
                    seen.append("removed")
                elif getattr(event, "instance", None) is not None:
                    i = event.instance
                    if i.name == victim and i.pod is not None and i.pod.deleting:
                        assert i.status is InstanceStatus.UNHEALTHY
                        seen.append("terminating")
            assert "removed" in seen and seen.index("removed") > 0
            # reset goes to the supervisor through the health URL annotation
            resp = await client.post(
                f"/api/instances/{f'{STS}-1'}/reset", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert resp.status_code == 200, resp.text


async def test_relist_after_410_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    transport = LoopbackOnly()
    async with cluster(tmp_path, pods=3) as (sim, _fake):
        runtime = await k8s_runtime(sim, transport, probing=False)
        fleet = runtime.fleet
        await runtime.start()
        try:
            await eventually(lambda: len(fleet) == 3, fleet=fleet, what="3 pods")
            seq = fleet.seq
            gone_before = counter(
                runtime, "loco_backend_discovery_relists_total", source="kubernetes", reason="gone"
            )

            # history compacted + watches dropped: the re-watch gets 410 Gone → relist.
            # (A bookmark slipping in between the two calls would carry a fresh version,
            # so the pair is retried a few times before the test gives up.)
            def relisted() -> bool:
                return (
                    counter(
                        runtime,
                        "loco_backend_discovery_relists_total",
                        source="kubernetes",
                        reason="gone",
                    )
                    > gone_before
                )

            for _attempt in range(3):
                sim.expire_resource_versions()
                sim.drop_watches()
                with contextlib.suppress(AssertionError):
                    await eventually(relisted, fleet=fleet, timeout=8, what="relist after 410")
                    break
            assert relisted(), "no relist after 410 Gone in 3 attempts"
            assert names(runtime) == pod_names(3)
            assert removed_names(runtime, seq) == [], "a relist removes nothing that exists"
            # and the watch works again after the relist
            sim.scale(4, STS)
            await eventually(lambda: len(fleet) == 4, fleet=fleet, what="4th pod after relist")
        finally:
            await runtime.stop()
    assert transport.blocked == []


async def test_api_outage_keeps_fleet_stale_then_recovers(tmp_path: Path) -> None:
    transport = LoopbackOnly()
    async with cluster(tmp_path, pods=2) as (sim, _fake):
        runtime = await k8s_runtime(sim, transport, breaker_threshold=2, breaker_reset=0.3)
        fleet = runtime.fleet
        await runtime.start()
        try:
            await eventually(lambda: len(fleet) == 2 and fleet.discovery.synced, fleet=fleet)
            sim.down()
            try:
                await eventually(
                    lambda: not fleet.discovery.ok,
                    fleet=fleet,
                    timeout=20,
                    what="discovery out of contact",
                )
                assert names(runtime) == pod_names(2), "last known fleet stays"
                for inst in fleet.instances():
                    assert inst.stale and "discovery" in (inst.stale_reason or "")
                    assert inst.pod is not None and inst.pod.phase == "Running"
                assert fleet.discovery.error
                # the API breaker opens while the outage lasts
                await eventually(
                    lambda: (
                        runtime.metrics.registry.get_sample_value(
                            "loco_backend_circuit_breaker_state",
                            {
                                "target": "kubernetes-api",
                                "loco_backend_circuit_breaker_state": "open",
                            },
                        )
                        == 1.0
                    ),
                    timeout=20,
                    what="API breaker open",
                )
            finally:
                sim.up()
            await eventually(
                lambda: fleet.discovery.ok, fleet=fleet, timeout=15, what="discovery back"
            )
            assert all(not i.stale for i in fleet.instances())
            assert (
                counter(
                    runtime, "loco_backend_discovery_errors_total", source="kubernetes", kind="api"
                )
                >= 1
            )
            sim.scale(3, STS)
            await eventually(
                lambda: len(fleet) == 3, fleet=fleet, timeout=20, what="changes seen after recovery"
            )
            api = runtime.metrics.registry.get_sample_value(
                "loco_backend_circuit_breaker_state",
                {"target": "kubernetes-api", "loco_backend_circuit_breaker_state": "closed"},
            )
            assert api == 1.0
            assert all(i.breaker.state is BreakerState.CLOSED for i in fleet.instances())
        finally:
            await runtime.stop()
    assert transport.blocked == []


async def test_namespace_from_kubeconfig_context_and_pod_logs(tmp_path: Path) -> None:
    transport = LoopbackOnly()
    async with cluster(tmp_path, pods=1, spare=0) as (sim, _fake):
        runtime = await k8s_runtime(
            sim,
            transport,
            namespace=None,
            service_account_namespace_file=tmp_path / "no-such-file",
        )
        assert runtime.fleet.discovery.namespace == NS
        assert runtime.fleet.discovery.namespace_source is NamespaceSource.KUBECONFIG
        async with serve(runtime) as url, httpx.AsyncClient(base_url=url) as client:
            await eventually(lambda: len(runtime.fleet) == 1, fleet=runtime.fleet)
            name = f"{STS}-0"
            sim.append_log(name, "hello from the pod", "second line")
            resp = await client.get(f"/api/instances/{name}/logs", params={"tail": 1})
            assert resp.status_code == 200, resp.text
            assert resp.text.strip().endswith("second line")
            resp = await client.get(f"/api/instances/{name}/logs", params={"follow": "true"})
            assert resp.status_code == 400 and resp.json()["error"] == "unsupported"
        await asyncio.sleep(0)
    assert transport.blocked == []

"""Using the simulator from async tests: it must never block on, or be blocked by, the
test's own event loop."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.kubesim import KubeSim


async def test_async_watch_while_the_cluster_changes(tmp_path: Path) -> None:
    async with KubeSim(namespace="loco", emulators=2, kubeconfig=tmp_path / "kc") as sim:
        await sim.async_wait_pods_ready(2)
        headers = {"Authorization": f"Bearer {sim.admin.token}"}
        rv = str(sim.resource_version)
        url = f"{sim.url}/api/v1/namespaces/loco/pods"
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "labelSelector": "app.kubernetes.io/component=emulator",
        }
        seen: list[tuple[str, str]] = []
        async with (
            httpx.AsyncClient(verify=sim.ssl_context(), timeout=10) as http,
            http.stream("GET", url, params=params, headers=headers) as resp,
        ):
            assert resp.status_code == 200
            sim.delete_pod("loco-emulator-1", grace_seconds=0)
            async for line in resp.aiter_lines():
                ev = json.loads(line)
                seen.append((ev["type"], ev["object"]["metadata"]["name"]))
                if ev["type"] == "ADDED":
                    break
        assert seen[0] == ("DELETED", "loco-emulator-1")
        assert seen[-1] == ("ADDED", "loco-emulator-1")
        pods = await sim.async_wait_pods_ready(2)
        assert {p["metadata"]["name"] for p in pods} == {"loco-emulator-0", "loco-emulator-1"}

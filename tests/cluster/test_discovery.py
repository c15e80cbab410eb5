"""Discovery by the backend the chart runs in the cluster, with its ServiceAccount only.

The backend is reached at its pod's address (the host routes to the pod network), so it
stays observable while the API server is down.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx

from backend.kube.config import connect
from backend.models import InstanceSource, NamespaceSource
from backend.runtime import build_runtime
from localcluster import access, topology
from tests.backend.helpers import settings
from tests.cluster.fleet import CLUSTER, STATEFULSET, Fleet, api_server_down
from tests.support.waiting import eventually, poll_until

pytestmark = CLUSTER


def _by_name(fleet: Fleet, url: str | None = None) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in fleet.instances(url)["items"]}


def _healthy(
    fleet: Fleet, names: list[str], url: str | None = None, fps: float = 0.0
) -> dict[str, Any] | None:
    """The instances when exactly ``names`` are listed, healthy, fresh (and drawing)."""
    items = _by_name(fleet, url)
    if sorted(items) != sorted(names):
        return None
    if all(
        i["status"] == "healthy" and not i["stale"] and (i["fps"] or 0) > fps
        for i in items.values()
    ):
        return items
    return None


def _discovery(fleet: Fleet, url: str, ok: bool) -> dict[str, Any] | None:
    """The backend's view when its discovery is (not) in contact with the API server."""
    body = fleet.instances(url)
    return body if body["discovery"]["ok"] is ok else None


def _api_breaker(fleet: Fleet, url: str, state: str) -> float:
    return fleet.metric(
        "loco_backend_circuit_breaker_state",
        url,
        target="kubernetes-api",
        loco_backend_circuit_breaker_state=state,
    )


def _names(n: int) -> list[str]:
    return [f"{STATEFULSET}-{i}" for i in range(n)]


def test_backend_finds_every_emulator_by_the_labels(fleet: Fleet) -> None:
    url = fleet.backend_url()
    # A pod with only some of the labels is not an emulator (pause image: nothing runs).
    decoy = "not-an-emulator"
    pause = fleet.cluster.info().images["pause"]  # type: ignore[union-attr]
    fleet.ok(
        "run", decoy, f"--image={pause}", "--image-pull-policy=Never", "--restart=Never",
        "--labels=app.kubernetes.io/component=emulator,app.kubernetes.io/name=lego-loco-emulator",
    )  # fmt: skip
    try:
        poll_until(lambda: fleet.get("pod", decoy)["status"].get("phase") == "Running", 60, "decoy")
        items = poll_until(
            lambda: _healthy(fleet, _names(3), url, fps=5), 90, "3 emulators drawing frames"
        )
    finally:
        fleet.ok("delete", "pod", decoy, "--wait=false")
    body = fleet.instances(url)
    assert body["discovery"]["source"] == "kubernetes" and body["discovery"]["synced"]
    assert body["discovery"]["namespace"] == fleet.namespace
    # In a pod, the namespace comes from the ServiceAccount's mounted namespace file.
    assert body["discovery"]["namespace_source"] == "service_account"
    for name, inst in items.items():
        pod = fleet.pod(name)
        assert pod is not None
        assert inst["pod"]["uid"] == pod["metadata"]["uid"]
        assert inst["pod"]["ip"] == pod["status"]["podIP"]
        assert inst["pod"]["node"] == fleet.cluster.info().node_name  # type: ignore[union-attr]
        assert inst["health_url"] == f"http://{pod['status']['podIP']}:8080"
        assert inst["health"]["instance"] == name


def test_scale_up_and_down_is_followed(fleet: Fleet) -> None:
    url = fleet.backend_url()
    try:
        fleet.scale(4)
        poll_until(lambda: _healthy(fleet, _names(4), url), 120, "a 4th healthy emulator")
        fleet.scale(2)
        poll_until(lambda: _healthy(fleet, _names(2), url), 120, "2 emulators left")
    finally:
        fleet.scale(3)
    poll_until(lambda: _healthy(fleet, _names(3), url), 120, "3 emulators again")


def test_a_deleted_pod_comes_back_under_its_name_with_a_new_uid(fleet: Fleet) -> None:
    url = fleet.backend_url()
    victim = f"{STATEFULSET}-0"
    old_uid = _by_name(fleet, url)[victim]["pod"]["uid"]
    fleet.ok("delete", "pod", victim, "--wait=false")

    def replaced() -> dict[str, Any] | None:
        inst = _by_name(fleet, url).get(victim)
        if inst and inst["pod"]["uid"] != old_uid and inst["status"] == "healthy":
            return inst
        return None

    inst = poll_until(replaced, 120, f"{victim} back with a new UID, healthy")
    pod = fleet.pod(victim)
    assert pod is not None and inst["pod"]["uid"] == pod["metadata"]["uid"]
    assert sorted(_by_name(fleet, url)) == _names(3), "nothing lost, nothing duplicated"


def _sse_events(url: str, seen: list[tuple[str, dict[str, Any]]], stop: threading.Event) -> None:
    """Reads the backend's event stream into ``seen`` until ``stop`` is set."""
    with httpx.stream("GET", f"{url}/api/events", timeout=httpx.Timeout(5, read=2)) as resp:
        event = ""
        lines = resp.iter_lines()
        while not stop.is_set():
            try:
                line = next(lines)
            except (httpx.ReadTimeout, StopIteration):
                continue
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                seen.append((event, json.loads(line[6:])))


def test_restart_reset_and_logs_through_the_backend(fleet: Fleet) -> None:
    """The backend's own actions with its ServiceAccount: a restart deletes the pod (the
    StatefulSet recreates it, the event stream shows it go and come back), a soft reset
    reaches QEMU in the pod, and a pod's log comes through the API."""
    url = fleet.backend_url()
    auth = {"Authorization": f"Bearer {fleet.control_token()}"}
    victim = f"{STATEFULSET}-0"
    old_uid = _by_name(fleet, url)[victim]["pod"]["uid"]
    seen: list[tuple[str, dict[str, Any]]] = []
    stop = threading.Event()
    reader = threading.Thread(target=_sse_events, args=(url, seen, stop), daemon=True)
    reader.start()
    try:
        poll_until(lambda: any(e == "snapshot" for e, _ in seen), 30, "the event stream")
        resp = httpx.post(f"{url}/api/instances/{victim}/restart", headers=auth, timeout=30)
        assert resp.status_code == 200 and "deleted" in resp.json()["message"], resp.text

        def replaced() -> dict[str, Any] | None:
            inst = _by_name(fleet, url).get(victim)
            if inst and inst["pod"]["uid"] != old_uid and inst["status"] == "healthy":
                return inst
            return None

        poll_until(replaced, 120, f"{victim} replaced and healthy")
    finally:
        stop.set()
        reader.join(10)
    # On the way: the old pod terminating (unhealthy), removed, then the new one.
    mine = [
        (e, d) for e, d in seen if (d.get("instance") or {}).get("name", d.get("name")) == victim
    ]
    kinds = [e for e, _ in mine]
    assert "removed" in kinds, kinds
    terminating = [
        d["instance"] for e, d in mine if e != "removed" and d["instance"]["pod"]["deleting"]
    ]
    assert terminating and all(i["status"] == "unhealthy" for i in terminating)
    after = kinds.index("removed")
    assert any(
        d["instance"]["pod"]["uid"] not in (None, old_uid)
        for e, d in mine[after:]
        if e != "removed"
    ), "the new pod after the removal"

    # A soft reset goes to the supervisor in the pod, and QMP answers.
    resp = httpx.post(f"{url}/api/instances/{STATEFULSET}-1/reset", headers=auth, timeout=30)
    assert resp.status_code == 200 and resp.json()["message"] == "system_reset sent", resp.text
    # Logs through the Kubernetes API, with the backend's ServiceAccount.
    # The reset's audit line is among the last few (the guest's reboot logs after it).
    resp = httpx.get(f"{url}/api/instances/{STATEFULSET}-1/logs", params={"tail": 5}, timeout=30)
    assert resp.status_code == 200, resp.text
    lines = resp.text.strip().splitlines()
    assert len(lines) == 5 and "reset" in [json.loads(line)["message"] for line in lines], lines
    resp = httpx.get(f"{url}/api/instances/{STATEFULSET}-1/logs", params={"follow": "true"})
    assert resp.status_code == 400 and resp.json()["error"] == "unsupported"


async def test_namespace_from_the_kubeconfig_context_outside_the_cluster(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Run outside the cluster with a kubeconfig whose context names the namespace."""
    role = fleet.get("role", "loco-backend")
    kubeconfig = access.service_account_kubeconfig(
        fleet.cluster, fleet.namespace, "discovery-outside", role["rules"]
    )
    try:
        chosen = settings(
            discovery=InstanceSource.KUBERNETES,
            kubeconfig=kubeconfig,
            namespace=None,
            service_account_namespace_file=tmp_path / "no-such-file",
            probing=False,
        )
        kube = await connect(chosen.kubeconfig, chosen.context, env={})
        runtime = build_runtime(chosen, env={}, kube=kube)
        assert runtime.fleet.discovery.namespace == fleet.namespace
        assert runtime.fleet.discovery.namespace_source is NamespaceSource.KUBECONFIG
        await runtime.start()
        try:
            await eventually(lambda: len(runtime.fleet) == 3, 60, what="3 pods discovered")
            assert sorted(runtime.fleet.names()) == _names(3)
        finally:
            await runtime.stop()
    finally:
        for kind in ("rolebinding", "role", "serviceaccount"):
            fleet.kubectl("delete", kind, "discovery-outside", "--ignore-not-found")


def test_the_backend_survives_the_api_server_stopping_and_starting(fleet: Fleet) -> None:
    url = fleet.backend_url()
    poll_until(lambda: _healthy(fleet, _names(3), url), 60, "a settled fleet")
    with api_server_down(fleet):
        body = poll_until(
            lambda: _discovery(fleet, url, ok=False),
            60,
            "the backend noticing the API server is gone",
        )
        assert body["discovery"]["error"]
        # Last known fleet, marked stale, nothing lost; the emulators still answer probes.
        assert sorted(i["name"] for i in body["items"]) == _names(3)
        for inst in body["items"]:
            assert inst["stale"] and "discovery" in (inst["stale_reason"] or ""), inst
            assert inst["pod"]["phase"] == "Running"
        # The circuit breaker in front of the API opens while the outage lasts.
        poll_until(lambda: _api_breaker(fleet, url, "open") == 1.0, 60, "the API breaker open")
    body = poll_until(
        lambda: _discovery(fleet, url, ok=True),
        90,
        "discovery back after the API server returned",
    )
    poll_until(lambda: _healthy(fleet, _names(3), url), 60, "fresh and healthy again")
    assert fleet.metric("loco_backend_discovery_errors_total", url, kind="api") >= 1
    poll_until(lambda: _api_breaker(fleet, url, "closed") == 1.0, 60, "the API breaker closed")
    # And it follows changes again.
    try:
        fleet.scale(4)
        poll_until(lambda: _healthy(fleet, _names(4), url), 120, "a change seen after the outage")
    finally:
        fleet.scale(3)
    poll_until(lambda: _healthy(fleet, _names(3), url), 120, "3 emulators again")


def _etcd(fleet: Fleet, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """etcd's JSON gateway, with the etcd client certificate (etcd's own CA)."""
    pki = fleet.cluster.layout.pki
    ctx = ssl.create_default_context(cafile=str(pki / "etcd-ca.crt"))
    ctx.load_cert_chain(str(pki / "etcd-client.crt"), str(pki / "etcd-client.key"))
    port = topology.Ports().etcd_client
    resp = httpx.post(f"https://127.0.0.1:{port}/v3/{path}", json=body, verify=ctx, timeout=10)
    resp.raise_for_status()
    return dict(resp.json())


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_real_410_gone_after_etcd_compaction_makes_the_backend_relist(fleet: Fleet) -> None:
    """The backend watches from the last version it saw; once etcd has compacted that
    version away, the API server answers the next watch with 410 Gone and the backend must
    list again. To make that next watch happen on demand: the API server is restarted with
    the watch cache off for pods (the cache would serve the version from memory), etcd is
    compacted past the backend's version, and the backend's watch connection is reset from
    the host (ss -K), so it resumes from that version at once."""
    url = fleet.backend_url()
    backend_ip = url.split("//")[1].split(":")[0]
    apiserver_port = topology.Ports().apiserver
    with api_server_down(fleet, ("--watch-cache-sizes=pods#0",)):
        pass
    try:
        poll_until(lambda: _discovery(fleet, url, ok=True), 90, "the backend watching again")
        poll_until(lambda: _healthy(fleet, _names(3), url), 60, "a settled fleet")
        gone = fleet.metric(
            "loco_backend_discovery_relists_total", url, source="kubernetes", reason="gone"
        )
        # A write newer than anything the backend has seen, then compaction up to it.
        _etcd(fleet, "kv/put", {"key": _b64("/lego-loco-test/bump"), "value": _b64("1")})
        revision = int(
            _etcd(fleet, "kv/deleterange", {"key": _b64("/lego-loco-test/bump")})["header"][
                "revision"
            ]
        )
        _etcd(fleet, "kv/compaction", {"revision": str(revision), "physical": True})

        def relisted() -> bool:
            # Reset the backend's connection to the API server (the server's side of it).
            subprocess.run(
                ["ss", "-K", "-t", "dst", backend_ip, "sport", "=", f":{apiserver_port}"],
                capture_output=True,
                check=False,
            )
            now = fleet.metric(
                "loco_backend_discovery_relists_total", url, source="kubernetes", reason="gone"
            )
            return now > gone

        poll_until(relisted, 60, "a relist after 410 Gone", interval=1.0)
        items = poll_until(
            lambda: _healthy(fleet, _names(3), url), 60, "the fleet after the relist"
        )
        assert sorted(items) == _names(3), "a relist loses and duplicates nothing"
    finally:
        # Back to the API server as the cluster normally runs it.
        with api_server_down(fleet):
            pass
    poll_until(lambda: fleet.instances(url)["discovery"]["ok"], 90, "discovery back")

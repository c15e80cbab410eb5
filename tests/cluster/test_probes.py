"""The kubelet runs the chart's probes against the real supervisors in their pods.

Emulator pods become Ready through /startup and /ready; a supervisor that hangs (SIGSTOP,
sent from the host: inside its PID namespace it is init and ignores the signal) stops
answering /health, the kubelet's liveness probe fails and the container is restarted; the
restart count and the way the container ended reach the backend and the pod's events.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

from tests.cluster.fleet import CLUSTER, STATEFULSET, Fleet, samples
from tests.support.waiting import poll_until

pytestmark = CLUSTER


def _probe_results(fleet: Fleet, pod: str) -> dict[str, float]:
    """The kubelet's own probe counters for a pod: {"Startup/successful": n, ...}."""
    node = fleet.cluster.info().node_name  # type: ignore[union-attr]
    text = fleet.cluster.kubectl(
        "get", "--raw", f"/api/v1/nodes/{node}/proxy/metrics/probes"
    ).stdout
    found: dict[str, float] = {}
    for labels, value in samples(text, "prober_probe_total", pod=pod):
        key = f"{labels['probe_type']}/{labels['result']}"
        found[key] = found.get(key, 0) + value
    return found


def test_emulators_become_ready_through_the_kubelets_probes(fleet: Fleet) -> None:
    pods = fleet.wait_ready()
    for pod in pods:
        name = pod["metadata"]["name"]
        container = next(c for c in pod["spec"]["containers"] if c["name"] == "emulator")
        paths = {
            kind: container[f"{kind}Probe"]["httpGet"]["path"]
            for kind in ("startup", "liveness", "readiness")
        }
        assert paths == {"startup": "/startup", "liveness": "/health", "readiness": "/ready"}
        status = next(s for s in pod["status"]["containerStatuses"] if s["name"] == "emulator")
        assert status["ready"] and status["started"]
        # The kubelet's counters prove each probe really ran and passed against the pod.
        results = poll_until(
            lambda n=name: (
                r
                if (r := _probe_results(fleet, n)).get("Startup/successful", 0) >= 1
                and r.get("Readiness/successful", 0) >= 1
                and r.get("Liveness/successful", 0) >= 1
                else None
            ),
            60,
            f"successful startup, readiness and liveness probes of {name}",
        )
        assert results.get("Liveness/failed", 0) == 0


def test_a_hung_supervisor_is_restarted_by_the_liveness_probe(fleet: Fleet) -> None:
    victim = f"{STATEFULSET}-1"
    before = fleet.pod(victim)
    assert before is not None
    restarts = before["status"]["containerStatuses"][0]["restartCount"]
    container = fleet.container(victim)
    pid = fleet.host_pid(victim)

    os.kill(pid, signal.SIGSTOP)
    try:

        def restarted() -> dict[str, Any] | None:
            pod = fleet.pod(victim)
            status = (pod or {}).get("status", {}).get("containerStatuses") or [{}]
            return pod if status[0].get("restartCount", 0) > restarts else None

        pod = poll_until(restarted, 120, f"{victim} restarted by the kubelet", interval=0.5)
    finally:
        # Harmless if the container is gone; needed if the test failed before the kill.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137, last  # killed: a stopped process cannot exit by itself
    assert fleet.container(victim)["id"] != container["id"], "a new container"

    events = fleet.get("events", "--field-selector", f"involvedObject.name={victim}")["items"]
    messages = " | ".join(e.get("message", "") for e in events)
    assert "Liveness probe failed" in messages, messages
    assert "failed liveness probe, will be restarted" in messages, messages

    # The backend (in the cluster, through its watch) reports the restart and its reason.
    def reported() -> dict[str, Any] | None:
        items = {i["name"]: i for i in fleet.instances()["items"]}
        pod_facts = items.get(victim, {}).get("pod") or {}
        if pod_facts.get("restarts", 0) > restarts and pod_facts.get("last_restart_reason"):
            return items[victim]
        return None

    inst = poll_until(reported, 60, "the restart in the backend's view")
    assert inst["pod"]["last_restart_reason"] == "Error (exit 137)"
    fleet.wait_ready()
    poll_until(
        lambda: (
            next(i for i in fleet.instances()["items"] if i["name"] == victim)["status"]
            == "healthy"
        ),
        60,
        f"{victim} healthy again",
    )

"""The chart's life on a real cluster with the real Helm: install, upgrade, rollback; the
PodDisruptionBudget holding during a drain of the node; the NetworkPolicy accepted."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from localcluster import helm
from localcluster.cluster import Cluster
from tests.cluster.fleet import CLUSTER, RELEASE, SELECTOR, STATEFULSET, Fleet
from tests.support.waiting import poll_until

pytestmark = CLUSTER

NAMESPACE = "loco-lifecycle"


def _helm(cluster: Cluster, *args: str) -> str:
    result = subprocess.run(
        helm.helm(cluster, *args, "--namespace", NAMESPACE),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"helm {' '.join(args)}: {result.stderr}"
    return result.stdout


@pytest.fixture
def lifecycle(cluster: Cluster) -> Iterator[Fleet]:
    fleet = Fleet(cluster, NAMESPACE, replicas=1)
    try:
        yield fleet
    finally:
        subprocess.run(
            helm.helm(cluster, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"),
            capture_output=True,
            timeout=300,
            check=False,
        )
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", timeout=300)


def _emulator_env(fleet: Fleet) -> dict[str, str]:
    sts = fleet.get("statefulset", STATEFULSET)
    [container] = [
        c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "emulator"
    ]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def _rolled_out(fleet: Fleet) -> bool:
    sts = fleet.get("statefulset", STATEFULSET)
    status = sts["status"]
    return (
        status.get("observedGeneration") == sts["metadata"]["generation"]
        and status.get("updateRevision") == status.get("currentRevision")
        and status.get("readyReplicas") == sts["spec"]["replicas"]
    )


def test_install_upgrade_and_rollback_with_helm(lifecycle: Fleet) -> None:
    cluster = lifecycle.cluster
    helm.install(cluster, namespace=NAMESPACE, release=RELEASE, replicas=1)
    lifecycle.wait_ready(1)
    token = lifecycle.control_token()
    assert _emulator_env(lifecycle)["LOG_LEVEL"] == "info"

    # An upgrade changes the pods (one at a time) and keeps the control token.
    helm.install(cluster, namespace=NAMESPACE, release=RELEASE, replicas=1, sets=["logLevel=debug"])
    assert _emulator_env(lifecycle)["LOG_LEVEL"] == "debug"
    poll_until(lambda: _rolled_out(lifecycle), 180, "the upgrade rolled out")
    pod = lifecycle.pod(f"{STATEFULSET}-0")
    assert pod is not None
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["LOG_LEVEL"] == "debug", "the pod runs the upgraded spec"
    assert lifecycle.control_token() == token, "the upgrade kept the token (lookup)"

    # Rolling back to revision 1 brings the old spec back, still with the same token.
    _helm(cluster, "rollback", RELEASE, "1", "--wait", "--timeout", "5m")
    assert _emulator_env(lifecycle)["LOG_LEVEL"] == "info"
    poll_until(lambda: _rolled_out(lifecycle), 180, "the rollback rolled out")
    lifecycle.wait_ready(1)
    assert lifecycle.control_token() == token
    history = json.loads(_helm(cluster, "history", RELEASE, "-o", "json"))
    assert [h["revision"] for h in history] == [1, 2, 3]
    assert history[-1]["status"] == "deployed" and "Rollback to 1" in history[-1]["description"]


def test_budget_and_policy_are_accepted_and_in_force(fleet: Fleet) -> None:
    budget = fleet.get("poddisruptionbudget", STATEFULSET)
    assert budget["spec"]["maxUnavailable"] == 1
    status = poll_until(
        lambda: (
            (s := fleet.get("poddisruptionbudget", STATEFULSET)["status"]).get("expectedPods") == 3
            and s
        ),
        60,
        "the budget's status",
    )
    assert status["currentHealthy"] == 3 and status["disruptionsAllowed"] == 1
    # Accepted as written (this node's CNI bridge does not enforce it; see docs/deploy.md).
    policy = fleet.get("networkpolicy", STATEFULSET)["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["ingress"][0]["ports"] == [{"port": "health", "protocol": "TCP"}]
    peers = policy["ingress"][0]["from"]
    assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "backend"


def _emulators(fleet: Fleet) -> list[dict[str, Any]]:
    return list(fleet.get("pods", "-l", SELECTOR)["items"])


def test_a_drain_of_the_node_never_takes_more_than_one_emulator(fleet: Fleet) -> None:
    node = fleet.cluster.info().node_name  # type: ignore[union-attr]
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in _emulators(fleet)}
    try:
        # The real eviction API, as an administrator draining the node for maintenance.
        # On one node nothing evicted can come back, so the drain must stop at the budget.
        result = fleet.cluster.kubectl(
            "drain", node, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=45s",
            timeout=180,
        )  # fmt: skip
        assert result.returncode != 0, "the drain cannot complete on a single node"
        output = result.stdout + result.stderr
        assert "violate the pod's disruption budget" in output, output

        def settled() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
            pods = _emulators(fleet)
            new = [p for p in pods if p["metadata"]["uid"] != uids.get(p["metadata"]["name"])]
            old = [p for p in pods if p["metadata"]["uid"] == uids.get(p["metadata"]["name"])]
            return (new, old) if len(pods) == 3 and len(new) == 1 else None

        replaced, kept = poll_until(settled, 60, "one emulator evicted and recreated")
        assert all(Fleet.ready(p) for p in kept), "the budget kept the other two running"
        assert replaced[0]["status"]["phase"] == "Pending", "its replacement waits: cordoned"
    finally:
        fleet.cluster.kubectl("uncordon", node)
    fleet.wait_ready()

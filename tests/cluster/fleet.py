"""The chart installed on the local cluster for the tests, and ways to look at it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from localcluster import access, helm, pods, processes
from localcluster.cluster import Cluster
from tests.support.waiting import poll_until

# Every cluster test: heavy, run one at a time (they stop the API server, drain the node,
# scale the fleet), with time for a first start that builds and boots the cluster. make
# test runs them after the rest of the suite (-m cluster), not beside QEMU-bound tests.
CLUSTER = [
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.xdist_group("cluster"),
    pytest.mark.timeout(1800),
]

NAMESPACE = "loco-test"
RELEASE = "loco"
STATEFULSET = "loco-emulator"
SELECTOR = "app.kubernetes.io/component=emulator,app.kubernetes.io/part-of=lego-loco-cluster"
OPERATOR = "loco-test-operator"
VIEWER = "loco-test-viewer"
BACKEND_SA = f"system:serviceaccount:{NAMESPACE}:loco-backend"

# Probes tightened so that a hung supervisor is restarted in seconds, not minutes, and a
# short termination grace (the test guest powers off in half a second).
TEST_VALUES: dict[str, Any] = {
    "emulator": {
        "shutdownMarginSeconds": 3,
        "probes": {
            "startup": {
                "initialDelaySeconds": 1,
                "periodSeconds": 2,
                "timeoutSeconds": 2,
                "failureThreshold": 60,
                "successThreshold": 1,
            },
            "liveness": {
                "initialDelaySeconds": 0,
                "periodSeconds": 3,
                "timeoutSeconds": 2,
                "failureThreshold": 2,
                "successThreshold": 1,
            },
            "readiness": {
                "initialDelaySeconds": 0,
                "periodSeconds": 2,
                "timeoutSeconds": 2,
                "failureThreshold": 2,
                "successThreshold": 1,
            },
        },
    },
    "rbac": {
        "operatorRole": {"create": True, "subjects": [{"kind": "User", "name": OPERATOR}]},
        "readOnlyRole": {"create": True, "subjects": [{"kind": "User", "name": VIEWER}]},
    },
}


@dataclass
class Fleet:
    cluster: Cluster
    namespace: str = NAMESPACE
    replicas: int = 3

    # --- kubectl ------------------------------------------------------------------------------
    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(
            "-n", self.namespace, *args, kubeconfig=kubeconfig, timeout=timeout
        )

    def ok(self, *args: str, kubeconfig: Path | None = None, timeout: float = 120.0) -> str:
        result = self.kubectl(*args, kubeconfig=kubeconfig, timeout=timeout)
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr or result.stdout}"
        return result.stdout

    def get(self, *args: str) -> Any:
        return json.loads(self.ok("get", *args, "-o", "json"))

    # --- pods -------------------------------------------------------------------------------------
    def pods(self) -> list[dict[str, Any]]:
        return list(self.get("pods", "-l", SELECTOR)["items"])

    def pod(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.pods() if p["metadata"]["name"] == name), None)

    @staticmethod
    def ready(pod: dict[str, Any]) -> bool:
        conditions = pod.get("status", {}).get("conditions") or []
        return not pod["metadata"].get("deletionTimestamp") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in conditions
        )

    def names(self) -> list[str]:
        return sorted(p["metadata"]["name"] for p in self.pods())

    def wait_ready(
        self, replicas: int | None = None, timeout: float = 180.0
    ) -> list[dict[str, Any]]:
        """Waits until exactly the StatefulSet's pods exist, all Ready, and the backend too."""
        n = self.replicas if replicas is None else replicas
        want = [f"{STATEFULSET}-{i}" for i in range(n)]

        def settled() -> list[dict[str, Any]] | None:
            pods = self.pods()
            names = sorted(p["metadata"]["name"] for p in pods)
            if names == sorted(want) and all(self.ready(p) for p in pods):
                return pods
            return None

        pods = poll_until(
            settled, timeout, f"{n} emulator pods Ready", interval=0.5, describe=self.describe
        )
        poll_until(
            self.backend_ready, timeout, "the backend Ready", interval=0.5, describe=self.describe
        )
        return pods

    def describe(self) -> str:
        return self.kubectl("get", "pods", "-o", "wide").stdout

    def scale(self, replicas: int) -> None:
        self.ok("scale", f"statefulset/{STATEFULSET}", f"--replicas={replicas}")

    # --- the runtime underneath -----------------------------------------------------------
    def container(self, pod: str, name: str = "emulator") -> dict[str, Any]:
        """The pod's running container as the container runtime knows it."""
        found = pods.container(self.cluster, self.namespace, pod, name)
        assert found is not None, f"no running {name} container in {pod}"
        return found

    def host_pid(self, pod: str) -> int:
        """The host's pid of the container's first process (the supervisor); checked, so a
        signal meant for it never reaches anything else."""
        pid = pods.container_pid(self.cluster, self.container(pod)["id"])
        cmdline = " ".join(processes.cmdline(pid or 0))
        assert pid and "loco-emulator" in cmdline, f"pid {pid} is not the supervisor: {cmdline}"
        return pid

    def crash(self, pod: str) -> int:
        """Kills the supervisor (from the host): the kubelet restarts the container in place.
        Returns the pod's restart count to wait beyond."""
        current = self.pod(pod)
        assert current is not None
        restarts = int(current["status"]["containerStatuses"][0]["restartCount"])
        os.kill(self.host_pid(pod), signal.SIGKILL)
        poll_until(
            lambda: (
                (p := self.pod(pod)) is not None
                and p["status"]["containerStatuses"][0]["restartCount"] > restarts
                and self.ready(p)
            ),
            120,
            f"{pod} restarted in place",
            interval=0.5,
        )
        return restarts + 1

    # --- the backend, in the cluster ------------------------------------------------------------
    def backend_pod(self) -> dict[str, Any] | None:
        items = self.get("pods", "-l", "app.kubernetes.io/component=backend")["items"]
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return live[0] if live else None

    def backend_ready(self) -> bool:
        pod = self.backend_pod()
        return pod is not None and self.ready(pod)

    def backend_url(self) -> str:
        """The backend pod's own address: the host routes to the pod network directly, so
        the backend stays reachable while the API server (and port-forward) is down."""
        pod = self.backend_pod()
        assert pod is not None and pod["status"].get("podIP"), "no backend pod"
        return f"http://{pod['status']['podIP']}:8081"

    def service_url(self) -> str:
        """The backend's Service (ClusterIP), which kube-proxy makes reachable from the host."""
        return helm.backend_url(self.cluster, self.namespace)

    def instances(self, url: str | None = None) -> dict[str, Any]:
        return httpx.get(f"{url or self.backend_url()}/api/instances", timeout=5).json()

    def metric(self, name: str, url: str | None = None, **labels: str) -> float:
        """The sum of the backend's samples of ``name`` that carry ``labels``."""
        text = httpx.get(f"{url or self.backend_url()}/metrics", timeout=5).text
        return sum(value for _, value in samples(text, name, **labels))

    def control_token(self) -> str:
        return helm.control_token(self.cluster, self.namespace)

    # --- people ------------------------------------------------------------------------
    def kubeconfig_for(self, user: str) -> Path:
        return access.user_kubeconfig(self.cluster, user, namespace=self.namespace)


def samples(text: str, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called ``name`` with ``labels`` in Prometheus text."""
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                found.append((dict(sample.labels), float(sample.value)))
    return found


def install(cluster: Cluster, namespace: str = NAMESPACE) -> Fleet:
    helm.install(cluster, namespace=namespace, release=RELEASE, replicas=3, values=TEST_VALUES)
    fleet = Fleet(cluster, namespace)
    fleet.wait_ready()
    return fleet


def uninstall(cluster: Cluster, namespace: str = NAMESPACE) -> None:
    helm.uninstall(cluster, namespace, RELEASE)


@contextlib.contextmanager
def api_server_down(fleet: Fleet, restart_args: tuple[str, ...] = ()) -> Iterator[None]:
    """Stops the API server for the block; it runs again afterwards, whatever happens."""
    fleet.cluster.stop_daemon("kube-apiserver")
    try:
        yield
    finally:
        fleet.cluster.restart_daemon("kube-apiserver", restart_args)

"""Scale on the real control plane: N emulator pods on kwok-simulated nodes, discovered by
the backend through the real list and watch.

    .venv/bin/python -m bench.bench_cluster_scale [--pods 1000] [--hold 30]

Needs root: it uses the local cluster (deploy/localcluster), shared with test runs and
the soak (:func:`shared_cluster`): started when it is not running, stopped afterwards by
its last user when one of them started it. Real: the API server, etcd, the scheduler, the
StatefulSet controller, the watch, the backend with the chart's Role. Simulated: kwok
(sigs.k8s.io/kwok, built by localcluster) plays the nodes beside the real one and runs the
pods' lifecycle (a thousand QEMUs do not fit on one machine), and every pod carries the
stand-in annotation ``lego-loco.io/health-url`` pointing at one process of fake
supervisors (tests/support/fake_emulator.py), which the backend probes as it would probe
real ones.

Measures the time from ``kubectl scale`` to every instance listed by the backend (and to
every one healthy), the backend's resident memory and CPU while it holds them, and the
time from scaling to zero to an empty list. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.bench_backend import backend, fake_supervisors, rss_kib
from emulator.childproc import die_with_parent
from localcluster import access, build, helm, versions
from localcluster.cluster import Cluster
from localcluster.errors import ClusterError
from localcluster.shared import SharedCluster

NAMESPACE = "loco-scale"
STATEFULSET = "loco-emulator"
KWOK_LABEL = "lego-loco.io/kwok"
PODS_PER_NODE = 110
CONTRACT = {
    "app.kubernetes.io/component": "emulator",
    "app.kubernetes.io/part-of": "lego-loco-cluster",
    "app.kubernetes.io/name": "lego-loco-emulator",
    "app.kubernetes.io/instance": "scale",
}


@dataclass
class Result:
    pods: int
    nodes: int
    listed_s: float
    healthy_s: float
    empty_s: float
    rss_mib: float
    cpu_percent: float
    list_ms: float


def _apply(cluster: Cluster, docs: list[dict[str, Any]], work: Path) -> None:
    path = work / f"objects-{time.monotonic_ns()}.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    result = cluster.kubectl("apply", "--server-side", "-f", str(path))
    if result.returncode != 0:
        raise RuntimeError(f"kubectl apply: {result.stderr}")


def fake_nodes(count: int, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Nodes labelled with ``namespace``: a second benchmark or test on the same cluster
    has its own nodes (and its own kwok), and removes only those."""
    capacity = {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)}
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-{namespace}-{i}",
                "labels": {KWOK_LABEL: namespace, "type": "kwok"},
                "annotations": {"kwok.x-k8s.io/node": "fake"},
            },
            # Only pods that tolerate this land here: never the real workloads.
            "spec": {"taints": [{"key": KWOK_LABEL, "value": "true", "effect": "NoSchedule"}]},
            "status": {"allocatable": capacity, "capacity": capacity},
        }
        for i in range(count)
    ]


def stand_in_statefulset(health_url: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": STATEFULSET, "namespace": namespace, "labels": CONTRACT},
        "spec": {
            "replicas": 0,
            "serviceName": STATEFULSET,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": CONTRACT},
            "template": {
                "metadata": {
                    "labels": CONTRACT,
                    # The stand-in: the backend probes this instead of the pod's address.
                    "annotations": {"lego-loco.io/health-url": health_url},
                },
                "spec": {
                    "nodeSelector": {KWOK_LABEL: namespace},
                    "tolerations": [{"key": KWOK_LABEL, "operator": "Exists"}],
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "emulator",
                            "image": "lego-loco-emulator:stand-in",
                            "ports": [{"name": "health", "containerPort": 8080}],
                        }
                    ],
                },
            },
        },
    }


@contextlib.contextmanager
def kwok(cluster: Cluster, work: Path, namespace: str = NAMESPACE) -> Iterator[None]:
    binary = build.ensure(cluster.layout, ["kwok"], cluster.progress)["kwok"]
    log = (work / "kwok.log").open("wb")
    proc = subprocess.Popen(
        [
            str(binary),
            f"--kubeconfig={cluster.layout.admin_kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-label-selector={KWOK_LABEL}={namespace}",
            "--cidr=10.200.0.1/16",
            "--node-ip=10.200.0.1",
            # Heartbeats as leases (cheap): without them a busy machine delays kwok's node
            # status updates, the node controller marks the nodes NotReady and their pods
            # not Ready, and kwok never makes them Ready again.
            "--node-lease-duration-seconds=40",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HOME": str(work)},  # kwok looks for ~/.kwok
        preexec_fn=die_with_parent,
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def stand_in_fleet(
    cluster: Cluster, pods: int, work: Path, namespace: str = NAMESPACE
) -> Iterator[int]:
    """``namespace`` with the stand-in StatefulSet (0 replicas), kwok and enough kwok nodes
    for ``pods``, and the fake supervisors their health URLs point at; yields the number of
    nodes. Everything is removed at the end, also on failure."""
    nodes = math.ceil(pods / (PODS_PER_NODE - 10))
    with contextlib.ExitStack() as stack:
        stack.callback(cluster.kubectl, "delete", "nodes", "-l", f"{KWOK_LABEL}={namespace}",
                       timeout=300)  # fmt: skip
        stack.callback(_delete_namespace, cluster, namespace)  # when kwok did not start
        cluster.kubectl("create", "namespace", namespace)
        stack.enter_context(kwok(cluster, work, namespace))
        fake_port = stack.enter_context(fake_supervisors(1, work))
        # Deleted while kwok still runs: kwok is what lets the pods on its nodes go.
        stack.callback(_delete_namespace, cluster, namespace)
        _apply(cluster, fake_nodes(nodes, namespace), work)
        _apply(cluster, [stand_in_statefulset(f"http://127.0.0.1:{fake_port}", namespace)], work)
        yield nodes


def _delete_namespace(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true",
                    timeout=900)  # fmt: skip


def backend_discovery(cluster: Cluster, namespace: str = NAMESPACE) -> list[str]:
    """The backend's discovery flags: the pod watch in ``namespace`` as the chart's
    ServiceAccount, with only the chart's Role."""
    role = helm.chart_role(cluster)
    kubeconfig = access.service_account_kubeconfig(cluster, namespace, "loco-backend",
                                                   role["rules"])  # fmt: skip
    return ["--discovery", "kubernetes", "--kubeconfig", str(kubeconfig),
            "--namespace", namespace]  # fmt: skip


def scale(cluster: Cluster, replicas: int, namespace: str = NAMESPACE) -> None:
    cluster.kubectl("-n", namespace, "scale", f"statefulset/{STATEFULSET}",
                    f"--replicas={replicas}")  # fmt: skip


def count_listed(url: str, healthy: bool = False) -> int:
    """How many instances the backend lists (only the healthy ones, with ``healthy``)."""
    items = httpx.get(f"{url}/api/instances", timeout=30).json()["items"]
    return sum(1 for i in items if not healthy or i["status"] == "healthy")


def until(check: Any, deadline: float, what: str, interval: float = 0.1) -> float:
    """Seconds until ``check()`` holds; raises after ``deadline`` seconds."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > deadline:
            raise RuntimeError(f"{what}: not within {deadline:.0f} s")
        time.sleep(interval)
    return time.monotonic() - start


def measure(
    cluster: Cluster, pods: int, hold: float, probe_interval: float, work: Path, say: Any
) -> Result:
    with stand_in_fleet(cluster, pods, work) as nodes:
        discovery = backend_discovery(cluster)
        with backend(None, True, probe_interval, discovery=discovery) as (url, pid):
            say(f"scaling to {pods} pods on {nodes} kwok nodes")
            start = time.monotonic()
            scale(cluster, pods)
            until(lambda: count_listed(url) >= pods, 900, f"{pods} listed", 0.5)
            listed = time.monotonic() - start
            until(lambda: count_listed(url, healthy=True) >= pods, 900, f"{pods} healthy", 0.5)
            healthy = time.monotonic() - start
            say(f"listed after {listed:.1f} s, all healthy after {healthy:.1f} s")
            cpu0, t0 = _cpu_seconds(pid), time.monotonic()
            rss = []
            lists = []
            while time.monotonic() - t0 < hold:
                rss.append(rss_kib(pid) / 1024)
                began = time.perf_counter()
                httpx.get(f"{url}/api/instances", timeout=30)
                lists.append((time.perf_counter() - began) * 1000)
                time.sleep(1.0)
            cpu = (_cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
            start = time.monotonic()
            scale(cluster, 0)
            empty = until(lambda: count_listed(url) == 0, 900, "an empty list", 0.5)
            lists.sort()
            return Result(
                pods, nodes, listed, healthy, empty, max(rss), cpu, lists[len(lists) // 2]
            )


@contextlib.contextmanager
def shared_cluster() -> Iterator[Cluster]:
    """The local cluster for the block, shared with test runs and the soak: started when it
    is not up, stopped afterwards only by its last user and only when a user started it
    (a benchmark that stopped it would pull it from under a test run)."""
    cluster = Cluster()
    if not cluster.is_up():
        reason = cluster.cannot_run()
        if reason:
            raise ClusterError(f"cannot run the local cluster: {reason}")
    shared = SharedCluster(cluster)
    shared.acquire()
    try:
        yield cluster
    finally:
        for line in shared.release():
            print(f"bench: left behind by stopping the cluster: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds of sampling")
    parser.add_argument("--probe-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        with shared_cluster() as cluster, tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            result = measure(
                cluster, args.pods, args.hold, args.probe_interval, Path(tmp),
                lambda m: print(f"bench: {m}", file=sys.stderr),
            )  # fmt: skip
    except ClusterError as exc:
        print(f"bench: {exc.line()}", file=sys.stderr)
        return 1
    print(f"Kubernetes {versions.KUBERNETES}, kwok {versions.KWOK}: {result.pods} emulator pods")
    print(f"  kubectl scale -> all listed by the backend   {result.listed_s:7.1f} s")
    print(f"  kubectl scale -> all healthy (probed)         {result.healthy_s:7.1f} s")
    print(f"  scale to 0 -> empty list                      {result.empty_s:7.1f} s")
    print(f"  backend RSS holding them (max)                {result.rss_mib:7.1f} MiB")
    print(f"  backend CPU holding them (probe {args.probe_interval:g} s)      "
          f"{result.cpu_percent:7.1f} % of a core")  # fmt: skip
    print(f"  GET /api/instances median                     {result.list_ms:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

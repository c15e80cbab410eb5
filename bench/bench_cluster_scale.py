"""Scale on the real control plane: N emulator pods on kwok-simulated nodes, discovered by
the backend through the real list and watch.

    .venv/bin/python -m bench.bench_cluster_scale [--pods 1000] [--hold 30]

Needs root: it uses the local cluster (deploy/localcluster), starting it when it is not
running and stopping it afterwards. Real: the API server, etcd, the scheduler, the
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


def fake_nodes(count: int) -> list[dict[str, Any]]:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)}
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"kwok-node-{i}",
                "labels": {KWOK_LABEL: "true", "type": "kwok"},
                "annotations": {"kwok.x-k8s.io/node": "fake"},
            },
            # Only pods that tolerate this land here: never the real workloads.
            "spec": {"taints": [{"key": KWOK_LABEL, "value": "true", "effect": "NoSchedule"}]},
            "status": {"allocatable": capacity, "capacity": capacity},
        }
        for i in range(count)
    ]


def stand_in_statefulset(health_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": STATEFULSET, "namespace": NAMESPACE, "labels": CONTRACT},
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
                    "nodeSelector": {KWOK_LABEL: "true"},
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
def kwok(cluster: Cluster, work: Path) -> Iterator[None]:
    binary = build.ensure(cluster.layout, ["kwok"], cluster.progress)["kwok"]
    log = (work / "kwok.log").open("wb")
    proc = subprocess.Popen(
        [
            str(binary),
            f"--kubeconfig={cluster.layout.admin_kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-label-selector={KWOK_LABEL}=true",
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


def _count(url: str, healthy: bool = False) -> int:
    items = httpx.get(f"{url}/api/instances", timeout=30).json()["items"]
    return sum(1 for i in items if not healthy or i["status"] == "healthy")


def _until(check: Any, deadline: float, what: str, interval: float = 0.1) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > deadline:
            raise RuntimeError(f"{what}: not within {deadline:.0f} s")
        time.sleep(interval)
    return time.monotonic() - start


def measure(
    cluster: Cluster, pods: int, hold: float, probe_interval: float, work: Path, say: Any
) -> Result:
    nodes = math.ceil(pods / (PODS_PER_NODE - 10))
    cluster.kubectl("create", "namespace", NAMESPACE)
    try:
        with kwok(cluster, work), fake_supervisors(1, work) as fake_port:
            _apply(cluster, fake_nodes(nodes), work)
            _apply(cluster, [stand_in_statefulset(f"http://127.0.0.1:{fake_port}")], work)
            role = helm.chart_role(cluster)
            kubeconfig = access.service_account_kubeconfig(
                cluster, NAMESPACE, "loco-backend", role["rules"]
            )
            discovery = ["--discovery", "kubernetes", "--kubeconfig", str(kubeconfig),
                         "--namespace", NAMESPACE]  # fmt: skip
            with backend(None, True, probe_interval, discovery=discovery) as (url, pid):
                say(f"scaling to {pods} pods on {nodes} kwok nodes")
                start = time.monotonic()
                cluster.kubectl("-n", NAMESPACE, "scale", f"statefulset/{STATEFULSET}",
                                f"--replicas={pods}")  # fmt: skip
                _until(lambda: _count(url) >= pods, 900, f"{pods} listed", 0.5)
                listed = time.monotonic() - start
                _until(lambda: _count(url, healthy=True) >= pods, 900, f"{pods} healthy", 0.5)
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
                cluster.kubectl("-n", NAMESPACE, "scale", f"statefulset/{STATEFULSET}",
                                "--replicas=0")  # fmt: skip
                empty = _until(lambda: _count(url) == 0, 900, "an empty list", 0.5)
                lists.sort()
                return Result(
                    pods, nodes, listed, healthy, empty, max(rss), cpu, lists[len(lists) // 2]
                )
    finally:
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", timeout=900)
        cluster.kubectl("delete", "nodes", "-l", f"{KWOK_LABEL}=true", timeout=300)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--hold", type=float, default=30.0, help="seconds of sampling")
    parser.add_argument("--probe-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    cluster = Cluster()
    started_here = not cluster.is_up()
    if started_here:
        reason = cluster.cannot_run()
        if reason:
            print(f"bench: cannot run the local cluster: {reason}", file=sys.stderr)
            return 1
        cluster.up()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            result = measure(
                cluster, args.pods, args.hold, args.probe_interval, Path(tmp),
                lambda m: print(f"bench: {m}", file=sys.stderr),
            )  # fmt: skip
    finally:
        if started_here:
            cluster.down()
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

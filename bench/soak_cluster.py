"""``bench/soak.py --cluster``: the soak on the chart in the local Kubernetes (root only).

The local cluster (deploy/localcluster) is started unless it runs already, through the
registry the cluster tests use (:mod:`localcluster.shared`): a cluster that ran before is
left running, and one started here is stopped at the end unless a test run that came
meanwhile still uses it (then the last one out stops it). The chart goes into a namespace
of its own, ``loco-soak``, with the local values (the test guest, small requests:
:func:`localcluster.helm.local_values`) and otherwise the chart's own probes and grace
periods, as an operator would run it. The release and the namespace are removed at the
end, also after a failure, Ctrl-C or SIGTERM; other namespaces are never touched.

The faults are the local soak's, on Kubernetes: reset and restart through the backend's
API with the release's control token (a restart deletes the pod, and its StatefulSet makes
a new one of the same name); QEMU killed, or hung for a few seconds, by signalling its
process on this host (the cluster is this one node, so a container's processes are host
processes: the runtime says which is the emulator container's supervisor, QEMU is its
child); the guest's picture frozen over the test guest's serial socket, which lives in the
pod's state volume and is reached from the host through QEMU's /proc/PID/root (a unix
socket is found by its path, whatever the network namespace).

Sampled once a minute: each emulator pod's supervisor and QEMU, named by pod (a pod
replaced by a restart is a new process and counts as a restart of that role), the
backend, and the cluster's daemons (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, containerd, kubelet, kube-proxy). A container the kubelet restarted (its
restartCount rose) is an unexpected exit: nothing the soak does should cause one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from bench.soak import Soak
from localcluster import helm, pods, processes
from localcluster.cluster import DAEMONS, Cluster
from localcluster.errors import ClusterError
from localcluster.progress import Progress
from localcluster.shared import SharedCluster
from locotui.demo.cluster import MAX_INSTANCES

NAMESPACE = "loco-soak"
QEMU_WAIT = 25.0
"""Seconds a fault waits for an instance's QEMU: a pod just replaced by a restart, or a
QEMU the supervisor is starting again, is not a failed fault (the fault timeout is 30 s)."""
READY_WAIT = 180.0


class _Stop(Exception):
    """SIGTERM or SIGHUP: leave through the cleanups, as Ctrl-C does."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def qemu_child(supervisor: int) -> int | None:
    """The QEMU the supervisor runs (its child), or None while it runs none."""
    for child in processes.children(supervisor):
        argv = processes.cmdline(child)
        if argv and Path(argv[0]).name.startswith("qemu-system"):
            return child
    return None


def restart_note(pod: str, status: dict[str, Any], before: int) -> str:
    """One line for a container the kubelet restarted, with why its last run ended."""
    ended = status.get("lastState", {}).get("terminated") or {}
    why = ", ".join(f"{k} {ended[k]}" for k in ("reason", "exitCode", "finishedAt") if k in ended)
    return (
        f"{pod}: container {status.get('name')} restarted by the kubelet "
        f"({before} -> {status.get('restartCount')} restarts{'; ' + why if why else ''})"
    )


class ClusterSoak(Soak):
    title = "Soak on the local cluster (bench/soak.py --cluster)"
    block = "soak-cluster"

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        backend_url: str,
        token: str,
        every: float,
        minutes: float,
    ) -> None:
        super().__init__(backend_url, token, every, minutes)
        self.cluster = cluster
        self.namespace = namespace
        self.restarts: dict[tuple[str, str], int] = {}
        """restartCount by (pod uid, container) as last seen: a new pod starts at 0."""

    def describe(self) -> str:
        return f"{len(self.names)} emulator pods in namespace {self.namespace} (local cluster)"

    # ------------------------------------------------------------------ the pods
    def _pods(self) -> list[dict[str, Any]]:
        result = self.cluster.kubectl("-n", self.namespace, "get", "pods", "-o", "json", timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"kubectl get pods: {result.stderr.strip()}")
        items = json.loads(result.stdout)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def _processes(self) -> dict[str, int]:
        """Runs in a thread: kubectl and crictl are subprocesses."""
        out = {name: pid for name in DAEMONS if (pid := self.cluster.daemon(name).pid())}
        try:
            listed = self._pods()
        except (RuntimeError, ValueError, OSError) as exc:
            self.notes.append(f"minute {len(self.loads)}: pods not listed: {exc}")
            return out
        for pod in listed:
            name = pod["metadata"]["name"]
            component = pod["metadata"].get("labels", {}).get("app.kubernetes.io/component")
            for status in pod.get("status", {}).get("containerStatuses") or []:
                key = (pod["metadata"]["uid"], status["name"])
                count = int(status.get("restartCount", 0))
                before = self.restarts.get(key, 0)
                if count > before:
                    self.deaths.append(restart_note(name, status, before))
                    print(self.deaths[-1], flush=True)
                self.restarts[key] = count
                container_id = status.get("containerID", "").partition("://")[2]
                if not container_id or "running" not in status.get("state", {}):
                    continue
                pid = pods.container_pid(self.cluster, container_id)
                if pid is None:
                    continue
                if component == "emulator":
                    out[f"supervisor {name}"] = pid
                    if (qemu := qemu_child(pid)) is not None:
                        out[f"qemu {name}"] = qemu
                elif component == "backend":
                    out["backend"] = pid
        return out

    async def pids(self, http: httpx.AsyncClient) -> dict[str, int]:
        return await asyncio.to_thread(self._processes)

    def _find_qemu(self, name: str) -> int:
        deadline = time.monotonic() + QEMU_WAIT
        while True:
            supervisor = pods.host_pid(self.cluster, self.namespace, name, "emulator")
            if supervisor is not None and (qemu := qemu_child(supervisor)) is not None:
                return qemu
            if time.monotonic() > deadline:
                raise RuntimeError(f"no QEMU running in pod {name} within {QEMU_WAIT:g} s")
            time.sleep(1.0)

    async def qemu_pid(self, http: httpx.AsyncClient, name: str) -> int:
        return await asyncio.to_thread(self._find_qemu, name)

    # ------------------------------------------------------------------ run
    async def settle(self, instances: int) -> None:
        """Until the backend lists every emulator pod as healthy: the names the faults go
        to are the backend's own."""
        deadline = time.monotonic() + READY_WAIT
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            while True:
                try:
                    items = (await http.get(f"{self.backend_url}/api/instances")).json()["items"]
                    healthy = sorted(i["name"] for i in items if i.get("status") == "healthy")
                    if len(healthy) == len(items) == instances:
                        self.names = healthy
                        return
                except (httpx.HTTPError, ValueError, KeyError, TypeError):
                    pass
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"the backend did not list {instances} healthy instances within "
                        f"{READY_WAIT:.0f} s",
                        hint=f"kubectl -n {self.namespace} get pods; the backend's log",
                    )
                await asyncio.sleep(2.0)

    def final_state(self) -> None:
        """How the fleet stands at the end, for the report."""
        try:
            listed = self._pods()
        except (RuntimeError, ValueError, OSError) as exc:
            self.notes.append(f"at the end: pods not listed: {exc}")
            return
        ready = [
            p["metadata"]["name"]
            for p in listed
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions") or []
            )
        ]
        self.notes.append(
            f"at the end: {len(ready)}/{len(listed)} pods Ready (the emulators, the backend)"
        )


def cannot(cluster: Cluster) -> str | None:
    """Why the cluster soak cannot run here, or None."""
    if os.geteuid() != 0:
        return "it needs root (it signals and samples the cluster's processes on this host)"
    return None if cluster.is_up() else cluster.cannot_run()


async def _soak(soak: ClusterSoak, instances: int) -> None:
    await soak.settle(instances)
    await soak.run()
    await asyncio.to_thread(soak.final_state)


def run(args: argparse.Namespace) -> ClusterSoak | None:
    """The soak on the local cluster; None (with the reason printed) when it could not run."""

    def say(line: str) -> None:
        print(f"soak: {line}", file=sys.stderr, flush=True)

    if not 1 <= args.instances <= MAX_INSTANCES:
        say(f"--instances {args.instances}: choose between 1 and {MAX_INSTANCES} on one node")
        return None
    cluster = Cluster(progress=Progress(prefix="soak"))
    reason = cannot(cluster)
    if reason:
        say(f"cannot run on the local cluster: {reason}")
        return None
    shared = SharedCluster(cluster)
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    joined = False
    try:
        shared.acquire()  # starts the cluster when it is not up
        joined = True
        try:
            helm.install(cluster, NAMESPACE, helm.RELEASE, args.instances)
            soak = ClusterSoak(
                cluster,
                NAMESPACE,
                helm.backend_url(cluster, NAMESPACE),
                helm.control_token(cluster, NAMESPACE),
                args.every,
                args.minutes,
            )
            asyncio.run(_soak(soak, args.instances))
            return soak
        finally:
            # A second SIGTERM must not cut the cleanup short and leave the namespace behind.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            say(f"removing the release and namespace {NAMESPACE}")
            helm.uninstall(cluster, NAMESPACE)
    except ClusterError as exc:
        say(exc.line())
        return None
    except (KeyboardInterrupt, _Stop):
        say("interrupted")
        return None
    finally:
        if joined:
            try:
                left = shared.release()
            except ClusterError as exc:
                left = [exc.line()]
            for line in left:
                say(f"left behind by stopping the cluster: {line}")
        for sig, handler in previous.items():
            signal.signal(sig, handler)

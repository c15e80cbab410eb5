"""Pods' containers as processes of this host.

The local cluster is one node whose containers run under its own containerd, so every
container's processes are processes of this host: the runtime (crictl) says which one is a
container's first process, and /proc has the rest of its tree. The tests use this to
crash a supervisor from outside, the soak to signal QEMU and to sample the processes.
"""

from __future__ import annotations

import json
from typing import Any

from localcluster.cluster import Cluster


def container(cluster: Cluster, namespace: str, pod: str, name: str) -> dict[str, Any] | None:
    """The pod's running container ``name`` as the runtime lists it; None while there is
    none (the pod is being created or replaced) or the runtime does not answer."""
    result = cluster.crictl(
        "ps", "--name", f"^{name}$", "--label", f"io.kubernetes.pod.name={pod}",
        "--label", f"io.kubernetes.pod.namespace={namespace}", "-o", "json",
        timeout=60,
    )  # fmt: skip
    try:
        found = json.loads(result.stdout)["containers"]
    except (ValueError, KeyError, TypeError):
        return None
    return dict(found[0]) if len(found) == 1 else None


def container_pid(cluster: Cluster, container_id: str) -> int | None:
    """The host's pid of the container's first process, or None when it is gone."""
    result = cluster.crictl("inspect", "-o", "json", container_id, timeout=60)
    try:
        pid = int(json.loads(result.stdout)["info"]["pid"])
    except (ValueError, KeyError, TypeError):
        return None
    return pid if pid > 1 else None


def host_pid(cluster: Cluster, namespace: str, pod: str, name: str) -> int | None:
    """The host's pid of the first process of the pod's running container ``name``."""
    found = container(cluster, namespace, pod, name)
    return None if found is None else container_pid(cluster, found["id"])

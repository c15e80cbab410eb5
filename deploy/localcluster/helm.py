"""The project's chart on the local cluster, installed with the real Helm built here.

Values for one small node: the locally made images (never pulled), the built-in test guest
instead of Windows 98, no persistent volumes (the cluster has no storage provisioner), and
small requests so a handful of emulators fit.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localcluster import config, pki
from localcluster.cluster import Cluster, Info
from localcluster.errors import ClusterError
from localcluster.images import CHART
from localcluster.steps import run_logged

NAMESPACE = "loco"
RELEASE = "loco"
_USER_RE = re.compile(r"[A-Za-z0-9][-A-Za-z0-9:._@]{0,62}")


def _image(ref: str) -> dict[str, str]:
    repository, tag = ref.rsplit(":", 1)
    return {"repository": repository, "tag": tag, "pullPolicy": "Never"}


def local_values(info: Info, replicas: int = 3) -> dict[str, Any]:
    return {
        "emulator": {
            "replicas": replicas,
            "image": _image(info.images["emulator"]),
            "profile": "testimage",
            "accel": "tcg",
            "diskImage": {"source": "testimage"},
            "state": {"persistence": {"enabled": False}},
            # The test guest needs about 100 MiB and a few percent of a core.
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "1", "memory": "512Mi"},
            },
        },
        "backend": {"image": _image(info.images["backend"])},
    }


def _running_info(cluster: Cluster) -> Info:
    info = cluster.info()
    if info is None or not cluster.is_up():
        raise ClusterError("the local cluster is not running", hint="start it with `make cluster`")
    return info


def helm(cluster: Cluster, *args: str) -> list[str]:
    return [
        str(cluster.binary("helm")),
        "--kubeconfig",
        str(cluster.layout.admin_kubeconfig),
        *args,
    ]


def install(
    cluster: Cluster,
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    replicas: int = 3,
    sets: Sequence[str] = (),
    values: dict[str, Any] | None = None,
    timeout: str = "5m",
) -> None:
    """``helm upgrade --install`` with the local values (plus ``values`` and ``sets``)."""
    info = _running_info(cluster)
    files = [
        config.write_yaml(
            cluster.layout.config / f"values-{release}.yaml", local_values(info, replicas)
        )
    ]
    if values:
        files.append(
            config.write_yaml(cluster.layout.config / f"values-{release}-extra.yaml", values)
        )
    argv = helm(
        cluster,
        "upgrade",
        "--install",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--create-namespace",
        "--wait",
        "--timeout",
        timeout,
    )
    for f in files:
        argv += ["--values", str(f)]
    for s in sets:
        argv += ["--set", s]
    with cluster.progress.step(f"helm upgrade --install {release} into namespace {namespace}"):
        run_logged(
            argv,
            cluster.layout.logs / "helm.log",
            f"installing the chart as {release}",
            "`kubectl get pods -A` and `kubectl describe` the pods that are not Ready",
        )


def user_kubeconfig(
    cluster: Cluster, user: str, groups: tuple[str, ...] = (), namespace: str | None = None
) -> Path:
    """A kubeconfig for ``user`` (a client certificate); RBAC decides what it may do."""
    info = _running_info(cluster)
    for name in (user, *groups):
        if not _USER_RE.fullmatch(name):
            raise ClusterError(
                f"{name!r} is not a usable user or group name", hint="use letters, digits and -:._@"
            )
    pair = pki.user(cluster.layout.pki, user, groups)
    ca = cluster.layout.pki / "ca.crt"
    path = cluster.layout.users / f"{user}.kubeconfig"
    return config.kubeconfig(path, info.server, ca, pair, user=user, namespace=namespace)


def backend_url(cluster: Cluster, namespace: str = NAMESPACE) -> str:
    """The backend's Service as this machine reaches it (kube-proxy routes ClusterIPs here)."""
    result = cluster.kubectl(
        "-n",
        namespace,
        "get",
        "service",
        "loco-backend",
        "-o",
        "jsonpath={.spec.clusterIP}:{.spec.ports[0].port}",
    )
    if result.returncode != 0 or not result.stdout.strip(":"):
        raise ClusterError(f"no backend Service in namespace {namespace}: {result.stderr.strip()}")
    return f"http://{result.stdout.strip()}"


def control_token(cluster: Cluster, namespace: str = NAMESPACE) -> str:
    """The release's control token (read with the administrator's credentials)."""
    result = cluster.kubectl(
        "-n", namespace, "get", "secret", "loco-control-token", "-o", "jsonpath={.data.token}"
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise ClusterError(f"no control token in namespace {namespace}: {result.stderr.strip()}")
    return base64.b64decode(result.stdout.strip()).decode()

"""The project's chart on the local cluster, installed with the real Helm built here.

Values for one small node: the locally made images (never pulled), the built-in test guest
instead of Windows 98, no persistent volumes (the cluster has no storage provisioner), and
small requests so a handful of emulators fit.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Sequence
from typing import Any

import yaml

from localcluster import config
from localcluster.access import running_info
from localcluster.cluster import Cluster, Info
from localcluster.errors import ClusterError
from localcluster.images import CHART
from localcluster.steps import output, run_logged

NAMESPACE = "loco"
RELEASE = "loco"


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
    info = running_info(cluster)
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


def uninstall(cluster: Cluster, namespace: str, release: str = RELEASE) -> None:
    """Removes the release and then its namespace, waiting for both. Never raises for what
    is already gone: it runs in cleanups, also after an install that failed half-way."""
    argv = helm(cluster, "uninstall", release, "--namespace", namespace, "--wait")
    subprocess.run(argv, capture_output=True, timeout=300, check=False)
    cluster.kubectl(
        "delete", "namespace", namespace, "--ignore-not-found", "--wait=true", timeout=300
    )


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


def chart_role(cluster: Cluster, name: str = "loco-backend") -> dict[str, Any]:
    """The Role ``name`` exactly as the chart renders it (``helm template``)."""
    result = output(helm(cluster, "template", RELEASE, str(CHART)), timeout=120)
    if result.returncode != 0:
        raise ClusterError(f"helm template failed: {result.stderr.strip()}")
    for doc in yaml.safe_load_all(result.stdout):
        if doc and doc.get("kind") == "Role" and doc["metadata"]["name"] == name:
            return dict(doc)
    raise ClusterError(f"the chart renders no Role {name}")

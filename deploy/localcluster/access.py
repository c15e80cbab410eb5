"""Credentials for people and programs on the local cluster, each with only what RBAC
grants it: a client certificate for a user, or a ServiceAccount's token."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from localcluster import config, pki
from localcluster.cluster import Cluster, Info
from localcluster.errors import ClusterError

_NAME_RE = re.compile(r"[A-Za-z0-9][-A-Za-z0-9:._@]{0,62}")


def running_info(cluster: Cluster) -> Info:
    info = cluster.info()
    if info is None or not cluster.is_up():
        raise ClusterError("the local cluster is not running", hint="start it with `make cluster`")
    return info


def user_kubeconfig(
    cluster: Cluster, user: str, groups: tuple[str, ...] = (), namespace: str | None = None
) -> Path:
    """A kubeconfig for ``user`` (a client certificate); RBAC decides what it may do."""
    info = running_info(cluster)
    for name in (user, *groups):
        if not _NAME_RE.fullmatch(name):
            raise ClusterError(
                f"{name!r} is not a usable user or group name", hint="use letters, digits and -:._@"
            )
    pair = pki.user(cluster.layout.pki, user, groups)
    path = cluster.layout.users / f"{user}.kubeconfig"
    ca = cluster.layout.pki / "ca.crt"
    return config.kubeconfig(path, info.server, ca, pair, user=user, namespace=namespace)


def service_account_kubeconfig(
    cluster: Cluster,
    namespace: str,
    name: str,
    rules: list[dict[str, Any]] | None = None,
    duration: str = "2h",
) -> Path:
    """A ServiceAccount ``name`` (with a Role of ``rules`` bound to it, when given) and a
    kubeconfig holding a token for it, valid for ``duration``."""
    info = running_info(cluster)
    rbac = "rbac.authorization.k8s.io"
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
    ]
    if rules is not None:
        docs += [
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "Role",
                "metadata": {"name": name},
                "rules": rules,
            },
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": rbac, "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        ]
    manifest = cluster.layout.config / f"serviceaccount-{namespace}-{name}.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    applied = cluster.kubectl("-n", namespace, "apply", "-f", str(manifest))
    if applied.returncode != 0:
        raise ClusterError(f"creating ServiceAccount {namespace}/{name}: {applied.stderr.strip()}")
    made = cluster.kubectl("-n", namespace, "create", "token", name, f"--duration={duration}")
    if made.returncode != 0:
        raise ClusterError(f"a token for {namespace}/{name}: {made.stderr.strip()}")
    return config.kubeconfig(
        cluster.layout.users / f"sa-{namespace}-{name}.kubeconfig",
        info.server,
        cluster.layout.pki / "ca.crt",
        user=name,
        namespace=namespace,
        token=made.stdout.strip(),
    )

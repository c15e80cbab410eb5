"""kubeconfig files pointing kubectl and the Python client at the simulator."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from tests.kubesim.auth import Token

CLUSTER = "kubesim"


def context_name(token: Token, primary: Token) -> str:
    """The primary token's context is "kubesim"; every other token's is its user name."""
    return CLUSTER if token is primary else token.user


def build(
    server_url: str,
    namespace: str,
    tokens: list[Token],
    primary: Token,
    ca_pem: bytes | None = None,
) -> dict[str, Any]:
    """One context per token; the primary token's context is current."""
    cluster: dict[str, Any] = {"server": server_url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CLUSTER, "cluster": cluster}],
        "users": [{"name": t.user, "user": {"token": t.token}} for t in tokens],
        "contexts": [
            {
                "name": context_name(t, primary),
                "context": {"cluster": CLUSTER, "user": t.user, "namespace": namespace},
            }
            for t in tokens
        ],
        "current-context": context_name(primary, primary),
    }


def write(path: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """Write atomically (a reader polling for the file never sees half of it), mode 0600
    like kubectl's own, since it holds tokens."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    os.replace(tmp, target)
    return target

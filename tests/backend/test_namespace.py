"""Namespace resolution order, the service-account file, and kubeconfig handling."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from backend.kube.config import connect, resolve_namespace
from backend.kube.errors import KubeConfigError
from backend.models import NamespaceSource


def kubeconfig(
    path: Path, namespace: str | None, contexts: dict[str, str | None] | None = None
) -> Path:
    ctxs = contexts or {"main": namespace}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {
                "name": n,
                "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})},
            }
            for n, ns in ctxs.items()
        ],
        "current-context": next(iter(ctxs)),
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def sa_file(tmp_path: Path) -> Path:
    path = tmp_path / "namespace"
    path.write_text("from-sa\n")
    return path


def test_order_flag_env_sa_kubeconfig_default(tmp_path: Path, sa_file: Path) -> None:
    env = {"KUBERNETES_NAMESPACE": "from-env"}
    kc = "from-kubeconfig"
    missing = tmp_path / "absent"
    assert resolve_namespace("from-flag", env, sa_file, kc) == ("from-flag", NamespaceSource.FLAG)
    assert resolve_namespace(None, env, sa_file, kc) == ("from-env", NamespaceSource.ENV)
    assert resolve_namespace(None, {}, sa_file, kc) == ("from-sa", NamespaceSource.SERVICE_ACCOUNT)
    assert resolve_namespace(None, {}, missing, kc) == (
        "from-kubeconfig",
        NamespaceSource.KUBECONFIG,
    )
    assert resolve_namespace(None, {}, None, kc) == ("from-kubeconfig", NamespaceSource.KUBECONFIG)
    assert resolve_namespace(None, {}, missing, None) == ("default", NamespaceSource.DEFAULT)


def test_blank_values_fall_through(tmp_path: Path) -> None:
    empty = tmp_path / "ns"
    empty.write_text("  \n")
    got = resolve_namespace("  ", {"KUBERNETES_NAMESPACE": ""}, empty, " ")
    assert got == ("default", NamespaceSource.DEFAULT)
    # a directory where the file should be is not a namespace either
    assert resolve_namespace(None, {}, tmp_path, None)[1] is NamespaceSource.DEFAULT


async def test_kubeconfig_context_namespace(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kc", None, {"main": "ns-main", "other": "ns-other", "bare": None})
    conn = await connect(path, None, env={})
    assert conn.context_namespace == "ns-main"
    assert conn.mode == f"kubeconfig:{path}"
    assert conn.context == "main"
    assert (await connect(path, "other", env={})).context_namespace == "ns-other"
    assert (await connect(path, "bare", env={})).context_namespace is None
    # KUBECONFIG from the environment is used when no flag is given
    other = await connect(None, "other", env={"KUBECONFIG": str(path)})
    assert other.context_namespace == "ns-other"
    ns, source = resolve_namespace(None, {}, tmp_path / "absent", conn.context_namespace)
    assert (ns, source) == ("ns-main", NamespaceSource.KUBECONFIG)


async def test_kubeconfig_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="not found"):
        await connect(tmp_path / "missing", None, env={})
    path = kubeconfig(tmp_path / "kc", "x")
    with pytest.raises(KubeConfigError, match="no context named 'nope' \\(have: main\\)"):
        await connect(path, "nope", env={})
    bad = tmp_path / "bad"
    bad.write_text("this: [is not a kubeconfig")
    with pytest.raises(KubeConfigError) as info:
        await connect(bad, None, env={})
    assert "\n" not in str(info.value)

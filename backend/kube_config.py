"""Connecting to the Kubernetes API: in-cluster service account or a kubeconfig file.

Choice: an explicit ``--kubeconfig``/``KUBECONFIG`` wins; otherwise in-cluster when the
pod environment (``KUBERNETES_SERVICE_HOST``) is present; otherwise ``~/.kube/config``.
Each backend gets its own ``Configuration`` (never the client's global default), so tests
can run several backends against several API servers in one process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

DEFAULT_KUBECONFIG = Path("~/.kube/config")


class KubeConfigError(ValueError):
    """The API server cannot be configured; ``str()`` is the line to show."""


@dataclass(frozen=True)
class KubeConnection:
    api_client: k8s_client.ApiClient
    mode: str
    """``in-cluster`` or ``kubeconfig:<path>``."""
    server: str
    context_namespace: str | None
    """The namespace of the kubeconfig context in use, if it names one."""


def _kubeconfig_path(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        return explicit
    value = env.get("KUBECONFIG", "").strip()
    if value:
        # KUBECONFIG may list several files; the client reads one, so use the first.
        return Path(value.split(os.pathsep)[0])
    return None


def connect(
    kubeconfig: Path | None = None,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
) -> KubeConnection:
    """Builds an API client; raises :class:`KubeConfigError` with a clear message."""
    env = os.environ if env is None else env
    cfg = k8s_client.Configuration()
    path = _kubeconfig_path(kubeconfig, env)
    if path is None and env.get("KUBERNETES_SERVICE_HOST"):
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except ConfigException as exc:
            raise KubeConfigError(f"in-cluster configuration failed: {exc}") from None
        mode, ctx_ns = "in-cluster", None
    else:
        path = (path or DEFAULT_KUBECONFIG).expanduser()
        if not path.is_file():
            raise KubeConfigError(
                f"kubeconfig {path} not found; give --kubeconfig FILE or set KUBECONFIG "
                "(or run inside a pod with a service account)"
            )
        try:
            contexts, current = k8s_config.list_kube_config_contexts(str(path))
            chosen = current
            if context is not None:
                chosen = next((c for c in contexts if c.get("name") == context), None)
                if chosen is None:
                    names = ", ".join(sorted(c.get("name", "?") for c in contexts)) or "none"
                    raise KubeConfigError(
                        f"kubeconfig {path}: no context named {context!r} (have: {names})"
                    )
            ctx_ns = ((chosen or {}).get("context") or {}).get("namespace")
            k8s_config.load_kube_config(
                config_file=str(path),
                context=context,
                client_configuration=cfg,
                persist_config=False,
            )
        except KubeConfigError:
            raise
        except (ConfigException, OSError, ValueError, TypeError, KeyError, yaml.YAMLError) as exc:
            # One line: YAML errors span several lines with marks of their own.
            reason = " ".join(str(exc).split())
            raise KubeConfigError(f"kubeconfig {path}: {reason}") from None
        mode = f"kubeconfig:{path}"
    # Outages must be noticed quickly and handled by our breaker and relist logic, not
    # hidden behind urllib3's own retries.
    cfg.retries = False
    return KubeConnection(
        api_client=k8s_client.ApiClient(cfg),
        mode=mode,
        server=cfg.host,
        context_namespace=ctx_ns,
    )

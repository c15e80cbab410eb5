"""Connecting to the Kubernetes API, and choosing the namespace.

Connection: an explicit ``--kubeconfig``/``KUBECONFIG`` wins; otherwise in-cluster when the
pod environment (``KUBERNETES_SERVICE_HOST``) is present; otherwise ``~/.kube/config``,
as kubectl does. Each caller gets its own ``Configuration`` (never the client's global
default), so one process can talk to several API servers (tests do).

Namespace, first match wins: an explicit choice (flag), ``KUBERNETES_NAMESPACE``, the
service-account namespace file Kubernetes mounts into every pod, the kubeconfig context's
namespace, ``default``. The original system failed with a null namespace; here the choice
is always made, and returned with the rule that made it so it can be logged and shown.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config
from kubernetes.aio.config.config_exception import ConfigException

from backend.kube.conventions import SERVICE_ACCOUNT_NAMESPACE_FILE
from backend.kube.errors import KubeConfigError
from backend.models import NamespaceSource
from emulator.jsonlog import log

DEFAULT_KUBECONFIG = Path("~/.kube/config")

logger = logging.getLogger("backend.kube.config")


@dataclass(frozen=True)
class KubeConnection:
    """Where and how to reach the API; loop-independent (clients are made per event loop)."""

    configuration: aio_client.Configuration
    mode: str
    """``in-cluster`` or ``kubeconfig:<path>``."""
    server: str
    context: str | None
    """The kubeconfig context in use (None in-cluster)."""
    context_namespace: str | None
    """The namespace that context names, if it names one."""


def kubeconfig_path(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    if explicit is not None:
        return explicit
    value = env.get("KUBECONFIG", "").strip()
    if value:
        # KUBECONFIG may list several files; the client reads one, so use the first.
        return Path(value.split(os.pathsep)[0])
    return None


def current_context(kubeconfig: Path | None, env: Mapping[str, str]) -> str | None:
    """The kubeconfig's current context, for display (None when there is none)."""
    path = (kubeconfig_path(kubeconfig, env) or DEFAULT_KUBECONFIG).expanduser()
    try:
        _, current = aio_config.list_kube_config_contexts(str(path))
    except (ConfigException, OSError, ValueError, TypeError, KeyError, yaml.YAMLError):
        return None
    return str(current.get("name")) if current else None


async def connect(
    kubeconfig: Path | None = None,
    context: str | None = None,
    env: Mapping[str, str] | None = None,
) -> KubeConnection:
    """Reads the configuration; raises :class:`KubeConfigError` with one clear line."""
    env = os.environ if env is None else env
    cfg = aio_client.Configuration()
    path = kubeconfig_path(kubeconfig, env)
    chosen_name: str | None = None
    if path is None and env.get("KUBERNETES_SERVICE_HOST"):
        try:
            aio_config.load_incluster_config(client_configuration=cfg)
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
            contexts, current = aio_config.list_kube_config_contexts(str(path))
            chosen = current
            if context is not None:
                chosen = next((c for c in contexts if c.get("name") == context), None)
                if chosen is None:
                    names = ", ".join(sorted(c.get("name", "?") for c in contexts)) or "none"
                    raise KubeConfigError(
                        f"kubeconfig {path}: no context named {context!r} (have: {names})"
                    )
            chosen_name = (chosen or {}).get("name")
            ctx_ns = ((chosen or {}).get("context") or {}).get("namespace")
            await aio_config.load_kube_config(
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
    # Outages must be noticed quickly and handled by breakers and relists, not hidden
    # behind the client's own retries.
    cfg.retries = None
    return KubeConnection(cfg, mode, cfg.host, chosen_name, ctx_ns)


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def read_service_account_namespace(path: Path) -> str | None:
    """The namespace from the mounted service-account file, or None when absent/empty."""
    try:
        return _clean(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError as exc:
        # A file that exists but cannot be read usually means a misconfigured
        # securityContext; falling through silently would hide it.
        log(
            logger,
            logging.WARNING,
            "service-account namespace file unreadable",
            path=str(path),
            error=str(exc),
        )
        return None


def resolve_namespace(
    flag: str | None,
    env: Mapping[str, str],
    service_account_file: Path | None = SERVICE_ACCOUNT_NAMESPACE_FILE,
    kubeconfig_namespace: str | None = None,
) -> tuple[str, NamespaceSource]:
    """Returns the namespace and the rule that chose it (see the module docstring).

    The console passes no environment and no service-account file: like kubectl, it takes
    an explicit namespace or the context's.
    """
    if (ns := _clean(flag)) is not None:
        return ns, NamespaceSource.FLAG
    if (ns := _clean(env.get("KUBERNETES_NAMESPACE"))) is not None:
        return ns, NamespaceSource.ENV
    if (
        service_account_file is not None
        and (ns := read_service_account_namespace(service_account_file)) is not None
    ):
        return ns, NamespaceSource.SERVICE_ACCOUNT
    if (ns := _clean(kubeconfig_namespace)) is not None:
        return ns, NamespaceSource.KUBECONFIG
    return "default", NamespaceSource.DEFAULT

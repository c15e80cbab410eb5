"""Which Kubernetes namespace the backend watches, and why.

Order (first match wins): the ``--namespace`` flag, the ``KUBERNETES_NAMESPACE``
environment variable, the service-account namespace file that Kubernetes mounts into every
pod, the kubeconfig context's namespace, and finally ``default``. The original system
failed with a null namespace; here the choice is always made, and logged once with its
source so an operator can see why the backend looks where it looks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from backend.models import NamespaceSource
from emulator.jsonlog import log

SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

logger = logging.getLogger("backend.namespace")


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
        # A file that exists but cannot be read is worth a warning: it usually means a
        # misconfigured securityContext, and we silently fall through otherwise.
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
    service_account_file: Path = SERVICE_ACCOUNT_NAMESPACE_FILE,
    kubeconfig_namespace: Callable[[], str | None] | None = None,
) -> tuple[str, NamespaceSource]:
    """Returns the namespace and the rule that chose it (see the module docstring)."""
    if (ns := _clean(flag)) is not None:
        return ns, NamespaceSource.FLAG
    if (ns := _clean(env.get("KUBERNETES_NAMESPACE"))) is not None:
        return ns, NamespaceSource.ENV
    if (ns := read_service_account_namespace(service_account_file)) is not None:
        return ns, NamespaceSource.SERVICE_ACCOUNT
    if kubeconfig_namespace is not None and (ns := _clean(kubeconfig_namespace())) is not None:
        return ns, NamespaceSource.KUBECONFIG
    return "default", NamespaceSource.DEFAULT

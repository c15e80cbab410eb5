"""Which side serves an instance: the Kubernetes API with the operator's own credentials,
or the backend. One decision, asked by every action and every log tail (the console's
adapter boundary, as Harlequin keeps its adapters apart from its UI).

An instance is a **pod** when its source is Kubernetes, or when nothing says what it is
(the backend does not know it) and a cluster is configured.

* restart: a pod with Kubernetes access is deleted with the operator's credentials; a pod
  without it is deleted by the backend (its service account); a local or static instance
  has its QEMU restarted by the backend.
* logs: a pod with Kubernetes access gives its pod log, followed; a pod without it gives
  the backend's last lines, not followed; a local or static instance gives its
  supervisor's log file through the backend, followed.
* the previous container's log: pods with Kubernetes access only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from backend.models import InstanceSource
from locotui.data.logs import LineSource, backend_source, kube_source

Mode = Literal["kubernetes", "backend", "backend_pod"]
"""How a restart is done: delete the pod with the operator's credentials; the backend
restarts QEMU (local/static); the backend deletes the pod with its own service account
(a Kubernetes instance, but no kubeconfig here)."""


def is_pod(source: InstanceSource | None, kube_available: bool) -> bool:
    """The rule in the module docstring, for callers that have not opened Kubernetes yet."""
    return source is InstanceSource.KUBERNETES or (source is None and kube_available)


@dataclass(frozen=True)
class LogRoute:
    """Where an instance's log lines come from; ``source`` is None when nothing can serve
    them, and ``note`` says why or what is missing (not following, no previous log)."""

    source: LineSource | None
    note: str | None = None


class Routes:
    """The decision for the console's clients (either may be absent) and its view of the
    fleet (``source_of``: what an instance is, None when unknown)."""

    def __init__(
        self,
        *,
        backend: Any | None,
        kube: Any | None,
        source_of: Callable[[str], InstanceSource | None],
    ) -> None:
        self.backend = backend
        self.kube = kube
        self.source_of = source_of

    def is_pod(self, name: str) -> bool:
        return is_pod(self.source_of(name), self.kube is not None)

    def restart(self, name: str) -> Mode:
        if not self.is_pod(name):
            return "backend"
        return "kubernetes" if self.kube is not None else "backend_pod"

    def logs(
        self,
        name: str,
        *,
        tail: int,
        follow: bool = True,
        previous: bool = False,
        timestamps: bool = True,
        since_seconds: int | None = None,
        container: str | None = None,
    ) -> LogRoute:
        """The log lines of ``name``: followed (when ``follow``) where they can be, the
        previous container's with ``previous`` (Kubernetes only)."""
        pod = self.is_pod(name)
        if pod and self.kube is not None:
            return LogRoute(
                kube_source(
                    self.kube,
                    name,
                    tail=tail,
                    follow=follow and not previous,
                    previous=previous,
                    timestamps=timestamps,
                    since_seconds=since_seconds,
                    container=container,
                )
            )
        if previous:
            return LogRoute(None, "previous container logs need Kubernetes access")
        if self.backend is None:
            return LogRoute(None, "no log source (no backend, no Kubernetes)")
        if not pod:
            return LogRoute(backend_source(self.backend, name, tail=tail, follow=follow))
        # The backend serves a pod's last lines but does not follow pods.
        return LogRoute(
            backend_source(self.backend, name, tail=tail, follow=False),
            "not following (no Kubernetes access)" if follow else None,
        )

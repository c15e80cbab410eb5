"""The Kubernetes API with the operator's own credentials, in the console's terms.

Used for what the backend cannot or should not do for the operator: tail pod logs
(follow, previous, timestamps, since), delete pods and roll the StatefulSet with the
operator's RBAC, read a pod's events, and show the fleet from pods alone when the backend
is gone (:meth:`KubeClient.watch_pods`).

An adapter over the project's one Kubernetes layer (:mod:`backend.kube`): connecting like
kubectl (``kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``; in a pod, the
service account; ``context``, else the current one; ``namespace``, else the context's,
else ``default``), the calls, and the list-then-watch loop all live there. This module adds
the console's vocabulary: :mod:`locotui.data.errors` exceptions with
``source="kubernetes"`` (a 403 is :class:`~locotui.data.errors.Forbidden` carrying the API
server's RBAC message), :class:`LinkChange` items around the watch, and the pod-only view
of an instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.kube.api import KubeApi
from backend.kube.config import KubeConnection, connect, resolve_namespace
from backend.kube.conventions import LABEL_SELECTOR, RESTARTED_AT
from backend.kube.errors import KubeConfigError as LayerConfigError
from backend.kube.errors import KubeError, KubeUnreachable
from backend.kube.pods import Pod, parse_time
from backend.kube.portforward import PortForward
from backend.kube.watching import Changed, Listed, list_and_watch
from backend.models import BreakerState, Instance, InstanceSource, InstanceStatus
from backend.status_rule import StatusInputs, derive_status
from locotui.data.errors import (
    DataError,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
    Unreachable,
)
from locotui.data.link import Backoff, LinkChange, LinkState

__all__ = [
    "LABEL_SELECTOR",
    "KubeClient",
    "KubeConfigError",
    "KubeEvent",
    "KubePod",
    "PodChange",
    "PodSnapshot",
    "RolloutStatus",
    "pod_instance",
]

SOURCE = "kubernetes"
KubePod = Pod
"""One emulator pod (the layer's :class:`backend.kube.pods.Pod`)."""


class KubeConfigError(DataError):
    """No usable kubeconfig / context; ``str()`` says which and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, source=SOURCE)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class PodSnapshot:
    """Every emulator pod (after a (re)list): replace what you have."""

    pods: list[Pod]
    resource_version: str | None


@dataclass(frozen=True)
class PodChange:
    kind: str  # ADDED | MODIFIED | DELETED
    pod: Pod


@dataclass(frozen=True)
class KubeEvent:
    """A Kubernetes Event about a pod (what ``kubectl describe pod`` lists at the end)."""

    type: str  # Normal | Warning
    reason: str
    message: str
    count: int
    last_seen: datetime | None
    source: str | None
    involved: str | None = None
    """``Kind/name`` of the object it is about (``Pod/loco-emulator-1``)."""

    @property
    def pod(self) -> str | None:
        """The pod's name when the event is about a pod."""
        kind, _, name = (self.involved or "").partition("/")
        return name if kind == "Pod" and name else None


@dataclass(frozen=True)
class RolloutStatus:
    name: str
    replicas: int
    ready: int
    updated: int
    current_revision: str | None
    update_revision: str | None

    @property
    def done(self) -> bool:
        return (
            self.updated >= self.replicas
            and self.ready >= self.replicas
            and (self.update_revision is None or self.current_revision == self.update_revision)
        )


def pod_instance(pod: Pod) -> Instance:
    """An :class:`Instance` built from the pod alone (the Kubernetes-only fallback view).

    The status uses the backend's rule with "no probe yet" (so the same pod facts give the
    same verdict as the backend's), and the reason says the emulator's health is unknown.
    """
    status, reason = derive_status(
        StatusInputs(
            pod=pod.facts, health=None, probed=False, probe_ok=False, breaker=BreakerState.CLOSED
        )
    )
    if status is InstanceStatus.UNKNOWN and pod.facts.ready:
        reason = "pod Ready; emulator health unknown (backend unreachable)"
    elif reason:
        reason = f"{reason}; emulator health unknown (backend unreachable)"
    return Instance(
        name=pod.name,
        source=InstanceSource.KUBERNETES,
        status=status,
        status_reason=reason,
        pod=pod.facts,
        health=None,
        fps=None,
        stale=True,
        stale_reason="Kubernetes-only view: no emulator health while the backend is unreachable",
    )


# --------------------------------------------------------------------------- errors


def kube_event(raw: dict[str, Any]) -> KubeEvent:
    """One raw Event object as a :class:`KubeEvent`."""
    last = (
        parse_time(raw.get("lastTimestamp"))
        or parse_time(raw.get("eventTime"))
        or parse_time((raw.get("metadata") or {}).get("creationTimestamp"))
    )
    src = raw.get("source") or {}
    obj = raw.get("involvedObject") or {}
    involved = (
        f"{obj.get('kind')}/{obj.get('name')}" if obj.get("kind") and obj.get("name") else None
    )
    return KubeEvent(
        type=str(raw.get("type") or "Normal"),
        reason=str(raw.get("reason") or ""),
        message=str(raw.get("message") or "").strip(),
        count=int(raw.get("count") or 1),
        last_seen=last,
        source=src.get("component") or raw.get("reportingComponent") or None,
        involved=involved,
    )


def map_error(exc: BaseException) -> DataError:
    """The layer's failure as the console's one-line :class:`DataError`."""
    if isinstance(exc, DataError):
        return exc
    if isinstance(exc, KubeUnreachable):
        return Unreachable(str(exc), source=SOURCE)
    if isinstance(exc, KubeError):
        what, msg, status = exc.what, exc.message, exc.status or 0
        if status == 401:
            return Unauthorized(
                f"{what}: the Kubernetes API rejected your credentials ({msg}); "
                "log in again or check the kubeconfig user",
                source=SOURCE,
                status=401,
            )
        if status == 403:
            return Forbidden(f"{what}: RBAC denied: {msg}", source=SOURCE, status=403)
        if status == 404:
            return NotFound(f"{what}: {msg}", source=SOURCE, status=404)
        if status == 429:
            return RateLimited(f"{what}: {msg}", retry_after=exc.retry_after, source=SOURCE)
        if status:
            return ServerError(f"{what}: API error {status}: {msg}", source=SOURCE, status=status)
        return DataError(str(exc), source=SOURCE)
    return DataError(f"{type(exc).__name__}: {exc}", source=SOURCE)


# --------------------------------------------------------------------------- client


# A list of the pods made this recently (the console's look at the cluster before it opens)
# starts the view's watch instead of a second list of the same pods: at 1000 pods that list
# is most of a second of the console's start.
PRIMED_FOR = 10.0


class KubeClient:
    """One namespace of one cluster, with the operator's credentials."""

    def __init__(
        self,
        connection: KubeConnection,
        namespace: str,
        *,
        namespace_source: str = "flag",
        request_timeout: float = 10.0,
        label_selector: str = LABEL_SELECTOR,
    ) -> None:
        self.connection = connection
        self.api = KubeApi(connection, request_timeout=request_timeout)
        self.namespace = namespace
        self.namespace_source = namespace_source
        self.context = connection.context
        self.server = connection.server
        self.request_timeout = request_timeout
        self.label_selector = label_selector
        self._primed: tuple[float, PodSnapshot] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    async def aconnect(
        cls,
        kubeconfig: Path | str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        env: Mapping[str, str] | None = None,
        request_timeout: float = 10.0,
    ) -> KubeClient:
        """Reads the kubeconfig; raises :class:`KubeConfigError` with a one-line reason.

        Like kubectl, the namespace is the one given, else the context's, else default.
        """
        env = os.environ if env is None else env
        try:
            conn = await connect(Path(kubeconfig) if kubeconfig else None, context, env)
        except LayerConfigError as exc:
            raise KubeConfigError(str(exc)) from None
        ns, source = resolve_namespace(namespace, {}, None, conn.context_namespace)
        return cls(conn, ns, namespace_source=source.value, request_timeout=request_timeout)

    @classmethod
    def connect(
        cls,
        kubeconfig: Path | str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        env: Mapping[str, str] | None = None,
        request_timeout: float = 10.0,
    ) -> KubeClient:
        """:meth:`aconnect` for code outside an event loop (a command line's start). The
        client is not tied to this call's loop: it serves any loop that uses it later."""
        return asyncio.run(cls.aconnect(kubeconfig, context, namespace, env, request_timeout))

    @classmethod
    async def from_settings(cls, settings: Any) -> KubeClient:
        """From :class:`locotui.config.Settings` (kubeconfig, kube_context, namespace)."""
        return await cls.aconnect(settings.kubeconfig, settings.kube_context, settings.namespace)

    async def aclose(self) -> None:
        await self.api.close()

    @property
    def detail(self) -> str:
        return f"{self.server} namespace {self.namespace}"

    # ------------------------------------------------------------------ pods
    async def list_pods(self) -> PodSnapshot:
        """Every emulator pod in the namespace (label selector :data:`LABEL_SELECTOR`)."""
        try:
            pods, rv = await self.api.list_pods(self.namespace, self.label_selector)
        except KubeError as exc:
            raise map_error(exc) from None
        snapshot = PodSnapshot(pods, rv)
        self._primed = (time.monotonic(), snapshot)
        return snapshot

    def _take_primed(self) -> tuple[list[Pod], str] | None:
        """The last list (pods and its resourceVersion), once, if it is recent enough to
        start a watch from (the console's first look at the cluster, just before it opens)."""
        primed, self._primed = self._primed, None
        if primed is None or time.monotonic() - primed[0] > PRIMED_FOR:
            return None
        snapshot = primed[1]
        if not snapshot.resource_version:
            return None
        return snapshot.pods, snapshot.resource_version

    async def get_pod(self, name: str) -> Pod:
        try:
            return await self.api.get_pod(self.namespace, name)
        except KubeError as exc:
            raise map_error(exc) from None

    async def pod_manifest(self, name: str) -> dict[str, Any]:
        """The pod's manifest as the API has it (for the raw view)."""
        try:
            return await self.api.get_pod_manifest(self.namespace, name)
        except KubeError as exc:
            raise map_error(exc) from None

    async def watch_pods(
        self,
        *,
        backoff: Backoff | None = None,
        watch_timeout: int = 300,
    ) -> AsyncIterator[PodSnapshot | PodChange | LinkChange]:
        """List, then watch, forever: a :class:`PodSnapshot` after every (re)list, then
        :class:`PodChange` items, with :class:`LinkChange` items for the connection.

        The layer resumes watches and relists on 410; errors back off (exponential,
        jitter) and relist. A 401/403 ends the iteration with a FAILED change (retrying
        cannot help).
        """
        backoff = backoff or Backoff()
        attempt = 0
        primed = self._take_primed()
        while True:
            yield LinkChange(
                LinkState.CONNECTING, attempt=attempt, at=time.time(), detail=self.detail
            )
            listed, primed = primed, None  # the first attempt only
            try:
                async for item in list_and_watch(
                    self.api,
                    self.namespace,
                    self.label_selector,
                    resync=watch_timeout,
                    listed=listed,
                ):
                    if isinstance(item, Listed):
                        if attempt or item.reason == "start":
                            yield LinkChange(
                                LinkState.CONNECTED, at=time.time(), detail=self.detail
                            )
                        attempt = 0
                        backoff.reset()
                        yield PodSnapshot(item.pods, item.resource_version)
                    elif isinstance(item, Changed):
                        yield PodChange(item.kind, item.pod)
            except KubeError as exc:
                error = map_error(exc)
                if isinstance(error, Unauthorized | Forbidden):
                    yield LinkChange(LinkState.FAILED, error=str(error), at=time.time())
                    return
                attempt += 1
                delay = backoff.next_delay()
                yield LinkChange(
                    LinkState.RECONNECTING,
                    error=str(error),
                    retry_in=delay,
                    attempt=attempt,
                    at=time.time(),
                )
                await asyncio.sleep(delay)

    def pods_as_instances(self, pods: list[Pod]) -> list[Instance]:
        return [pod_instance(p) for p in pods]

    async def delete_pod(self, name: str, grace_seconds: int | None = None) -> str | None:
        """Deletes the pod (its StatefulSet recreates it); returns the deleted pod's uid."""
        try:
            return await self.api.delete_pod(self.namespace, name, grace_seconds)
        except KubeError as exc:
            raise map_error(exc) from None

    async def wait_pod_replaced(
        self, name: str, old_uid: str | None, *, ready: bool = True, poll: float = 0.5
    ) -> Pod:
        """Returns once a pod ``name`` with a uid other than ``old_uid`` exists (and is
        Ready when ``ready``). Polls ``poll`` seconds apart; bound it with
        ``asyncio.timeout``. A missing pod (between delete and recreate) is expected."""
        while True:
            with contextlib.suppress(NotFound):
                pod = await self.get_pod(name)
                if pod.uid != old_uid and not pod.facts.deleting and (pod.facts.ready or not ready):
                    return pod
            await asyncio.sleep(poll)

    # ------------------------------------------------------------------ logs
    async def pod_logs(
        self,
        name: str,
        *,
        container: str | None = None,
        tail: int | None = None,
        follow: bool = False,
        previous: bool = False,
        timestamps: bool = False,
        since_seconds: int | None = None,
    ) -> AsyncIterator[str]:
        """The pod's log lines (like ``kubectl logs``); with ``follow`` it runs until the
        container ends or the iteration is closed (which closes the stream)."""
        try:
            stream = await self.api.pod_log(
                self.namespace,
                name,
                container=container,
                tail=tail,
                follow=follow,
                previous=previous,
                timestamps=timestamps,
                since_seconds=since_seconds,
            )
            async for line in stream.lines():
                yield line
        except KubeError as exc:
            raise map_error(exc) from None
        if stream.broken is not None:
            raise map_error(stream.broken)

    # ------------------------------------------------------------------ events
    async def pod_events(self, name: str, limit: int = 20) -> list[KubeEvent]:
        """The most recent events about pod ``name``, newest last."""
        try:
            items = await self.api.events_about(self.namespace, "Pod", name)
        except KubeError as exc:
            raise map_error(exc) from None
        events = [kube_event(e) for e in items]
        events.sort(key=lambda ev: ev.last_seen or datetime.min.replace(tzinfo=UTC))
        return events[-limit:]

    async def port_forward(self, name: str, port: int) -> PortForward:
        """A started port-forward from ``127.0.0.1:<local>`` to ``port`` of pod ``name``
        (``pods/portforward`` with these credentials); ``stop()`` it when done."""

        async def open_ws() -> Any:
            try:
                return await self.api.open_port_forward(self.namespace, name, port)
            except KubeError as exc:
                raise map_error(exc) from None

        forward = PortForward(open_ws, port)
        await forward.start()
        return forward

    async def backend_forward(self, sock: socket.socket) -> PortForward:
        """A started port-forward from ``sock`` (bound to 127.0.0.1 already) to the
        backend's pod in this namespace, found again for every connection (a restarted
        backend pod is followed)."""

        async def open_ws() -> Any:
            try:
                name, port = await self.api.backend_endpoint(self.namespace)
                return await self.api.open_port_forward(self.namespace, name, port)
            except KubeError as exc:
                raise map_error(exc) from None

        forward = PortForward(open_ws, None, sock=sock)
        await forward.start()
        return forward

    async def backend_endpoint(self, try_forward: bool = False) -> tuple[str, int]:
        """(pod, port) of the backend in this namespace. With ``try_forward``, one
        port-forward stream is also opened and closed, so a Role without
        ``pods/portforward`` is found before the console opens, not as a backend that
        will not answer."""
        try:
            name, port = await self.api.backend_endpoint(self.namespace)
            if try_forward:
                ws = await self.api.open_port_forward(self.namespace, name, port)
                await ws.close()
            return name, port
        except KubeError as exc:
            raise map_error(exc) from None

    async def namespace_events(self, limit: int = 500) -> list[KubeEvent]:
        """The namespace's events (every object: pods, the StatefulSet, the scheduler's
        failures), newest last."""
        try:
            items = await self.api.list_events(self.namespace, limit=limit)
        except KubeError as exc:
            raise map_error(exc) from None
        events = [kube_event(e) for e in items]
        events.sort(key=lambda ev: ev.last_seen or datetime.min.replace(tzinfo=UTC))
        return events

    # ------------------------------------------------------------------ statefulsets
    async def statefulsets_of(self, names: list[str] | None = None) -> list[str]:
        """StatefulSets owning the emulator pods (``names`` only, when given)."""
        snapshot = await self.list_pods()
        owners = {
            p.owner_name
            for p in snapshot.pods
            if p.owner_kind == "StatefulSet" and p.owner_name and (names is None or p.name in names)
        }
        return sorted(owners)  # type: ignore[arg-type]

    async def rollout_restart(self, statefulset: str) -> datetime:
        """Like ``kubectl rollout restart statefulset/NAME``: stamps the pod template's
        ``kubectl.kubernetes.io/restartedAt`` annotation; the controller then replaces
        the pods one by one. Returns the timestamp written."""
        now = datetime.now(UTC).replace(microsecond=0)
        stamp = now.isoformat().replace("+00:00", "Z")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        try:
            await self.api.patch_statefulset(self.namespace, statefulset, patch)
        except KubeError as exc:
            raise map_error(exc) from None
        return now

    async def rollout_status(self, statefulset: str) -> RolloutStatus:
        try:
            body = await self.api.get_statefulset(self.namespace, statefulset)
        except KubeError as exc:
            raise map_error(exc) from None
        spec, status = body.get("spec") or {}, body.get("status") or {}
        replicas = int(spec.get("replicas", 1))
        generation = (body.get("metadata") or {}).get("generation")
        observed = status.get("observedGeneration")
        updated = int(status.get("updatedReplicas") or 0)
        if generation is not None and observed is not None and observed < generation:
            updated = 0  # the controller has not seen the new template yet
        return RolloutStatus(
            name=statefulset,
            replicas=replicas,
            ready=int(status.get("readyReplicas") or 0),
            updated=updated,
            current_revision=status.get("currentRevision"),
            update_revision=status.get("updateRevision"),
        )

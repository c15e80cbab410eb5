"""The Kubernetes API with the operator's own credentials (official client, blocking).

Used for what the backend cannot or should not do for the operator: tail pod logs
(follow, previous, timestamps, since), delete pods and roll the StatefulSet with the
operator's RBAC, read a pod's events, and show the fleet from pods alone when the backend
is gone (:meth:`KubeClient.watch_pods`).

Connection like kubectl: ``kubeconfig`` (else ``$KUBECONFIG``, else ``~/.kube/config``; in
a pod, the service account), ``context`` (else the current one), ``namespace`` (else the
context's, else ``default``).

Every blocking call runs in a worker thread (``asyncio.to_thread``); streams (watch, log
follow) are read by a daemon thread that feeds an ``asyncio.Queue`` with back-pressure,
and are cut short from the loop by shutting the socket down. API failures become
:mod:`locotui.data.errors` exceptions with ``source="kubernetes"``; a 403 is
:class:`~locotui.data.errors.Forbidden` carrying the API server's RBAC message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from backend.discovery.kubernetes import pod_facts as _backend_pod_facts
from backend.models import BreakerState, Instance, InstanceSource, InstanceStatus, PodFacts
from backend.status_rule import StatusInputs, derive_status
from locotui.data.errors import (
    BadResponse,
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

logger = logging.getLogger("locotui.kube")

LABEL_SELECTOR = "app.kubernetes.io/component=emulator,app.kubernetes.io/part-of=lego-loco-cluster"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
SOURCE = "kubernetes"


class KubeConfigError(DataError):
    """No usable kubeconfig / context; ``str()`` says which and how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, source=SOURCE)


class _Gone(Exception):
    """A watch's resourceVersion expired (410): list again."""


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class KubePod:
    name: str
    namespace: str
    uid: str | None
    facts: PodFacts
    owner_kind: str | None = None
    owner_name: str | None = None
    containers: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodSnapshot:
    """Every emulator pod (after a (re)list): replace what you have."""

    pods: list[KubePod]
    resource_version: str | None


@dataclass(frozen=True)
class PodChange:
    kind: str  # ADDED | MODIFIED | DELETED
    pod: KubePod


@dataclass(frozen=True)
class KubeEvent:
    """A Kubernetes Event about a pod (what ``kubectl describe pod`` lists at the end)."""

    type: str  # Normal | Warning
    reason: str
    message: str
    count: int
    last_seen: datetime | None
    source: str | None


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


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_facts(pod: Mapping[str, Any]) -> PodFacts:
    """The backend's :class:`PodFacts` from a pod's JSON (same derivation as discovery)."""
    return _backend_pod_facts(dict(pod))


def parse_pod(obj: Mapping[str, Any], namespace: str) -> KubePod:
    meta = obj.get("metadata") or {}
    owner = next(
        (o for o in meta.get("ownerReferences") or [] if o.get("controller")),
        (meta.get("ownerReferences") or [None])[0],
    )
    containers = tuple(str(c.get("name")) for c in (obj.get("spec") or {}).get("containers") or [])
    return KubePod(
        name=str(meta["name"]),
        namespace=str(meta.get("namespace") or namespace),
        uid=meta.get("uid"),
        facts=pod_facts(obj),
        owner_kind=owner.get("kind") if owner else None,
        owner_name=owner.get("name") if owner else None,
        containers=containers,
        labels=dict(meta.get("labels") or {}),
    )


def pod_instance(pod: KubePod) -> Instance:
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


def api_message(exc: ApiException) -> str:
    """The API server's own message from a Status body, else the HTTP reason."""
    if exc.body:
        try:
            body = json.loads(exc.body)
            if isinstance(body, dict) and body.get("message"):
                return str(body["message"])
        except (ValueError, TypeError):
            text = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body)
            return text.strip()[:200] or str(exc.reason)
    return str(exc.reason or f"HTTP {exc.status}")


def map_error(exc: BaseException, what: str, server: str) -> DataError:
    """Turns a client exception into a one-line :class:`DataError`."""
    if isinstance(exc, DataError):
        return exc
    if isinstance(exc, ApiException):
        status = exc.status or 0
        msg = api_message(exc)
        if status == 0:  # the client raises ApiException(status=0) for transport trouble
            return Unreachable(f"{what}: Kubernetes API {server} unreachable: {msg}", source=SOURCE)
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
            after = None
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                after = float((exc.headers or {}).get("Retry-After"))
            return RateLimited(f"{what}: {msg}", retry_after=after, source=SOURCE)
        return ServerError(f"{what}: API error {status}: {msg}", source=SOURCE, status=status)
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return Unreachable(
            f"{what}: Kubernetes API {server} unreachable: {_short(exc.reason)}", source=SOURCE
        )
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return Unreachable(
            f"{what}: Kubernetes API {server} unreachable: {_short(exc)}", source=SOURCE
        )
    if isinstance(exc, ValueError | KeyError | TypeError):
        return BadResponse(
            f"{what}: unexpected answer from the Kubernetes API: {exc}", source=SOURCE
        )
    return DataError(f"{what}: {type(exc).__name__}: {exc}", source=SOURCE)


def _short(exc: BaseException) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.split("\n")[0][:200]


# --------------------------------------------------------------------------- streams

_END = object()


class _StreamThread:
    """Reads a streaming urllib3 response line by line in a daemon thread.

    Items go to ``queue`` as ``("line", str)``, ``("end", None)`` or ``("error", exc)``.
    ``put`` waits while the queue is full (back-pressure: a slow consumer slows the reader
    instead of growing memory), and gives up when the stream is stopped.
    """

    def __init__(
        self,
        open_stream: Callable[[], Any],
        loop: asyncio.AbstractEventLoop,
        maxsize: int = 1000,
        name: str = "kube-stream",
    ) -> None:
        self._open = open_stream
        self._loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize)
        self._resp: Any = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> _StreamThread:
        self._thread.start()
        return self

    def _put(self, item: tuple[str, Any]) -> bool:
        try:
            fut = asyncio.run_coroutine_threadsafe(self.queue.put(item), self._loop)
        except RuntimeError:  # loop closed
            return False
        while True:
            try:
                fut.result(timeout=0.5)
                return True
            except concurrent.futures.TimeoutError:
                if self._stopped.is_set():
                    fut.cancel()
                    return False
            except (concurrent.futures.CancelledError, RuntimeError):
                return False

    def _run(self) -> None:
        try:
            self._resp = self._open()
            if self._stopped.is_set():
                return
            for line in _iter_lines(self._resp):
                if self._stopped.is_set() or not self._put(("line", line)):
                    return
            self._put(("end", None))
        except BaseException as exc:
            if not self._stopped.is_set():
                self._put(("error", exc))
        finally:
            if self._resp is not None:
                with contextlib.suppress(Exception):
                    self._resp.release_conn()

    def stop(self) -> None:
        self._stopped.set()
        resp = self._resp
        if resp is not None:
            # Unblocks a read in progress in the reader thread (urllib3 >= 2.3).
            with contextlib.suppress(Exception):
                if hasattr(resp, "shutdown"):
                    resp.shutdown()
                else:
                    resp.close()

    async def items(self) -> AsyncIterator[tuple[str, Any]]:
        try:
            while True:
                item = await self.queue.get()
                yield item
                if item[0] in ("end", "error"):
                    return
        finally:
            self.stop()


MAX_LOG_LINE = 1024 * 1024


def _iter_lines(resp: Any, max_line: int = MAX_LOG_LINE) -> Iterator[str]:
    """Lines of a streaming body, decoded leniently; a last line without newline too. A
    line that never ends is handed on in ``max_line`` pieces rather than held whole."""
    buffer = bytearray()
    for segment in resp.stream(amt=None, decode_content=False):
        buffer.extend(segment if isinstance(segment, bytes) else str(segment).encode())
        while (nl := buffer.find(b"\n")) != -1:
            yield buffer[:nl].decode("utf-8", errors="replace").rstrip("\r")
            del buffer[: nl + 1]
        while len(buffer) > max_line:
            yield buffer[:max_line].decode("utf-8", errors="replace")
            del buffer[:max_line]
    if buffer:
        yield buffer.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- client


class KubeClient:
    """One namespace of one cluster, with the operator's credentials."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        namespace: str,
        *,
        namespace_source: str = "flag",
        context: str | None = None,
        server: str | None = None,
        request_timeout: float = 10.0,
        label_selector: str = LABEL_SELECTOR,
    ) -> None:
        self.api_client = api_client
        self.core = k8s_client.CoreV1Api(api_client)
        self.apps = k8s_client.AppsV1Api(api_client)
        self.namespace = namespace
        self.namespace_source = namespace_source
        self.context = context
        self.server = server or api_client.configuration.host
        self.request_timeout = request_timeout
        self.label_selector = label_selector

    # ------------------------------------------------------------------ construction
    @classmethod
    def connect(
        cls,
        kubeconfig: Path | str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        env: Mapping[str, str] | None = None,
        request_timeout: float = 10.0,
    ) -> KubeClient:
        """Loads the kubeconfig (blocking file read; use :meth:`aconnect` on a loop).

        Raises :class:`KubeConfigError` with a one-line reason.
        """
        from backend.kube_config import KubeConfigError as BackendKubeConfigError
        from backend.kube_config import connect

        env = os.environ if env is None else env
        try:
            conn = connect(Path(kubeconfig) if kubeconfig else None, context, env)
        except BackendKubeConfigError as exc:
            raise KubeConfigError(str(exc)) from None
        if namespace:
            ns, src = namespace, "flag"
        elif conn.context_namespace:
            ns, src = conn.context_namespace, "kubeconfig"
        else:
            ns, src = "default", "default"
        return cls(
            conn.api_client,
            ns,
            namespace_source=src,
            context=context,
            server=conn.server,
            request_timeout=request_timeout,
        )

    @classmethod
    async def aconnect(
        cls,
        kubeconfig: Path | str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        env: Mapping[str, str] | None = None,
        request_timeout: float = 10.0,
    ) -> KubeClient:
        return await asyncio.to_thread(
            cls.connect, kubeconfig, context, namespace, env, request_timeout
        )

    @classmethod
    async def from_settings(cls, settings: Any) -> KubeClient:
        """From :class:`locotui.config.Settings` (kubeconfig, kube_context, namespace)."""
        return await cls.aconnect(settings.kubeconfig, settings.kube_context, settings.namespace)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api_client.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    @property
    def detail(self) -> str:
        return f"{self.server} namespace {self.namespace}"

    # ------------------------------------------------------------------ plumbing
    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", self.request_timeout)
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            raise map_error(exc, what, self.server) from None

    async def _json(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # Raw JSON is several times cheaper than the client's model deserialisation and
        # gives the same field names the backend parses.
        resp = await self._call(what, fn, *args, _preload_content=False, **kwargs)
        try:
            return json.loads(resp.data)
        except ValueError as exc:
            raise BadResponse(f"{what}: the API sent invalid JSON: {exc}", source=SOURCE) from None

    # ------------------------------------------------------------------ pods
    async def list_pods(self) -> PodSnapshot:
        """Every emulator pod in the namespace (label selector :data:`LABEL_SELECTOR`)."""
        body = await self._json(
            f"list pods in {self.namespace}",
            self.core.list_namespaced_pod,
            self.namespace,
            label_selector=self.label_selector,
        )
        pods = []
        for item in body.get("items") or []:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                pods.append(parse_pod(item, self.namespace))
        pods.sort(key=lambda p: p.name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        return PodSnapshot(pods, rv)

    async def get_pod(self, name: str) -> KubePod:
        body = await self._json(f"pod {name}", self.core.read_namespaced_pod, name, self.namespace)
        return parse_pod(body, self.namespace)

    async def watch_pods(
        self,
        *,
        backoff: Backoff | None = None,
        watch_timeout: int = 300,
    ) -> AsyncIterator[PodSnapshot | PodChange | LinkChange]:
        """List, then watch, forever: a :class:`PodSnapshot` after every (re)list, then
        :class:`PodChange` items, with :class:`LinkChange` items for the connection.

        A watch that ends is resumed from the last resourceVersion (bookmarks keep it
        fresh); 410 Gone relists; errors back off (exponential, jitter) and relist.
        A 401/403 ends the iteration with a FAILED change (retrying cannot help).
        """
        backoff = backoff or Backoff()
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            yield LinkChange(
                LinkState.CONNECTING, attempt=attempt, at=time.time(), detail=self.detail
            )
            try:
                snapshot = await self.list_pods()
                rv = snapshot.resource_version
                yield LinkChange(LinkState.CONNECTED, at=time.time(), detail=self.detail)
                attempt = 0
                backoff.reset()
                yield snapshot
                while True:  # watch, resume, until Gone or an error
                    stream = _StreamThread(
                        lambda rv=rv: self.core.list_namespaced_pod(
                            self.namespace,
                            label_selector=self.label_selector,
                            watch=True,
                            allow_watch_bookmarks=True,
                            resource_version=rv,
                            timeout_seconds=watch_timeout,
                            _preload_content=False,
                            _request_timeout=(self.request_timeout, watch_timeout + 30),
                        ),
                        loop,
                        name="kube-watch",
                    ).start()
                    async for kind, payload in stream.items():
                        if kind == "error":
                            if isinstance(payload, ApiException) and payload.status == 410:
                                raise _Gone  # some servers answer 410 instead of an event
                            raise map_error(payload, "watch pods", self.server)
                        if kind == "end":
                            break
                        change, rv = self._watch_event(payload, rv)
                        if change is not None:
                            yield change
            except _Gone:
                continue  # relist at once: nothing is wrong with the connection
            except (Unauthorized, Forbidden) as exc:
                yield LinkChange(LinkState.FAILED, error=str(exc), at=time.time())
                return
            except DataError as exc:
                attempt += 1
                delay = backoff.next_delay()
                yield LinkChange(
                    LinkState.RECONNECTING,
                    error=str(exc),
                    retry_in=delay,
                    attempt=attempt,
                    at=time.time(),
                )
                await asyncio.sleep(delay)

    def _watch_event(self, line: str, rv: str | None) -> tuple[PodChange | None, str | None]:
        try:
            event = json.loads(line)
            kind = event["type"]
            obj = event["object"]
        except (ValueError, KeyError, TypeError):
            logger.warning("unparseable watch line: %.200s", line)
            return None, rv
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise ServerError(
                f"watch pods: API error {obj.get('code')}: {obj.get('message')}", source=SOURCE
            )
        new_rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
        if kind == "BOOKMARK":
            return None, new_rv
        try:
            pod = parse_pod(obj, self.namespace)
        except (KeyError, TypeError, ValueError):
            return None, new_rv
        return PodChange(kind, pod), new_rv

    def pods_as_instances(self, pods: list[KubePod]) -> list[Instance]:
        return [pod_instance(p) for p in pods]

    async def delete_pod(self, name: str, grace_seconds: int | None = None) -> str | None:
        """Deletes the pod (its StatefulSet recreates it); returns the deleted pod's uid."""
        body = await self._json(
            f"delete pod {name}",
            self.core.delete_namespaced_pod,
            name,
            self.namespace,
            grace_period_seconds=grace_seconds,
        )
        return (body.get("metadata") or {}).get("uid")

    async def wait_pod_replaced(
        self, name: str, old_uid: str | None, *, ready: bool = True, poll: float = 0.5
    ) -> KubePod:
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
        what = f"logs of {name}" + (" (previous)" if previous else "")
        kwargs: dict[str, Any] = {
            "follow": follow,
            "previous": previous,
            "timestamps": timestamps,
            "_preload_content": False,
        }
        if container:
            kwargs["container"] = container
        if tail is not None:
            kwargs["tail_lines"] = max(0, tail)
        if since_seconds is not None:
            kwargs["since_seconds"] = max(1, int(since_seconds))
        if not follow:
            resp = await self._call(
                what, self.core.read_namespaced_pod_log, name, self.namespace, **kwargs
            )
            text = resp.data.decode("utf-8", errors="replace")
            for line in text.splitlines():
                yield line
            return
        # The client insists on a finite read timeout; a day means "none" for a follow.
        kwargs["_request_timeout"] = (self.request_timeout, 86400.0)
        stream = _StreamThread(
            lambda: self.core.read_namespaced_pod_log(name, self.namespace, **kwargs),
            asyncio.get_running_loop(),
            name="kube-logs",
        ).start()
        async for kind, payload in stream.items():
            if kind == "error":
                raise map_error(payload, what, self.server)
            if kind == "end":
                return
            yield payload

    # ------------------------------------------------------------------ events
    async def pod_events(self, name: str, limit: int = 20) -> list[KubeEvent]:
        """The most recent events about pod ``name``, newest last."""
        body = await self._json(
            f"events of {name}",
            self.core.list_namespaced_event,
            self.namespace,
            field_selector=f"involvedObject.name={name},involvedObject.kind=Pod",
        )
        events = []
        for e in body.get("items") or []:
            last = (
                _time(e.get("lastTimestamp"))
                or _time(e.get("eventTime"))
                or _time((e.get("metadata") or {}).get("creationTimestamp"))
            )
            src = e.get("source") or {}
            events.append(
                KubeEvent(
                    type=str(e.get("type") or "Normal"),
                    reason=str(e.get("reason") or ""),
                    message=str(e.get("message") or "").strip(),
                    count=int(e.get("count") or 1),
                    last_seen=last,
                    source=src.get("component") or e.get("reportingComponent") or None,
                )
            )
        events.sort(key=lambda ev: ev.last_seen or datetime.min.replace(tzinfo=UTC))
        return events[-limit:]

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
        body = {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {RESTARTED_AT: now.isoformat().replace("+00:00", "Z")}
                    }
                }
            }
        }
        await self._call(
            f"rollout restart statefulset {statefulset}",
            self.apps.patch_namespaced_stateful_set,
            statefulset,
            self.namespace,
            body,
            _preload_content=False,
        )
        return now

    async def rollout_status(self, statefulset: str) -> RolloutStatus:
        body = await self._json(
            f"statefulset {statefulset}",
            self.apps.read_namespaced_stateful_set,
            statefulset,
            self.namespace,
        )
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

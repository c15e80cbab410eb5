"""Kubernetes discovery: list, then watch, the emulator pods of one namespace.

* The official client is synchronous. Lists run in worker threads (``asyncio.to_thread``);
  the watch runs in a dedicated daemon thread that hands each event to the event loop
  through ``call_soon_threadsafe``; nothing blocks the loop.
* List-then-watch: a list gives the complete set and a resourceVersion; a watch from that
  version delivers changes. The watch ends by itself every ``resync_seconds`` (server-side
  timeout) and the loop relists, so a missed event cannot persist. ``410 Gone`` (the
  version is too old, as an HTTP status or an ERROR event) also triggers a relist. A relist
  is a full sync in the fleet: instances are upserted by name and only those absent from the
  list are removed, so nothing is lost or duplicated.
* Every API call goes through a circuit breaker. While the API is unreachable the last
  known fleet stays (marked stale by the fleet), and recovery is automatic: retries back
  off from 0.5 s to ``max_backoff`` seconds, then the next successful list clears the state.
* A pod's health URL is ``http://<pod IP>:<port>`` with the container port named
  ``health`` (8080 when none is named), unless the pod's ``lego-loco.io/health-url``
  annotation overrides it (used to bind simulated pods to real local supervisors). The
  VNC address likewise: port named ``vnc`` (5900) or ``lego-loco.io/vnc-address``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from backend.breaker import BreakerOpenError, TargetBreaker
from backend.discovery.base import Discovery, DiscoverySink, Target
from backend.discovery.conventions import (
    ANNOTATION_HEALTH_URL,
    ANNOTATION_LOG_FILE,
    ANNOTATION_VNC_ADDRESS,
    DEFAULT_HEALTH_PORT,
    DEFAULT_VNC_PORT,
    LABEL_SELECTOR,
)
from backend.metrics import BackendMetrics
from backend.models import (
    DiscoveryState,
    InstanceSource,
    NamespaceSource,
    PodCondition,
    PodFacts,
)
from emulator.jsonlog import log

logger = logging.getLogger("backend.discovery.kubernetes")


class GoneError(Exception):
    """The watch's resourceVersion is too old (HTTP 410): relist."""


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _named_port(pod: dict[str, Any], name: str) -> int | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == name and isinstance(port.get("containerPort"), int):
                return int(port["containerPort"])
    return None


def _last_termination(statuses: list[dict[str, Any]]) -> tuple[str | None, datetime | None]:
    """The most recent ``lastState.terminated`` of the pod's containers: why and when."""
    latest: tuple[str | None, datetime | None] = (None, None)
    for cs in statuses:
        ended = (cs.get("lastState") or {}).get("terminated") or {}
        if not ended:
            continue
        reason = str(ended.get("reason") or "terminated")
        if ended.get("exitCode") is not None:
            reason += f" (exit {ended['exitCode']})"
        at = _parse_time(ended.get("finishedAt"))
        if latest[0] is None or (at is not None and (latest[1] is None or at > latest[1])):
            latest = (reason, at)
    return latest


def pod_facts(pod: dict[str, Any]) -> PodFacts:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    conditions = [
        PodCondition(
            type=str(c.get("type", "")),
            status=str(c.get("status", "Unknown")),
            reason=c.get("reason"),
            message=c.get("message"),
            last_transition_time=_parse_time(c.get("lastTransitionTime")),
        )
        for c in status.get("conditions") or []
    ]
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    statuses = (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    restarts = sum(int(cs.get("restartCount") or 0) for cs in statuses)
    waiting = next(
        (
            ((cs.get("state") or {}).get("waiting") or {}).get("reason")
            for cs in statuses
            if ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        ),
        None,
    )
    last_reason, last_at = _last_termination(statuses)
    return PodFacts(
        phase=status.get("phase"),
        ready=ready,
        restarts=restarts,
        node=spec.get("nodeName"),
        ip=status.get("podIP"),
        start_time=_parse_time(status.get("startTime")),
        created_at=_parse_time(meta.get("creationTimestamp")),
        deleting=bool(meta.get("deletionTimestamp")),
        waiting_reason=waiting,
        last_restart_reason=last_reason,
        last_restart_at=last_at,
        uid=meta.get("uid"),
        resource_version=meta.get("resourceVersion"),
        conditions=conditions,
    )


def pod_to_target(pod: dict[str, Any], namespace: str) -> Target:
    """What discovery knows about one pod (see the module docstring for the URL rule)."""
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    facts = pod_facts(pod)
    health_url = annotations.get(ANNOTATION_HEALTH_URL)
    if health_url:
        health_url = health_url.rstrip("/")
    elif facts.ip:
        port = _named_port(pod, "health") or DEFAULT_HEALTH_PORT
        host = f"[{facts.ip}]" if ":" in facts.ip else facts.ip
        health_url = f"http://{host}:{port}"
    vnc = annotations.get(ANNOTATION_VNC_ADDRESS)
    if not vnc and facts.ip:
        port = _named_port(pod, "vnc") or DEFAULT_VNC_PORT
        host = f"[{facts.ip}]" if ":" in facts.ip else facts.ip
        vnc = f"{host}:{port}"
    return Target(
        name=str(meta.get("name", "")),
        source=InstanceSource.KUBERNETES,
        health_url=health_url or None,
        vnc=vnc or None,
        pod=facts,
        log_file=annotations.get(ANNOTATION_LOG_FILE) or None,
        namespace=meta.get("namespace") or namespace,
    )


def describe_api_error(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        msg = ""
        if exc.body:
            try:
                msg = json.loads(exc.body).get("message", "")
            except (ValueError, AttributeError):
                msg = str(exc.body)[:200]
        return f"API error {exc.status} {reason}{': ' + msg if msg else ''}".strip()
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        return f"API unreachable: {exc.reason}"
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"API unreachable: {exc}"
    return f"{type(exc).__name__}: {exc}"


class _Watcher:
    """One watch request, read in a daemon thread, events handed to the loop."""

    _END = object()

    def __init__(
        self,
        open_stream: Callable[[], Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._open_stream = open_stream
        self._loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self._resp: Any = None
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="kube-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _put(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _run(self) -> None:
        try:
            self._resp = self._open_stream()
            if self._stopped:
                return
            self._put(("opened", None))
            for line in iter_resp_lines(self._resp):
                if self._stopped:
                    return
                if line:
                    self._put(("event", line))
            self._put(("end", None))
        except BaseException as exc:
            if not self._stopped:
                self._put(("error", exc))
        finally:
            if self._resp is not None:
                with contextlib.suppress(Exception):
                    self._resp.release_conn()

    def stop(self) -> None:
        """Ends the watch: the reading thread notices at its next read, which we cut short.

        Called on the loop thread; whoever still waits on the queue gets an end marker.
        """
        self._stopped = True
        self.queue.put_nowait(("end", None))
        resp = self._resp
        if resp is not None:
            # urllib3 2.3+ can shut the socket from another thread; fall back to close().
            with contextlib.suppress(Exception):
                if hasattr(resp, "shutdown"):
                    resp.shutdown()
                else:
                    resp.close()


class KubernetesDiscovery(Discovery):
    source = InstanceSource.KUBERNETES

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        namespace: str,
        namespace_source: NamespaceSource,
        breaker: TargetBreaker,
        *,
        label_selector: str = LABEL_SELECTOR,
        resync_seconds: float = 300.0,
        request_timeout: float = 10.0,
        max_backoff: float = 10.0,
        server: str | None = None,
        metrics: BackendMetrics | None = None,
    ) -> None:
        self.api_client = api_client
        self.core = k8s_client.CoreV1Api(api_client)
        self.namespace = namespace
        self.namespace_source = namespace_source
        self.breaker = breaker
        self.label_selector = label_selector
        self.resync_seconds = resync_seconds
        self.request_timeout = request_timeout
        self.max_backoff = max_backoff
        self.server = server
        self.metrics = metrics
        self._synced = False
        self._last_sync: datetime | None = None
        self._watcher: _Watcher | None = None
        self._known: set[str] = set()

    # ------------------------------------------------------------------ state
    def initial_state(self) -> DiscoveryState:
        return self._state(ok=True, error=None)

    def _state(self, ok: bool, error: str | None) -> DiscoveryState:
        return DiscoveryState(
            source=self.source,
            ok=ok,
            synced=self._synced,
            last_sync=self._last_sync,
            error=error,
            namespace=self.namespace,
            namespace_source=self.namespace_source,
            detail=self.server,
        )

    # ------------------------------------------------------------------ API calls
    def _list_blocking(self) -> tuple[list[dict[str, Any]], str]:
        resp = self.core.list_namespaced_pod(
            self.namespace,
            label_selector=self.label_selector,
            _preload_content=False,
            _request_timeout=(min(5.0, self.request_timeout), self.request_timeout),
        )
        try:
            body = json.loads(resp.data)
        finally:
            resp.release_conn()
        return list(body.get("items") or []), str(
            (body.get("metadata") or {}).get("resourceVersion") or ""
        )

    def _open_watch_blocking(self, resource_version: str, timeout: float) -> Any:
        return self.core.list_namespaced_pod(
            self.namespace,
            label_selector=self.label_selector,
            watch=True,
            allow_watch_bookmarks=True,
            resource_version=resource_version,
            timeout_seconds=max(1, int(timeout)),
            _preload_content=False,
            # The read timeout outlives the server-side watch timeout: the server ends
            # the watch, and a silent connection is noticed soon after.
            _request_timeout=(min(5.0, self.request_timeout), timeout + 15),
        )

    async def _list(self, sink: DiscoverySink, reason: str) -> str:
        started = time.perf_counter()
        pods, rv = await self.breaker.call(lambda: asyncio.to_thread(self._list_blocking))
        targets = [pod_to_target(p, self.namespace) for p in pods]
        targets = [t for t in targets if t.name]
        sink.sync(targets)
        self._known = {t.name for t in targets}
        first = not self._synced
        self._synced = True
        self._last_sync = datetime.now(UTC)
        sink.discovery_state(self._state(ok=True, error=None))
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.discovery_sync_duration.labels(self.source.value).observe(elapsed)
            self.metrics.discovery_last_sync.labels(self.source.value).set(time.time())
            self.metrics.discovery_relists.labels(self.source.value, reason).inc()
        log(
            logger,
            logging.INFO if first or reason != "resync" else logging.DEBUG,
            "pods listed",
            namespace=self.namespace,
            pods=len(targets),
            reason=reason,
            resource_version=rv,
            took_ms=round(elapsed * 1000, 1),
        )
        return rv

    # ------------------------------------------------------------------ main loop
    async def run(self, sink: DiscoverySink) -> None:
        backoff = 0.5
        reason = "start"
        failing_since: float | None = None
        while True:
            try:
                rv = await self._list(sink, reason)
                if failing_since is not None:
                    log(
                        logger,
                        logging.WARNING,
                        "Kubernetes API reachable again",
                        namespace=self.namespace,
                        outage_seconds=round(time.monotonic() - failing_since, 1),
                    )
                failing_since = None
                backoff = 0.5
                listed_at = time.monotonic()
                # Watch from the list's version until the resync period is over. A watch
                # that ends early (server timeout, dropped stream) resumes from the last
                # version seen, which is cheap; a version too old gives 410 → relist.
                while (left := self.resync_seconds - (time.monotonic() - listed_at)) > 0.5:
                    started = time.monotonic()
                    rv = await self._watch(sink, rv, left)
                    if time.monotonic() - started < 1.0:
                        # Do not spin when watches keep ending at once.
                        await asyncio.sleep(random.uniform(0.1, 0.3))  # noqa: S311
                reason = "resync"
            except asyncio.CancelledError:
                raise
            except GoneError:
                reason = "gone"
                log(
                    logger,
                    logging.INFO,
                    "watch expired (410 Gone); relisting",
                    namespace=self.namespace,
                )
                continue
            except Exception as exc:
                error = (
                    f"Kubernetes API circuit open after repeated failures; retrying in "
                    f"{exc.retry_after_seconds:.1f}s"
                    if isinstance(exc, BreakerOpenError)
                    else describe_api_error(exc)
                )
                if failing_since is None:
                    failing_since = time.monotonic()
                    log(
                        logger,
                        logging.ERROR,
                        "Kubernetes discovery failed; keeping the last known fleet (stale)",
                        namespace=self.namespace,
                        error=error,
                    )
                if self.metrics is not None:
                    kind = "breaker_open" if isinstance(exc, BreakerOpenError) else "api"
                    self.metrics.discovery_errors.labels(self.source.value, kind).inc()
                sink.discovery_state(self._state(ok=False, error=error))
                reason = "error"
                delay = backoff
                if isinstance(exc, BreakerOpenError):
                    delay = max(delay, exc.retry_after_seconds + 0.05)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311
                backoff = min(self.max_backoff, backoff * 2)

    async def _watch(self, sink: DiscoverySink, rv: str, duration: float) -> str:
        """Follows changes from ``rv`` until the watch ends; returns the last version seen.

        Raises :class:`GoneError` when ``rv`` is too old, and whatever opening the watch
        raised when the API is unreachable (counted by the breaker).
        """
        loop = asyncio.get_running_loop()
        watcher = _Watcher(lambda: self._open_watch_blocking(rv, duration), loop)
        self._watcher = watcher

        async def wait_open() -> Any:
            # Opening the watch is an API call like any other: it counts for the breaker
            # (and is not attempted while the breaker is open). 410 is not an outage.
            watcher.start()
            item = await watcher.queue.get()
            if item[0] == "error":
                if isinstance(item[1], ApiException) and item[1].status == 410:
                    return ("gone", item[1])
                raise item[1]
            return item

        try:
            first = await self.breaker.call(wait_open)
            if first[0] == "gone":
                raise GoneError(str(first[1].reason))
            if first[0] == "end":
                return rv
            while True:
                kind, payload = await watcher.queue.get()
                if kind == "end":
                    return rv
                if kind == "error":
                    # A broken stream is routine (API server restart, idle proxy): watch
                    # again; if the API is really gone, opening the next watch fails.
                    log(
                        logger,
                        logging.INFO,
                        "watch stream broke; watching again",
                        namespace=self.namespace,
                        error=describe_api_error(payload),
                    )
                    return rv
                rv = self._apply(sink, payload) or rv
        finally:
            watcher.stop()
            self._watcher = None

    def _apply(self, sink: DiscoverySink, line: str) -> str | None:
        try:
            event = json.loads(line)
        except ValueError:
            log(logger, logging.WARNING, "unparseable watch line", line=line[:200])
            return None
        etype = event.get("type")
        obj = event.get("object") or {}
        if etype == "ERROR":
            if obj.get("code") == 410:
                raise GoneError(obj.get("message", "resource version too old"))
            raise ApiException(status=obj.get("code"), reason=obj.get("message"))
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if etype == "BOOKMARK":
            return rv
        target = pod_to_target(obj, self.namespace)
        if not target.name:
            return rv
        if etype == "DELETED":
            self._known.discard(target.name)
            sink.remove(target.name)
        elif etype in ("ADDED", "MODIFIED"):
            self._known.add(target.name)
            sink.upsert(target)
        return rv

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        await asyncio.to_thread(self.api_client.close)

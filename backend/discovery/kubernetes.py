"""Kubernetes discovery: the emulator pods of one namespace, listed then watched.

The list-then-watch mechanics (bookmarks, resumption, 410 → relist, resync) are the
Kubernetes layer's (:func:`backend.kube.watching.list_and_watch`); this module turns what
it yields into the fleet's targets and discovery state. A relist is a full sync in the
fleet: instances are upserted by name and only those absent from the list are removed, so
nothing is lost or duplicated.

Every call to the API goes through the ``kubernetes-api`` circuit breaker (the layer's
hook). While the API is unreachable the last known fleet stays (marked stale by the fleet),
and recovery is automatic: retries back off from 0.5 s to ``max_backoff`` seconds, and the
next successful list clears the state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from backend.breaker import BreakerOpenError
from backend.discovery.base import Discovery, DiscoverySink, Target
from backend.kube.api import KubeApi
from backend.kube.conventions import LABEL_SELECTOR
from backend.kube.errors import describe
from backend.kube.pods import Pod
from backend.kube.watching import Changed, Listed, list_and_watch
from backend.metrics import BackendMetrics
from backend.models import DiscoveryState, InstanceSource, NamespaceSource
from emulator.backoff import Backoff
from emulator.jsonlog import log

logger = logging.getLogger("backend.discovery.kubernetes")


def pod_to_target(pod: Pod) -> Target:
    """What discovery knows about one pod (addresses by the layer's conventions)."""
    return Target(
        name=pod.name,
        source=InstanceSource.KUBERNETES,
        health_url=pod.health_url,
        vnc=pod.vnc,
        pod=pod.facts,
        log_file=pod.log_file,
        namespace=pod.namespace,
    )


class KubernetesDiscovery(Discovery):
    source = InstanceSource.KUBERNETES

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        namespace_source: NamespaceSource,
        *,
        label_selector: str = LABEL_SELECTOR,
        resync_seconds: float = 300.0,
        max_backoff: float = 10.0,
        metrics: BackendMetrics | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.namespace_source = namespace_source
        self.label_selector = label_selector
        self.resync_seconds = resync_seconds
        self.max_backoff = max_backoff
        self.metrics = metrics
        self._synced = False
        self._last_sync: datetime | None = None

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
            detail=self.api.server,
        )

    def _listed(self, sink: DiscoverySink, listed: Listed) -> None:
        sink.sync([pod_to_target(p) for p in listed.pods])
        first = not self._synced
        self._synced = True
        self._last_sync = datetime.now(UTC)
        sink.discovery_state(self._state(ok=True, error=None))
        if self.metrics is not None:
            self.metrics.discovery_sync_duration.labels(self.source.value).observe(listed.took)
            self.metrics.discovery_last_sync.labels(self.source.value).set(time.time())
            self.metrics.discovery_relists.labels(self.source.value, listed.reason).inc()
        log(
            logger,
            logging.INFO if first or listed.reason != "resync" else logging.DEBUG,
            "pods listed",
            namespace=self.namespace,
            pods=len(listed.pods),
            reason=listed.reason,
            resource_version=listed.resource_version,
            took_ms=round(listed.took * 1000, 1),
        )

    # ------------------------------------------------------------------ main loop
    async def run(self, sink: DiscoverySink) -> None:
        backoff = Backoff(initial=0.5, maximum=self.max_backoff)
        failing_since: float | None = None
        while True:
            try:
                async for item in list_and_watch(
                    self.api, self.namespace, self.label_selector, resync=self.resync_seconds
                ):
                    if isinstance(item, Changed):
                        if item.kind == "DELETED":
                            sink.remove(item.pod.name)
                        else:
                            sink.upsert(pod_to_target(item.pod))
                        continue
                    self._listed(sink, item)
                    if failing_since is not None:
                        log(
                            logger,
                            logging.WARNING,
                            "Kubernetes API reachable again",
                            namespace=self.namespace,
                            outage_seconds=round(time.monotonic() - failing_since, 1),
                        )
                    failing_since = None
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = (
                    f"Kubernetes API circuit open after repeated failures; retrying in "
                    f"{exc.retry_after_seconds:.1f}s"
                    if isinstance(exc, BreakerOpenError)
                    else describe(exc)
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
                delay = backoff.next_delay()
                if isinstance(exc, BreakerOpenError):
                    delay = max(delay, exc.retry_after_seconds + 0.05)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        await self.api.close()

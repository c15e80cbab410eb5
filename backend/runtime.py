"""Wires one backend together: discovery → fleet ← prober/breakers, plus the HTTP client.

The FastAPI app (``backend.api.app``) holds one :class:`BackendRuntime`; its lifespan calls
:meth:`start` and :meth:`stop`. Everything the routes read exists from construction on, so
the app also answers (with an empty, not-yet-synced fleet) when no lifespan runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from backend.breaker import BreakerSet, TargetBreaker
from backend.config import Settings
from backend.discovery.base import Discovery
from backend.discovery.local import LocalDiscovery
from backend.discovery.static import StaticConfigError, StaticDiscovery
from backend.fleet import Fleet
from backend.metrics import BackendMetrics
from backend.models import BreakerInfo, InstanceSource
from backend.prober import Prober
from emulator.jsonlog import log

if TYPE_CHECKING:  # the Kubernetes client is imported only in kubernetes mode
    from backend.kube.api import KubeApi
    from backend.kube.config import KubeConnection

logger = logging.getLogger("backend.runtime")

KUBE_API_BREAKER = "kubernetes-api"


class BackendRuntime:
    def __init__(
        self,
        settings: Settings,
        discovery: Discovery,
        *,
        metrics: BackendMetrics | None = None,
        kube: KubeApi | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        # Injectable so tests can confine probes to loopback (simulated pods carry
        # private-range IPs that must never be contacted from a test machine).
        self._http_transport = http_transport
        self.discovery = discovery
        self.metrics = metrics or BackendMetrics()
        self.kube = kube
        """Restarts and log tails of pods (through the same breaker as discovery)."""
        self.fleet = Fleet(discovery.source, discovery.initial_state(), self.metrics)
        self.breakers = BreakerSet(
            settings.breaker_threshold, settings.breaker_reset, on_change=self._breaker_changed
        )
        self.prober = Prober(
            self.fleet,
            self.breakers,
            self.http,
            interval=settings.probe_interval,
            timeout=settings.probe_timeout,
            concurrency=settings.probe_concurrency,
            metrics=self.metrics,
            enabled=settings.probing,
            streaming=settings.streaming,
        )
        self.fleet.add_observer(self.prober)
        self.started_at = time.time()
        self._http: httpx.AsyncClient | None = None
        self._discovery_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ HTTP client
    def http(self) -> httpx.AsyncClient:
        """The shared client for probes and proxied calls (created on first use)."""
        if self._http is None:
            s = self.settings
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(s.probe_timeout, connect=min(1.0, s.probe_timeout)),
                limits=httpx.Limits(
                    # Each status stream holds a connection for as long as it is open;
                    # probes in flight are bounded by the prober's concurrency instead.
                    max_connections=None if s.streaming else s.probe_concurrency + 16,
                    max_keepalive_connections=s.probe_concurrency + 16,
                ),
                # Pod IPs and loopback targets must never go through a proxy from the env.
                trust_env=False,
                follow_redirects=False,
                transport=self._http_transport,
            )
        return self._http

    def _breaker_changed(self, name: str, info: BreakerInfo) -> None:
        self.metrics.set_breaker(name, info.state, info.failures)
        self.fleet.breaker_changed(name, info)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.prober.start()
        self._discovery_task = asyncio.get_running_loop().create_task(
            self._run_discovery(), name="discovery"
        )

    async def stop(self) -> None:
        if self._discovery_task is not None:
            self._discovery_task.cancel()
            await asyncio.gather(self._discovery_task, return_exceptions=True)
            self._discovery_task = None
        await self.discovery.close()
        await self.prober.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _run_discovery(self) -> None:
        # Discovery sources handle their own errors; this guard only keeps a bug in one
        # from silently ending discovery for the life of the process.
        while True:
            try:
                await self.discovery.run(self.fleet)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log(logger, logging.ERROR, "discovery crashed; restarting it", error=repr(exc))
                state = self.fleet.discovery.model_copy(
                    update={"ok": False, "error": f"discovery crashed: {exc!r}"}
                )
                self.fleet.discovery_state(state)
                await asyncio.sleep(1.0)

    # ------------------------------------------------------------------ reads
    def uptime(self) -> float:
        return time.time() - self.started_at


def connect_kubernetes(settings: Settings, env: Mapping[str, str]) -> KubeConnection:
    """Reads the Kubernetes configuration before the server's loop starts (the result is
    not tied to a loop). Raises ``KubeConfigError`` (a ``ValueError``) on bad input."""
    from backend.kube.config import connect

    return asyncio.run(connect(settings.kubeconfig, settings.context, env))


def build_runtime(
    settings: Settings,
    metrics: BackendMetrics | None = None,
    env: Mapping[str, str] | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
    kube: KubeConnection | None = None,
) -> BackendRuntime:
    """Creates the discovery source the settings ask for, and the runtime around it.

    Kubernetes mode needs ``kube`` (from :func:`connect_kubernetes`, or ``await
    backend.kube.config.connect(...)`` inside a running loop). Raises
    ``StaticConfigError`` (a ``ValueError``) on a bad static file.
    """
    env = os.environ if env is None else env
    metrics = metrics or BackendMetrics()
    discovery: Discovery
    kube_api = None
    if settings.discovery is InstanceSource.STATIC:
        if settings.static_config is None:
            raise StaticConfigError(
                Path("--static-config"), None, "static discovery needs a file of instances"
            )
        discovery = StaticDiscovery(settings.static_config, settings.static_reload_interval)
    elif settings.discovery is InstanceSource.LOCAL:
        discovery = LocalDiscovery(settings.local_dir, settings.local_scan_interval)
    else:
        from backend.discovery.kubernetes import KubernetesDiscovery
        from backend.kube.api import KubeApi
        from backend.kube.config import resolve_namespace

        if kube is None:
            raise ValueError("Kubernetes discovery needs a connection (connect_kubernetes)")
        namespace, source = resolve_namespace(
            settings.namespace,
            env,
            settings.service_account_namespace_file,
            kube.context_namespace,
        )
        log(
            logger,
            logging.INFO,
            "Kubernetes namespace chosen",
            namespace=namespace,
            source=source.value,
            connection=kube.mode,
            server=kube.server,
        )
        api_breaker = TargetBreaker(
            KUBE_API_BREAKER,
            settings.breaker_threshold,
            settings.breaker_reset,
            on_change=lambda name, info: metrics.set_breaker(name, info.state, info.failures),
        )
        metrics.set_breaker(KUBE_API_BREAKER, api_breaker.state, 0)
        kube_api = KubeApi(
            kube, request_timeout=settings.kube_request_timeout, call=api_breaker.call
        )
        discovery = KubernetesDiscovery(
            kube_api,
            namespace,
            source,
            label_selector=settings.label_selector,
            resync_seconds=settings.resync_seconds,
            metrics=metrics,
        )
    return BackendRuntime(
        settings,
        discovery,
        metrics=metrics,
        kube=kube_api,
        http_transport=http_transport,
    )

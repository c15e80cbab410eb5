"""KubeSim: the simulator as a Python object for tests.

The simulator runs on its own event loop in a daemon thread, so it keeps serving while a
test blocks in the (synchronous) official client or awaits on its own loop. Every public
method is thread-safe: it runs its work on the simulator's loop and waits for the result.
Async tests can call these methods directly (they return within milliseconds); the only
long waits have ``async_`` twins that do not block the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.kubesim import kubeconfig as kc
from tests.kubesim import manifests
from tests.kubesim.api import App
from tests.kubesim.auth import Authenticator, Token
from tests.kubesim.context import Context
from tests.kubesim.controller import Cluster
from tests.kubesim.faults import Faults
from tests.kubesim.objects import Obj
from tests.kubesim.selectors import LabelSelector
from tests.kubesim.server import SimServer
from tests.kubesim.store import Store
from tests.kubesim.timing import Timing
from tests.kubesim.tls import server_certs
from tests.support.waiting import eventually, poll_until

T = TypeVar("T")

__all__ = ["KubeSim"]

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class KubeSim:
    """A running Kubernetes API simulator.

    >>> with KubeSim(namespace="loco", emulators=3) as sim:
    ...     sim.wait_pods_ready(3)
    ...     api = sim.api_client()
    """

    def __init__(
        self,
        namespace: str = "default",
        emulators: int = 3,
        *,
        statefulset: str = manifests.DEFAULT_STATEFULSET,
        timing: Timing | None = None,
        tokens: list[Token] | None = None,
        port: int = 0,
        kubeconfig: str | os.PathLike[str] | None = None,
        pod_management_policy: str = "Parallel",
        image: str = manifests.DEFAULT_IMAGE,
        tls: bool = True,
    ) -> None:
        self.namespace = namespace
        # kubectl withholds bearer tokens from plain-http servers, hence TLS by default;
        # tls=False serves plain http (fine for the Python client, useless for kubectl).
        self.tls = tls
        self.statefulset_name = statefulset
        self.timing = timing or Timing()
        self.admin = Token.admin()
        self.readonly = Token.read_only()
        self.tokens: list[Token] = [self.admin, self.readonly, *(tokens or [])]
        self._emulators = emulators
        self._pod_policy = pod_management_policy
        self._image = image
        self._requested_port = port
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if kubeconfig is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="kubesim-")
            kubeconfig = Path(self._tmpdir.name) / "kubeconfig"
        self.kubeconfig = Path(kubeconfig)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ctx: Context | None = None
        self._server: SimServer | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> KubeSim:
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run_loop, args=(ready,), name="kubesim", daemon=True
        )
        self._thread.start()
        ready.wait()
        self._call(self._astart())
        return self

    def _run_loop(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())  # on_delete callbacks
            loop.close()

    async def _astart(self) -> None:
        store = Store()
        cluster = Cluster(store, self.timing)
        ctx = Context(store, cluster, Authenticator(self.tokens), Faults(), self.timing)
        self._ctx = ctx
        server = SimServer(
            App(ctx), port=self._requested_port, tls=server_certs() if self.tls else None
        )
        self._server = server

        async def go_down(seconds: float) -> None:
            await server.down()
            await asyncio.sleep(seconds)
            await server.up()

        ctx.go_down = go_down
        for ns in (*SYSTEM_NAMESPACES, self.namespace):
            if store.get("namespaces", "", ns) is None:
                store.create("namespaces", manifests.namespace(ns))
        if self._emulators > 0:
            self._create_sts(
                self.statefulset_name,
                self._emulators,
                self.namespace,
                None,
                self._image,
                self._pod_policy,
            )
        await server.up()
        ctx.server_address = f"127.0.0.1:{server.port}"
        self.write_kubeconfig(self.kubeconfig)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._call(self._server.down(), timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = self._loop = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> KubeSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> KubeSim:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # --- plumbing ---------------------------------------------------------------------

    def _call(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        loop = self._loop
        if loop is None:
            raise RuntimeError(
                "KubeSim is not running; call start() or use it as a context manager"
            )
        if threading.current_thread() is self._thread:
            raise RuntimeError("KubeSim methods cannot be called from the simulator's own loop")
        return asyncio.run_coroutine_threadsafe(_as_coro(coro), loop).result(timeout)

    def _sync(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self._call(run())

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            raise RuntimeError("KubeSim is not running")
        return self._ctx

    # --- connection facts -------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "KubeSim is not running"
        return self._server.port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """The CA that signed the server certificate (None without TLS)."""
        return server_certs().ca_pem if self.tls else None

    def ca_file(self) -> Path | None:
        """The CA as a PEM file next to the kubeconfig (for httpx ``verify=`` etc.)."""
        if not self.tls:
            return None
        path = self.kubeconfig.parent / "kubesim-ca.crt"
        if not path.exists():
            path.write_bytes(server_certs().ca_pem)
        return path

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client SSL context trusting the simulator's CA (e.g. ``httpx.Client(verify=...)``)."""
        ca = self.ca_file()
        return ssl.create_default_context(cafile=str(ca)) if ca is not None else None

    def write_kubeconfig(self, path: str | os.PathLike[str], token: Token | None = None) -> Path:
        """A kubeconfig with one context per token; ``token`` (default admin) is current."""
        primary = token or self.admin
        tokens = list(self.tokens) if primary in self.tokens else [primary, *self.tokens]
        return kc.write(path, kc.build(self.url, self.namespace, tokens, primary, self.ca_pem))

    def context_for(self, token: Token) -> str:
        """The kubeconfig context name that authenticates with ``token``."""
        return kc.context_name(token, self.admin)

    def api_client(self, token: Token | None = None) -> Any:
        """An official-client ``ApiClient`` for this simulator (no global config touched)."""
        from kubernetes import client, config

        if token is None:
            return config.new_client_from_config(config_file=str(self.kubeconfig))
        configuration = client.Configuration()
        configuration.host = self.url
        ca = self.ca_file()
        if ca is not None:
            configuration.ssl_ca_cert = str(ca)
        configuration.api_key = {"authorization": token.token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    # --- inspection -------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._sync(lambda: self.ctx.store.rv)

    def pods(self, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        sel = LabelSelector.parse(label_selector)
        ns = namespace or self.namespace
        return [
            p
            for p in self._sync(lambda: self.ctx.store.list("pods", ns))
            if sel.matches(p["metadata"].get("labels"))
        ]

    def pod(self, name: str, namespace: str | None = None) -> Obj | None:
        return self._sync(lambda: self.ctx.store.get("pods", namespace or self.namespace, name))

    def statefulset(self, name: str | None = None, namespace: str | None = None) -> Obj | None:
        return self._sync(
            lambda: self.ctx.store.get(
                "apps/statefulsets", namespace or self.namespace, name or self.statefulset_name
            )
        )

    def events(self, involved_name: str | None = None, namespace: str | None = None) -> list[Obj]:
        evs = self._sync(lambda: self.ctx.store.list("events", namespace or self.namespace))
        return [
            e for e in evs if involved_name is None or e["involvedObject"]["name"] == involved_name
        ]

    def requests(self) -> list[tuple[str, str]]:
        """Recent (method, path?query) pairs the API served, oldest first."""
        return self._sync(lambda: list(self.ctx.requests))

    def open_streams(self) -> int:
        return self._sync(lambda: len(self.ctx.open_streams))

    # --- seeding and driving ------------------------------------------------------------

    def create_namespace(self, name: str) -> Obj:
        return self._sync(
            lambda: (
                self.ctx.store.get("namespaces", "", name)
                or self.ctx.store.create("namespaces", manifests.namespace(name))
            )
        )

    def _create_sts(
        self,
        name: str,
        replicas: int,
        namespace: str,
        labels: dict[str, str] | None,
        image: str,
        policy: str,
    ) -> Obj:
        obj = manifests.statefulset(name, namespace, replicas, image, labels, policy)
        obj["metadata"]["generation"] = 1
        return self.ctx.store.create("apps/statefulsets", obj)

    def create_statefulset(
        self,
        name: str,
        replicas: int,
        namespace: str | None = None,
        labels: dict[str, str] | None = None,
        image: str = manifests.DEFAULT_IMAGE,
        pod_management_policy: str = "Parallel",
    ) -> Obj:
        ns = namespace or self.namespace
        self.create_namespace(ns)
        return self._sync(
            lambda: self._create_sts(name, replicas, ns, labels, image, pod_management_policy)
        )

    def scale(self, replicas: int, name: str | None = None, namespace: str | None = None) -> Obj:
        def run() -> Obj:
            store = self.ctx.store
            sts = store.get(
                "apps/statefulsets", namespace or self.namespace, name or self.statefulset_name
            )
            assert sts is not None, "no such StatefulSet"
            sts["spec"]["replicas"] = replicas
            sts["metadata"]["generation"] = int(sts["metadata"].get("generation", 1)) + 1
            return store.update("apps/statefulsets", sts)

        return self._sync(run)

    def delete_pod(
        self, name: str, grace_seconds: int | None = None, namespace: str | None = None
    ) -> Obj:
        """Delete like the API does (graceful unless ``grace_seconds=0``)."""
        return self._sync(
            lambda: self.ctx.cluster.delete_pod(namespace or self.namespace, name, grace_seconds)
        )

    def restart_container(
        self, name: str, exit_code: int = 1, reason: str = "Error", namespace: str | None = None
    ) -> Obj:
        """Simulate the container crashing and the kubelet restarting it in place: restartCount
        goes up and lastState.terminated is filled."""
        return self._sync(
            lambda: self.ctx.cluster.restart_container(
                namespace or self.namespace, name, exit_code, reason
            )
        )

    def set_ready(self, name: str, ready: bool | None, namespace: str | None = None) -> None:
        """Force the Ready condition (``None`` returns it to automatic)."""

        def run() -> None:
            key = (namespace or self.namespace, name)
            if ready is None:
                self.ctx.cluster.ready_override.pop(key, None)
            else:
                self.ctx.cluster.ready_override[key] = ready
            self.ctx.cluster.apply_readiness(*key)

        self._sync(run)

    def add_token(self, token: Token) -> None:
        self.tokens.append(token)
        self._sync(lambda: self.ctx.auth.add(token))
        self.write_kubeconfig(self.kubeconfig)

    # --- faults -----------------------------------------------------------------------

    def add_latency(
        self,
        seconds: float,
        path: str = ".*",
        methods: list[str] | None = None,
        count: int | None = None,
    ) -> int:
        """Delay matching requests (regex on path?query). Returns an id for remove_fault."""
        return self._sync(lambda: self.ctx.faults.add_latency(seconds, path, methods, count))

    def add_error(
        self,
        status: int = 500,
        path: str = ".*",
        methods: list[str] | None = None,
        count: int | None = None,
        message: str | None = None,
    ) -> int:
        """Answer matching requests with ``status`` and a Status body (``count`` times)."""
        return self._sync(lambda: self.ctx.faults.add_error(status, path, methods, count, message))

    def remove_fault(self, fault_id: int) -> None:
        self._sync(lambda: self.ctx.faults.remove(fault_id))

    def clear_faults(self) -> None:
        self._sync(self.ctx.faults.clear)

    def drop_watches(self) -> int:
        """End every open watch stream cleanly (clients must re-watch); returns how many."""
        return self._sync(self.ctx.store.drop_watchers)

    def expire_resource_versions(self) -> int:
        """Compact history: every resourceVersion handed out so far is now too old (410)."""
        return self._sync(self.ctx.store.expire)

    def down(self) -> None:
        """Stop listening and reset open connections (clients get connection refused)."""
        assert self._server is not None
        self._call(self._server.down())

    def up(self) -> None:
        """Listen again on the same port."""
        assert self._server is not None
        self._call(self._server.up())

    @property
    def is_up(self) -> bool:
        return self._server is not None and self._server.is_up

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """``with sim.outage(): ...`` - the API is down inside the block."""
        self.down()
        try:
            yield
        finally:
            self.up()

    # --- waiting ----------------------------------------------------------------------

    def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,
        interval: float = 0.01,
        what: str = "",
    ) -> T:
        """Polls until ``predicate()`` is truthy and returns its value (the suite's one
        deadline loop, tests/support/waiting.py)."""
        return poll_until(predicate, timeout, f"kubesim: {what or predicate}", interval=interval)

    async def async_wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,
        interval: float = 0.01,
        what: str = "",
    ) -> T:
        value: T = await eventually(
            predicate, timeout, f"kubesim: {what or predicate}", interval=interval
        )
        return value

    def _all_ready(self, count: int | None, namespace: str | None) -> list[Obj] | None:
        pods = [p for p in self.pods(namespace) if not p["metadata"].get("deletionTimestamp")]
        want = count if count is not None else self._expected_replicas(namespace)
        if len(pods) != want:
            return None
        if all(is_ready(p) for p in pods):
            return pods
        return None

    def _expected_replicas(self, namespace: str | None) -> int:
        sts = self.statefulset(namespace=namespace)
        return int(sts["spec"].get("replicas", 0)) if sts else 0

    def wait_pods_ready(
        self, count: int | None = None, timeout: float = 5.0, namespace: str | None = None
    ) -> list[Obj]:
        """Wait until exactly ``count`` (default: the StatefulSet's replicas) live pods are
        Ready; returns them."""
        return self.wait_for(
            lambda: self._all_ready(count, namespace), timeout, what=f"{count} ready pods"
        )

    async def async_wait_pods_ready(
        self, count: int | None = None, timeout: float = 5.0, namespace: str | None = None
    ) -> list[Obj]:
        return await self.async_wait_for(
            lambda: self._all_ready(count, namespace), timeout, what=f"{count} ready pods"
        )


def is_ready(pod: Obj) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


async def _as_coro(aw: Awaitable[T]) -> T:
    return await aw

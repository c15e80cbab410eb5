"""The Kubernetes API calls the project makes, on the official client's asyncio flavour.

``kubernetes.aio`` gives coroutines over aiohttp: no worker threads, no sockets shut down
from another thread, and a stream is cancelled by cancelling its reader. Every call is
made ``…_without_preload_content``: the answer's JSON is parsed here (several times
cheaper than the client's models), its size is bounded, and its status is checked here.

``call`` is a hook around each request's opening (a circuit breaker's ``call``): what it
sees fail is the API being unusable — no answer at all, or a 5xx. A 4xx is the API
answering "no" (RBAC, not found, expired watch) and is raised after the hook, so it never
opens a breaker.

An aiohttp session belongs to the event loop that first used it; a client here is made
per loop, so one connection serves a command's short ``asyncio.run`` and then the
console's own loop.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
from kubernetes.aio import client as aio_client

if TYPE_CHECKING:
    from kubernetes.aio.client.api.apps_v1_api import AppsV1Api
    from kubernetes.aio.client.api.coordination_v1_api import CoordinationV1Api
    from kubernetes.aio.client.api.core_v1_api import CoreV1Api

from backend.bounded_http import LineTooLong, split_lines
from backend.kube.config import KubeConnection
from backend.kube.conventions import BACKEND_PORT_NAME, BACKEND_SELECTOR, DEFAULT_BACKEND_PORT
from backend.kube.errors import KubeError, KubeGone, raise_for_status, unreachable
from backend.kube.pods import Pod, named_port, parse_pod, pod_facts

T = TypeVar("T")
Call = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]

# Ceilings on what is read. A list of a thousand pods is about 5 MiB of JSON.
JSON_LIMIT = 128 * 1024 * 1024
WATCH_LINE_LIMIT = 16 * 1024 * 1024
LOG_LINE_LIMIT = 1024 * 1024
# Streams end by the server's timeout or by being closed, never by aiohttp's total timer
# (the client's default would cut a log follow after five minutes).
STREAM_TOTAL = 10 * 24 * 3600.0
_CHUNK = 64 * 1024


async def _direct(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


async def _chunks(resp: aiohttp.ClientResponse, idle: float | None) -> AsyncIterator[bytes]:
    """The body as it arrives; a silence longer than ``idle`` is a dead connection."""
    while True:
        if idle is None:
            chunk = await resp.content.readany()
        else:
            async with asyncio.timeout(idle):
                chunk = await resp.content.readany()
        if not chunk:
            return
        yield chunk


@dataclass
class Stream:
    """An open streaming answer (a watch, a log follow). :meth:`lines` reads it; a
    connection that breaks mid-way ends the iteration and leaves the cause in ``broken``
    (routine for a watch: it is resumed), while a line over the limit raises."""

    response: aiohttp.ClientResponse
    what: str
    server: str
    idle: float | None
    max_line: int
    split_long: bool = False
    broken: KubeError | None = None

    async def lines(self) -> AsyncIterator[str]:
        try:
            async for line in split_lines(
                _chunks(self.response, self.idle), self.max_line, split_long=self.split_long
            ):
                yield line
        except LineTooLong as exc:
            raise KubeError(self.what, str(exc)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.broken = unreachable(self.what, self.server, exc)
        finally:
            self.response.close()

    def close(self) -> None:
        self.response.close()


# The pod list and watch (what the console's start and the backend's discovery wait for)
# are made with the client's ApiClient alone. The generated API classes are loaded only for
# the other calls: each is a module of megabytes (CoreV1Api alone takes most of a second
# to import), which at start delayed the first list by that much, and inside the
# console's 3 s look at the cluster counted against it.
_API_MODULES = (
    "kubernetes.aio.client.api.core_v1_api",
    "kubernetes.aio.client.api.apps_v1_api",
    "kubernetes.aio.client.api.coordination_v1_api",
)


# They are loaded in a worker thread this long after the first request on a loop, so that
# the first call that needs them (a restart, a log tail) does not wait for them, and the
# loading does not compete with drawing the first list.
LOAD_API_MODULES_AFTER = 2.0


def load_api_modules() -> None:
    """Imports the generated API classes (blocking: call it off the event loop)."""
    for name in _API_MODULES:
        importlib.import_module(name)


def api_modules_loaded() -> bool:
    return all(name in sys.modules for name in _API_MODULES)


class KubeApi:
    """The calls, for one connection (any namespace)."""

    def __init__(
        self,
        connection: KubeConnection,
        *,
        request_timeout: float = 10.0,
        call: Call | None = None,
    ) -> None:
        self.connection = connection
        self.server = connection.server
        self.request_timeout = request_timeout
        self._call: Call = call or _direct
        self._client: aio_client.ApiClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._core: CoreV1Api | None = None
        self._apps: AppsV1Api | None = None
        self._coordination: CoordinationV1Api | None = None
        self._ws_client: Any = None

    # ------------------------------------------------------------------ plumbing
    def _api_client(self) -> aio_client.ApiClient:
        """This loop's client (a connection pool belongs to one event loop)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = aio_client.ApiClient(self.connection.configuration)
            self._loop = loop
            self._core = self._apps = self._coordination = None
            # Per loop: one that ends at once (the console's look before it opens) drops
            # the timer, and the loop that carries on must still load them.
            if not api_modules_loaded():
                loop.call_later(
                    LOAD_API_MODULES_AFTER, lambda: loop.run_in_executor(None, load_api_modules)
                )
        return self._client

    def _apis(self) -> tuple[CoreV1Api, AppsV1Api]:
        client = self._api_client()
        if self._core is None or self._apps is None or self._coordination is None:
            from kubernetes.aio.client.api.apps_v1_api import AppsV1Api
            from kubernetes.aio.client.api.coordination_v1_api import CoordinationV1Api
            from kubernetes.aio.client.api.core_v1_api import CoreV1Api

            self._core = CoreV1Api(client)
            self._apps = AppsV1Api(client)
            self._coordination = CoordinationV1Api(client)
        return self._core, self._apps

    # The query parameters list_namespaced_pod_without_preload_content takes that this
    # layer uses, by the API's own names.
    _POD_LIST_QUERY = {
        "label_selector": "labelSelector",
        "watch": "watch",
        "allow_watch_bookmarks": "allowWatchBookmarks",
        "resource_version": "resourceVersion",
        "timeout_seconds": "timeoutSeconds",
    }

    async def list_namespaced_pod_without_preload_content(
        self, namespace: str, *, _request_timeout: Any = None, **query: str | int | bool
    ) -> aiohttp.ClientResponse:
        """CoreV1Api's method of the same name (and the same permissions: the chart's RBAC
        tests map calls by that name), made with the same serialization, authentication and
        REST client, without loading CoreV1Api."""
        client = self._api_client()
        request = await client.param_serialize(
            method="GET",
            resource_path="/api/v1/namespaces/{namespace}/pods",
            path_params={"namespace": namespace},
            query_params=[(self._POD_LIST_QUERY[k], v) for k, v in query.items()],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        data = await client.call_api(
            *request, _preload_content=False, _request_timeout=_request_timeout
        )
        response: aiohttp.ClientResponse = data.response
        return response

    async def close(self) -> None:
        ws_client, self._ws_client = self._ws_client, None
        if ws_client is not None:
            await ws_client.close()
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()

    async def _open(
        self, what: str, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> aiohttp.ClientResponse:
        """One request through the hook; a 2xx response, or the right :class:`KubeError`."""
        kwargs.setdefault("_request_timeout", self.request_timeout)

        async def attempt() -> aiohttp.ClientResponse:
            try:
                resp = await method(*args, **kwargs)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise unreachable(what, self.server, exc) from None
            if resp.status >= 500:
                await raise_for_status(resp, what)
            return resp

        resp: aiohttp.ClientResponse = await self._call(attempt)
        await raise_for_status(resp, what)
        return resp

    async def _json(
        self, what: str, method: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        resp = await self._open(what, method, *args, **kwargs)
        try:
            body = bytearray()
            while chunk := await resp.content.read(_CHUNK):
                body += chunk
                if len(body) > JSON_LIMIT:
                    raise KubeError(what, f"answer over {JSON_LIMIT // (1024 * 1024)} MiB")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unreachable(what, self.server, exc) from None
        finally:
            resp.release()
        try:
            return json.loads(body)
        except ValueError as exc:
            raise KubeError(what, f"the API sent invalid JSON: {exc}") from None

    async def _stream(
        self,
        what: str,
        method: Callable[..., Awaitable[Any]],
        *args: Any,
        idle: float | None,
        max_line: int,
        split_long: bool = False,
        **kwargs: Any,
    ) -> Stream:
        resp = await self._open(what, method, *args, _request_timeout=STREAM_TOTAL, **kwargs)
        return Stream(resp, what, self.server, idle, max_line, split_long)

    # ------------------------------------------------------------------ pods
    async def list_pods(self, namespace: str, selector: str) -> tuple[list[Pod], str]:
        """The pods and the list's resourceVersion (to watch from)."""
        body = await self._json(
            f"list pods in {namespace}",
            self.list_namespaced_pod_without_preload_content,
            namespace,
            label_selector=selector,
        )
        pods = []
        for item in body.get("items") or []:
            try:
                pods.append(parse_pod(item, namespace))
            except (KeyError, TypeError, ValueError):
                continue
        pods.sort(key=lambda p: p.name)
        return pods, str((body.get("metadata") or {}).get("resourceVersion") or "")

    async def watch_pods(
        self, namespace: str, selector: str, resource_version: str, duration: float
    ) -> Stream:
        """Opens a watch from ``resource_version`` with bookmarks; the server ends it after
        ``duration`` s. A version too old is :class:`KubeGone` (here or as an ERROR event)."""
        return await self._stream(
            f"watch pods in {namespace}",
            self.list_namespaced_pod_without_preload_content,
            namespace,
            label_selector=selector,
            watch=True,
            allow_watch_bookmarks=True,
            resource_version=resource_version,
            timeout_seconds=max(1, int(duration)),
            # Quiet longer than the server's own timeout: the connection is dead.
            idle=duration + 15,
            max_line=WATCH_LINE_LIMIT,
        )

    async def get_pod(self, namespace: str, name: str) -> Pod:
        core, _ = self._apis()
        body = await self._json(
            f"pod {name}", core.read_namespaced_pod_without_preload_content, name, namespace
        )
        return parse_pod(body, namespace)

    async def get_pod_manifest(self, namespace: str, name: str) -> dict[str, Any]:
        """The pod as the API returns it (for a raw view), without ``managedFields``,
        which kubectl also leaves out by default: field ownership is noise in a ticket."""
        core, _ = self._apis()
        body = await self._json(
            f"pod {name}", core.read_namespaced_pod_without_preload_content, name, namespace
        )
        if not isinstance(body, dict):
            raise KubeError(f"pod {name}", "the API sent something other than an object")
        (body.get("metadata") or {}).pop("managedFields", None)
        return body

    async def delete_pod(self, namespace: str, name: str, grace: int | None = None) -> str | None:
        """Deletes the pod with its grace period; returns the deleted pod's uid."""
        core, _ = self._apis()
        body = await self._json(
            f"delete pod {name}",
            core.delete_namespaced_pod_without_preload_content,
            name,
            namespace,
            grace_period_seconds=grace,
        )
        return (body.get("metadata") or {}).get("uid")

    async def pod_log(
        self,
        namespace: str,
        name: str,
        *,
        container: str | None = None,
        tail: int | None = None,
        follow: bool = False,
        previous: bool = False,
        timestamps: bool = False,
        since_seconds: int | None = None,
        limit_bytes: int | None = None,
    ) -> Stream:
        """The container log, like ``kubectl logs``; with ``follow`` it streams until the
        container ends or the stream is closed. Long lines are handed on in pieces."""
        core, _ = self._apis()
        kwargs: dict[str, Any] = {"follow": follow, "previous": previous, "timestamps": timestamps}
        if container:
            kwargs["container"] = container
        if tail is not None:
            kwargs["tail_lines"] = max(0, tail)
        if since_seconds is not None:
            kwargs["since_seconds"] = max(1, int(since_seconds))
        if limit_bytes is not None:
            kwargs["limit_bytes"] = limit_bytes
        what = f"logs of {name}" + (" (previous)" if previous else "")
        return await self._stream(
            what,
            core.read_namespaced_pod_log_without_preload_content,
            name,
            namespace,
            idle=None if follow else self.request_timeout,
            max_line=LOG_LINE_LIMIT,
            split_long=True,
            **kwargs,
        )

    async def backend_endpoint(self, namespace: str) -> tuple[str, int]:
        """(pod, port) of a Ready backend pod in ``namespace``, for a port-forward; raises
        :class:`KubeError` (404) when there is none."""
        core, _ = self._apis()
        what = f"backend pods in {namespace}"
        body = await self._json(
            what,
            core.list_namespaced_pod_without_preload_content,
            namespace,
            label_selector=BACKEND_SELECTOR,
        )
        for item in sorted(body.get("items") or [], key=lambda i: i["metadata"]["name"]):
            if pod_facts(item).ready:
                port = named_port(item, BACKEND_PORT_NAME) or DEFAULT_BACKEND_PORT
                return str(item["metadata"]["name"]), port
        raise KubeError(
            what,
            f"no Ready pod labelled {BACKEND_SELECTOR} (is the chart installed in "
            f"{namespace}? give --backend URL otherwise)",
            status=404,
        )

    async def open_port_forward(self, namespace: str, name: str, port: int) -> Any:
        """A websocket to ``port`` of pod ``name`` (``pods/portforward``; see
        :mod:`backend.kube.portforward` for the protocol). The caller closes it."""
        from kubernetes.aio.client.api.core_v1_api import CoreV1Api
        from kubernetes.aio.stream.ws_client import WsApiClient

        if self._ws_client is None:
            # One websocket client (one connection pool) for every forward; close() ends it.
            self._ws_client = WsApiClient(self.connection.configuration)
        ws_api = CoreV1Api(self._ws_client)
        try:
            resp = await ws_api.connect_get_namespaced_pod_portforward_without_preload_content(
                name, namespace, ports=str(port)
            )
            # The generated method hands back aiohttp's ws_connect(...) (awaiting it
            # makes the websocket), unwrapped from the client's response object.
            return await getattr(resp, "response", resp)
        except aiohttp.WSServerHandshakeError as exc:
            raise KubeError(
                f"port-forward to pod {name}", f"{exc.status} {exc.message}", status=exc.status
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unreachable(f"port-forward to pod {name}", self.server, exc) from None

    async def list_events(self, namespace: str, limit: int = 500) -> list[dict[str, Any]]:
        """The namespace's events (raw, unordered; at most ``limit``: the API returns them
        oldest first by name, so a busy namespace is better asked again than paged)."""
        core, _ = self._apis()
        body = await self._json(
            f"events in {namespace}",
            core.list_namespaced_event_without_preload_content,
            namespace,
            limit=limit,
        )
        return list(body.get("items") or [])

    async def events_about(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """Events whose involved object is ``kind``/``name`` (raw, unordered)."""
        core, _ = self._apis()
        body = await self._json(
            f"events of {name}",
            core.list_namespaced_event_without_preload_content,
            namespace,
            field_selector=f"involvedObject.name={name},involvedObject.kind={kind}",
        )
        return list(body.get("items") or [])

    # ------------------------------------------------------------------ statefulsets
    async def get_statefulset(self, namespace: str, name: str) -> dict[str, Any]:
        _, apps = self._apis()
        body: dict[str, Any] = await self._json(
            f"statefulset {name}",
            apps.read_namespaced_stateful_set_without_preload_content,
            name,
            namespace,
        )
        return body

    async def patch_statefulset(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """A strategic merge patch (what ``kubectl rollout restart`` sends)."""
        _, apps = self._apis()
        await self._json(
            f"patch statefulset {name}",
            apps.patch_namespaced_stateful_set_without_preload_content,
            name,
            namespace,
            patch,
            _content_type="application/strategic-merge-patch+json",
        )

    # ------------------------------------------------------------------ leases
    def _leases(self) -> CoordinationV1Api:
        self._apis()
        assert self._coordination is not None
        return self._coordination

    async def read_lease(self, namespace: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = await self._json(
            f"lease {name}",
            self._leases().read_namespaced_lease_without_preload_content,
            name,
            namespace,
        )
        return body

    async def create_lease(self, namespace: str, lease: dict[str, Any]) -> dict[str, Any]:
        name = (lease.get("metadata") or {}).get("name", "")
        body: dict[str, Any] = await self._json(
            f"create lease {name}",
            self._leases().create_namespaced_lease_without_preload_content,
            namespace,
            lease,
        )
        return body

    async def replace_lease(
        self, namespace: str, name: str, lease: dict[str, Any]
    ) -> dict[str, Any]:
        """Replaces the lease; its ``metadata.resourceVersion`` makes this a compare-and-swap
        (a 409 when someone else wrote it first)."""
        body: dict[str, Any] = await self._json(
            f"update lease {name}",
            self._leases().replace_namespaced_lease_without_preload_content,
            name,
            namespace,
            lease,
        )
        return body


__all__ = ["JSON_LIMIT", "Call", "KubeApi", "KubeGone", "Stream"]

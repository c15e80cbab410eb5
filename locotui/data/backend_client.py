"""Async HTTP client for ``loco-backend`` (httpx), including the ``/api/events`` stream.

All parsing goes through the backend's own wire models (:mod:`backend.models`). Failures
become :mod:`locotui.data.errors` exceptions whose ``str()`` is one line for an operator:

==========================  ===================================================
what happened               exception
==========================  ===================================================
connect refused / timeout   :class:`Unreachable`
401                         :class:`Unauthorized`
403                         :class:`Forbidden` (wrong token, control disabled)
404                         :class:`NotFound` (``remediation()``: the policy is off)
429                         :class:`RateLimited` (``retry_after`` from header)
5xx / other                 :class:`ServerError`
body not what we expect     :class:`BadResponse`
==========================  ===================================================

:meth:`BackendClient.events` is the SSE consumer: it yields every parsed
:data:`backend.models.FleetEvent` (a snapshot first, after every (re)connect), or with
``summary=True`` the summary stream's events (``?view=summary``: what a fleet overview
shows, a tenth of the bytes; a backend without it sends the full events, which are taken
as they come), interleaved
with :class:`LinkChange` items describing the connection (connecting, connected,
reconnecting with the delay before the next attempt and the error). It reconnects forever
with exponential backoff and full jitter, and treats a stream that stays silent longer
than ``idle_timeout`` (the backend sends keep-alives) as dead.

Nothing read from the backend is unbounded (:mod:`backend.bounded_http`): each answer has
a size ceiling and one deadline for the whole exchange, and no line of a stream may grow
past its limit; an answer over a ceiling is a :class:`BadResponse` that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from backend.bounded_http import AnswerTooLarge, MiB, fetch, lines, sse_events
from backend.models import (
    FLEET_EVENT_ADAPTER,
    SUMMARY_EVENT_ADAPTER,
    ActionResult,
    BackendHealth,
    DiscoveryEvent,
    ErrorBody,
    Instance,
    InstanceEvent,
    InstanceList,
    RemediationEvent,
    RemediationStatus,
    RemovedEvent,
    SnapshotEvent,
    SummaryEvent,
    SummarySnapshotEvent,
    TimelineEntry,
)
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
from locotui.data.remediation import OFF

__all__ = [
    "BackendClient",
    "Backoff",
    "FleetEventT",
    "LinkChange",
    "LinkState",
    "ListResult",
    "MalformedEvent",
]

FleetEventT = (
    SnapshotEvent
    | InstanceEvent
    | SummarySnapshotEvent
    | SummaryEvent
    | RemovedEvent
    | DiscoveryEvent
    | RemediationEvent
)

# Ceilings of what is read from the backend. The largest legitimate answers: the full list
# and the snapshot event of a thousand instances (about 1 MiB each), 10,000 log lines.
JSON_LIMIT = 32 * MiB
SSE_LINE_LIMIT = 32 * MiB
PNG_LIMIT = 8 * MiB
LOG_LIMIT = 16 * MiB
LOG_LINE_LIMIT = 1 * MiB


_TIMELINE: TypeAdapter[list[TimelineEntry]] = TypeAdapter(list[TimelineEntry])


@dataclass(frozen=True, slots=True)
class MalformedEvent:
    """An SSE event whose data does not parse; the stream goes on (yielded, not raised)."""

    event: str | None
    data: str
    error: str
    name: str | None = None
    """The instance it was about, when that much could be read."""


@dataclass(frozen=True, slots=True)
class ListResult:
    fleet: InstanceList
    changed: bool
    """False when the backend answered 304 Not Modified (``fleet`` is the cached one)."""
    etag: str | None


def _error_message(resp: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from an ErrorBody, else the start of the body."""
    try:
        body = ErrorBody.model_validate_json(resp.content)
        return body.error, body.message
    except ValidationError:
        text = resp.text.strip().replace("\n", " ")[:200]
        return None, text or resp.reason_phrase


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _root_os_error(exc: BaseException) -> OSError | None:
    """The innermost OSError in the chain (anyio wraps the real one in a generic one)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    found: OSError | None = None
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError):
            found = cur
        cur = cur.__cause__ or cur.__context__
    return found


def describe_transport_error(exc: BaseException, url: str) -> str:
    """One line for a connection-level failure."""
    if isinstance(exc, AnswerTooLarge):
        return f"backend {url}: {exc}"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"backend {url} unreachable: connect timed out"
    if isinstance(exc, httpx.TimeoutException):
        return f"backend {url} did not answer in time"
    root = _root_os_error(exc)
    if isinstance(root, ConnectionRefusedError) or "refused" in str(exc).lower():
        return f"backend {url} unreachable: connection refused (is loco-backend running?)"
    if isinstance(exc, httpx.ConnectError):
        cause = (root.strerror if root is not None else None) or str(exc) or type(exc).__name__
        return f"backend {url} unreachable: {cause}"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return f"backend {url} closed the connection"
    return f"backend {url} unreachable: {type(exc).__name__}: {exc}"


class BackendClient:
    """One backend. Use as ``async with BackendClient(url, token=...) as c: ...``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        # Each network operation has ``timeout``; a whole answer gets a few of them.
        self._deadline = 3 * timeout
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            headers={"User-Agent": "locotui"},
            # The backend is addressed directly; a proxy from the environment would only
            # break loopback and cluster-internal URLs.
            trust_env=False,
        )
        self._etag: str | None = None
        self._cached: InstanceList | None = None

    async def __aenter__(self) -> BackendClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    # ------------------------------------------------------------------ plumbing
    def _raise_for(self, resp: httpx.Response, what: str) -> None:
        if resp.is_success or resp.status_code == 304:
            return
        code, message = _error_message(resp)
        status = resp.status_code
        if status == 401:
            hint = "" if self._token else " (set LOCOTUI_CONTROL_TOKEN or control_token_file)"
            raise Unauthorized(f"{what}: backend refused: {message}{hint}", status=status)
        if status == 403:
            if code == "forbidden" and self._token:
                message = "the control token is wrong (check LOCOTUI_CONTROL_TOKEN)"
            raise Forbidden(f"{what}: {message}", status=status)
        if status == 404:
            raise NotFound(f"{what}: {message}", status=status)
        if status == 429:
            after = _retry_after(resp)
            raise RateLimited(f"{what}: {message}", retry_after=after)
        raise ServerError(f"{what}: backend answered HTTP {status}: {message}", status=status)

    async def _request(
        self,
        method: str,
        path: str,
        what: str,
        *,
        auth: bool = False,
        limit: int = JSON_LIMIT,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            resp = await fetch(
                self._http,
                method,
                path,
                limit=limit,
                deadline=self._deadline,
                headers=headers,
                **kwargs,
            )
        except AnswerTooLarge as exc:
            raise BadResponse(f"{what}: {exc}") from None
        except httpx.TransportError as exc:
            raise Unreachable(describe_transport_error(exc, self.base_url)) from None
        self._raise_for(resp, what)
        return resp

    @staticmethod
    def _path(name: str, suffix: str = "") -> str:
        return f"/api/instances/{quote(name, safe='')}{suffix}"

    # ------------------------------------------------------------------ reads
    async def health(self) -> BackendHealth:
        resp = await self._request("GET", "/health", "backend health")
        return _parse(BackendHealth, resp, "backend health")

    async def list_instances(self) -> ListResult:
        """``GET /api/instances`` with ``If-None-Match``: a 304 returns the cached list."""
        headers = {"If-None-Match": self._etag} if self._etag and self._cached else {}
        resp = await self._request("GET", "/api/instances", "list instances", headers=headers)
        etag = resp.headers.get("ETag")
        if resp.status_code == 304 and self._cached is not None:
            return ListResult(self._cached, changed=False, etag=self._etag)
        fleet = _parse(InstanceList, resp, "list instances")
        self._etag, self._cached = etag, fleet
        return ListResult(fleet, changed=True, etag=etag)

    async def get_instance(self, name: str) -> Instance:
        resp = await self._request("GET", self._path(name), f"instance {name}")
        return _parse(Instance, resp, f"instance {name}")

    async def thumbnail(self, name: str, width: int = 160) -> bytes:
        """PNG bytes of the instance's latest frame, ``width`` pixels wide (16-1920)."""
        resp = await self._request(
            "GET",
            self._path(name, "/thumbnail.png"),
            f"thumbnail of {name}",
            params={"width": max(16, min(1920, int(width)))},
            limit=PNG_LIMIT,
        )
        if not resp.content.startswith(b"\x89PNG"):
            raise BadResponse(f"thumbnail of {name}: backend did not send a PNG")
        return resp.content

    async def logs(self, name: str, tail: int = 200) -> list[str]:
        """The last ``tail`` lines of the instance's log (local/static: its log file;
        kubernetes: the pod log via the backend)."""
        resp = await self._request(
            "GET",
            self._path(name, "/logs"),
            f"logs of {name}",
            params={"tail": max(0, min(10_000, tail))},
            limit=LOG_LIMIT,
        )
        return resp.text.splitlines()

    async def timeline(self, name: str) -> list[TimelineEntry]:
        """The instance's incident timeline, oldest first: status changes, the automatic
        recovery's decisions and people's actions."""
        resp = await self._request("GET", self._path(name, "/timeline"), f"timeline of {name}")
        return _parse(_TIMELINE, resp, f"timeline of {name}")

    async def remediation(self) -> RemediationStatus:
        """The automatic recovery's state. A backend older than the feature (404) has none,
        which reads the same as one that has it off: :data:`~locotui.data.remediation.OFF`."""
        try:
            resp = await self._request("GET", "/api/remediation", "automatic recovery")
        except NotFound:
            return OFF
        return _parse(RemediationStatus, resp, "automatic recovery")

    async def follow_logs(self, name: str, tail: int = 200) -> AsyncIterator[str]:
        """The last ``tail`` lines then every new one, until cancelled (local/static only;
        the backend refuses to follow Kubernetes pods: use the kube client)."""
        params = {"tail": max(0, min(10_000, tail)), "follow": "true"}
        what = f"logs of {name}"
        try:
            async with self._http.stream(
                "GET",
                self._path(name, "/logs"),
                params=params,
                timeout=httpx.Timeout(self._timeout, read=None),
            ) as resp:
                if not resp.is_success:
                    await resp.aread()
                    self._raise_for(resp, what)
                async for sse in sse_events(lines(resp, LOG_LINE_LIMIT), LOG_LINE_LIMIT):
                    if sse.data is not None:
                        yield sse.data
        except AnswerTooLarge as exc:
            raise BadResponse(f"{what}: {exc}") from None
        except httpx.TransportError as exc:
            raise Unreachable(describe_transport_error(exc, self.base_url)) from None

    # ------------------------------------------------------------------ mutations
    async def reset(self, name: str) -> ActionResult:
        """Soft reset (QMP ``system_reset`` through the supervisor). Needs the token."""
        resp = await self._request("POST", self._path(name, "/reset"), f"reset {name}", auth=True)
        return _parse(ActionResult, resp, f"reset {name}")

    async def restart(self, name: str) -> ActionResult:
        """Restart: the backend deletes the pod (kubernetes) or restarts QEMU (static/local)."""
        resp = await self._request(
            "POST", self._path(name, "/restart"), f"restart {name}", auth=True
        )
        return _parse(ActionResult, resp, f"restart {name}")

    async def forget(self, name: str) -> ActionResult:
        """Drop a lost local instance (its supervisor died) from the list. Needs the token."""
        resp = await self._request("DELETE", self._path(name), f"forget {name}", auth=True)
        return _parse(ActionResult, resp, f"forget {name}")

    async def pause_remediation(
        self, minutes: float | None = None, reason: str | None = None
    ) -> RemediationStatus:
        """Pauses the automatic recovery (for ``minutes``, else until resumed). Needs the
        token; answers the new state."""
        body = {k: v for k, v in (("minutes", minutes), ("reason", reason)) if v is not None}
        return await self._policy("pause", json=body)

    async def resume_remediation(self) -> RemediationStatus:
        """Resumes the automatic recovery. Needs the token; answers the new state."""
        return await self._policy("resume")

    async def _policy(self, verb: str, **kwargs: Any) -> RemediationStatus:
        what = f"{verb} automatic recovery"
        try:
            resp = await self._request(
                "POST", f"/api/remediation/{verb}", what, auth=True, **kwargs
            )
        except NotFound:
            raise NotFound(
                f"{what}: this backend has no automatic recovery (it is older than the console)",
                status=404,
            ) from None
        except ServerError as exc:
            if exc.status != 503:
                raise
            raise ServerError(f"{exc}; try again in a moment", status=503) from None
        return _parse(RemediationStatus, resp, what)

    # ------------------------------------------------------------------ events
    async def events(
        self,
        *,
        backoff: Backoff | None = None,
        idle_timeout: float = 45.0,
        reconnect: bool = True,
        summary: bool = False,
    ) -> AsyncIterator[FleetEventT | LinkChange | MalformedEvent]:
        """Consumes ``/api/events`` forever (see the module docstring).

        ``idle_timeout`` must exceed the backend's ``--sse-keepalive`` (15 s by default).
        With ``reconnect=False`` the first failure is raised instead (for one-shot tools).
        """
        backoff = backoff or Backoff()
        attempt = 0
        while True:
            # CONNECTING keeps the previous error visible in the model until CONNECTED.
            yield LinkChange(LinkState.CONNECTING, attempt=attempt, at=time.time())
            error: str
            try:
                async with self._http.stream(
                    "GET",
                    "/api/events",
                    params={"view": "summary"} if summary else None,
                    headers={"Accept": "text/event-stream"},
                    timeout=httpx.Timeout(self._timeout, read=idle_timeout),
                ) as resp:
                    if not resp.is_success:
                        await resp.aread()
                        self._raise_for(resp, "event stream")
                    ctype = resp.headers.get("content-type", "")
                    if not ctype.startswith("text/event-stream"):
                        raise BadResponse(f"event stream: backend sent {ctype or 'no type'}")
                    connected = False
                    async for sse in sse_events(lines(resp, SSE_LINE_LIMIT), SSE_LINE_LIMIT):
                        if sse.data is None:
                            continue
                        parsed = _parse_event(sse.event, sse.data)
                        if not connected and isinstance(
                            parsed, SnapshotEvent | SummarySnapshotEvent
                        ):
                            # Only a snapshot proves the stream works end to end.
                            connected = True
                            attempt = 0
                            backoff.reset()
                            yield LinkChange(LinkState.CONNECTED, at=time.time())
                        yield parsed
                    error = "backend closed the event stream"
            except httpx.ReadTimeout:
                error = f"event stream silent for {idle_timeout:g}s (no keep-alive)"
            except httpx.TransportError as exc:
                error = describe_transport_error(exc, self.base_url)
            except (Unauthorized, Forbidden) as exc:
                if not reconnect:
                    raise
                yield LinkChange(LinkState.FAILED, error=str(exc), at=time.time())
                return
            except DataError as exc:
                error = str(exc)
            if not reconnect:
                raise Unreachable(error)
            attempt += 1
            delay = backoff.next_delay()
            yield LinkChange(
                LinkState.RECONNECTING,
                error=error,
                retry_in=delay,
                attempt=attempt,
                at=time.time(),
            )
            await asyncio.sleep(delay)


def _parse(model: Any, resp: httpx.Response, what: str) -> Any:
    """``resp``'s body as ``model`` (a pydantic model or a TypeAdapter)."""
    validate = getattr(model, "model_validate_json", None) or model.validate_json
    try:
        return validate(resp.content)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise BadResponse(
            f"{what}: unexpected answer from the backend ({loc or 'body'}: {first['msg']})"
        ) from None


def _parse_event(event: str | None, data: str) -> FleetEventT | MalformedEvent:
    adapter = (
        SUMMARY_EVENT_ADAPTER if event in ("summary_snapshot", "summary") else FLEET_EVENT_ADAPTER
    )
    try:
        return adapter.validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        name = None
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            raw = json.loads(data)
            name = raw.get("name") or (raw.get("instance") or {}).get("name")
        return MalformedEvent(
            event, data[:500], f"{loc or 'data'}: {first['msg']}", str(name) if name else None
        )

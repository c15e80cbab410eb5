"""The FastAPI application: one process, one runtime, the routes of DESIGN.md.

Routes read the fleet's pre-serialized bytes (see ``backend/fleet.py``) and return them as
they are; response models are declared for the OpenAPI document only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from backend import actions
from backend.api.auth import authorize
from backend.api.errors import ApiError, install_error_handlers
from backend.api.middleware import RequestContextMiddleware
from backend.api.ratelimit import ActionRateLimiter
from backend.api.remediation import add_remediation_routes
from backend.api.sse import fleet_events, line_events
from backend.api.watch import add_watch_routes
from backend.breaker import BreakerOpenError
from backend.discovery.base import Target
from backend.logs import follow_lines, tail_lines
from backend.models import (
    ActionResult,
    BackendHealth,
    ErrorBody,
    Instance,
    InstanceList,
    InstanceSource,
    InstanceSummaryList,
    ReadinessCheck,
    ReadinessReport,
    TimelineEntry,
)
from backend.prober import describe_error
from backend.remediation.control import Remediation
from backend.runtime import BackendRuntime
from backend.thumbnails import ThumbnailProxy
from backend.version import VERSION
from emulator.bodylimit import BodyLimit
from emulator.jsonlog import log

audit_logger = logging.getLogger("backend.audit")

_JSON = "application/json"
POD_LOG_LIMIT = 16 * 1024 * 1024
_ERR = {"model": ErrorBody}
_SSE_DOC = {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
NAME = Annotated[
    str,
    PathParam(
        description="Instance name",
        max_length=253,
        openapi_examples={"pod": {"summary": "a StatefulSet pod", "value": "loco-0"}},
    ),
]


def _rss_bytes() -> int | None:
    # /proc is cheap and needs no dependency; None where it does not exist.
    try:
        with open("/proc/self/statm", "rb") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    for part in header.split(","):
        candidate = part.strip()
        candidate = candidate.removeprefix("W/")
        if candidate == etag:
            return True
    return False


def create_app(runtime: BackendRuntime) -> FastAPI:
    settings = runtime.settings
    fleet = runtime.fleet
    metrics = runtime.metrics
    limiter = ActionRateLimiter(settings.action_interval)
    thumbnails = ThumbnailProxy(
        runtime.http,
        runtime.breakers,
        ttl=settings.thumbnail_ttl,
        deadline=max(settings.probe_timeout, 5.0),
    )

    remediation = Remediation(runtime) if settings.remediation else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if remediation is not None:
            remediation.start()
        try:
            yield
        finally:
            if remediation is not None:
                await remediation.stop()
            await runtime.stop()

    app = FastAPI(
        title="loco-backend",
        version=VERSION,
        description=(
            "Discovers Lego Loco emulators, aggregates their health behind per-target "
            "circuit breakers, and serves the fleet as JSON, server-sent events and "
            "Prometheus metrics. Mutations need 'Authorization: Bearer <control token>'."
        ),
        lifespan=lifespan,
        # Metrics are Prometheus (ours); FastAPI's OpenTelemetry hooks would only cost a
        # provider lookup on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    app.state.remediation = remediation
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestContextMiddleware, metrics=metrics, access_log=settings.access_log)

    def target_or_404(name: str) -> Target:
        target = fleet.target(name)
        if target is None:
            raise ApiError(404, "not_found", f"no instance named {name!r}")
        return target

    # ------------------------------------------------------------------ fleet
    @app.get(
        "/api/instances",
        response_class=Response,
        responses={
            200: {
                "model": InstanceList | InstanceSummaryList,
                "description": "InstanceList, or with view=summary InstanceSummaryList",
            },
            304: {"description": "Not modified"},
            422: _ERR,
        },
        summary="All instances, in full or (view=summary) as a fleet overview; ETag / "
        "If-None-Match supported",
        # The header is read from the request directly (declaring it as a parameter costs
        # ~10 % of throughput on the hottest route); documented here instead.
        openapi_extra={
            "parameters": [
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "An ETag from an earlier answer: 304 if unchanged",
                }
            ]
        },
    )
    async def list_instances(
        request: Request,
        view: Annotated[
            Literal["full", "summary"],
            Query(
                description="full: every instance with its health body (the default); "
                "summary: what a fleet overview shows, a tenth of the size"
            ),
        ] = "full",
    ) -> Response:
        body, etag = fleet.summary_body() if view == "summary" else fleet.list_body()
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=_JSON, headers=headers)

    @app.get(
        "/api/instances/{name}",
        response_class=Response,
        responses={200: {"model": Instance}, 404: _ERR, 422: _ERR},
        summary="One instance",
    )
    async def get_instance(name: NAME) -> Response:
        data = fleet.instance_json(name)
        if data is None:
            raise ApiError(404, "not_found", f"no instance named {name!r}")
        return Response(data, media_type=_JSON, headers={"Cache-Control": "no-cache"})

    @app.get(
        "/api/instances/{name}/thumbnail.png",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {}}, "description": "The latest frame, scaled"},
            404: _ERR,
            409: _ERR,
            422: _ERR,
            502: _ERR,
            503: _ERR,
        },
        summary="The emulator's latest frame (proxied, cached briefly)",
    )
    async def thumbnail(
        name: NAME,
        width: Annotated[int, Query(ge=16, le=1920, description="Width in pixels")] = 160,
    ) -> Response:
        target = target_or_404(name)
        if not target.health_url:
            raise ApiError(409, "no_address", f"{name} has no supervisor address yet")
        try:
            up = await thumbnails.get(name, target.health_url, width)
        except BreakerOpenError as exc:
            raise ApiError(
                503,
                "unreachable",
                f"{name}'s supervisor is unreachable (circuit open)",
                headers={"Retry-After": str(max(1, round(exc.retry_after_seconds)))},
            ) from None
        except Exception as exc:
            raise ApiError(
                502, "upstream_error", f"{name}'s supervisor: {describe_error(exc)}"
            ) from None
        if up.status == 200:
            return Response(
                up.content,
                media_type="image/png",
                headers={"Cache-Control": f"max-age={max(0, int(settings.thumbnail_ttl))}"},
            )
        reason = up.content[:200].decode("utf-8", errors="replace")
        status = 503 if up.status == 503 else 502
        raise ApiError(
            status,
            "upstream_unavailable" if status == 503 else "upstream_error",
            f"{name}'s supervisor answered HTTP {up.status} for the thumbnail",
            detail=reason,
        )

    @app.get(
        "/api/events",
        response_class=StreamingResponse,
        responses={200: _SSE_DOC},
        summary="Server-sent events: a snapshot, then every change in order",
    )
    async def events(
        view: Annotated[
            Literal["full", "summary"],
            Query(
                description="full: instances with their health bodies; summary: "
                "summary_snapshot and summary events, what a fleet overview shows"
            ),
        ] = "full",
    ) -> StreamingResponse:
        return StreamingResponse(
            fleet_events(fleet, settings.sse_keepalive, metrics, summary=view == "summary"),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/api/instances/{name}/logs",
        response_class=PlainTextResponse,
        responses={
            200: {
                "content": {"text/plain": {}, "text/event-stream": {}},
                "description": "The last lines (text/plain), or with follow=true an SSE "
                "stream of lines",
            },
            400: _ERR,
            404: _ERR,
            422: _ERR,
            502: _ERR,
            503: _ERR,
        },
        summary="An instance's log: the last lines, optionally followed",
    )
    async def logs(
        name: NAME,
        tail: Annotated[int, Query(ge=0, le=10000, description="Lines from the end")] = 200,
        follow: Annotated[bool, Query(description="Keep streaming new lines (SSE)")] = False,
    ) -> Response:
        target = target_or_404(name)
        if target.log_file:
            path = Path(target.log_file)
            try:
                lines, end = await asyncio.to_thread(tail_lines, path, tail)
            except FileNotFoundError:
                raise ApiError(
                    404, "log_not_found", f"log file of {name} does not exist", detail=str(path)
                ) from None
            except OSError as exc:
                raise ApiError(
                    503,
                    "log_unreadable",
                    f"cannot read the log of {name}: {exc.strerror or exc}",
                    detail=str(path),
                ) from None
            if not follow:
                text = "\n".join(lines) + ("\n" if lines else "")
                return PlainTextResponse(text)

            async def all_lines() -> AsyncIterator[str]:
                for line in lines:
                    yield line
                async for line in follow_lines(path, end):
                    yield line

            return StreamingResponse(
                line_events(all_lines(), settings.sse_keepalive),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        if target.source is InstanceSource.KUBERNETES and runtime.kube is not None:
            if follow:
                raise ApiError(
                    400,
                    "unsupported",
                    "follow is not served for Kubernetes pods: stream the pod log from the "
                    "Kubernetes API (kubectl logs -f)",
                )
            from backend.kube.errors import KubeError

            try:
                stream = await runtime.kube.pod_log(
                    target.namespace or "default",
                    name,
                    tail=max(tail, 1),
                    # The API server stops there, so a pod with huge lines cannot make the
                    # backend hold more than this.
                    limit_bytes=POD_LOG_LIMIT,
                )
                lines = [line async for line in stream.lines()]
            except BreakerOpenError:
                raise ApiError(503, "unreachable", "the Kubernetes API is unreachable") from None
            except KubeError as exc:
                raise ApiError(502, "upstream_error", str(exc)) from None
            text = "".join(f"{line}\n" for line in lines) if tail else ""
            return PlainTextResponse(text)
        raise ApiError(404, "no_log", f"{name} has no registered log file")

    # ------------------------------------------------------------------ mutations
    async def mutate(
        request: Request, name: str, action: str, authorization: str | None
    ) -> JSONResponse:
        client = request.client.host if request.client else None
        status_code = 200
        result = "ok"
        try:
            authorize(settings.control_token, authorization)
            target = target_or_404(name)
            # The limit protects supervisors and the API server from action floods; forgetting
            # a lost instance touches neither.
            wait = limiter.acquire(name) if action != "forget" else None
            if wait is not None:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"one reset/restart per {settings.action_interval:g}s per instance; "
                    f"try again in {wait:.1f}s",
                    headers={"Retry-After": limiter.retry_after_header(wait)},
                )
            fn = {"reset": actions.reset, "restart": actions.restart, "forget": actions.forget}
            outcome: ActionResult = await fn[action](runtime, target)
            fleet.note_action(name, f"{action}: {outcome.message}", client)
            return JSONResponse(outcome.model_dump(mode="json"))
        except ApiError as exc:
            status_code = exc.status
            result = exc.error
            raise
        except BaseException:
            status_code, result = 500, "internal_error"
            raise
        finally:
            metrics.actions.labels(action, result).inc()
            # One audit line per attempt: what, which, result, who. Never the token.
            log(
                audit_logger,
                logging.INFO if result == "ok" else logging.WARNING,
                "audit",
                action=action,
                instance=name,
                result=result,
                status_code=status_code,
                client=client,
            )

    action_responses: dict[int | str, dict[str, Any]] = {
        401: _ERR,
        403: _ERR,
        404: _ERR,
        409: _ERR,
        422: _ERR,
        429: _ERR,
        500: _ERR,
        502: _ERR,
        503: _ERR,
    }

    @app.post(
        "/api/instances/{name}/reset",
        response_model=ActionResult,
        responses=action_responses,
        summary="Soft reset of the emulator (QMP system_reset via the supervisor)",
    )
    async def reset_instance(
        request: Request,
        name: NAME,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        return await mutate(request, name, "reset", authorization)

    @app.post(
        "/api/instances/{name}/restart",
        response_model=ActionResult,
        responses=action_responses,
        summary="Restart: delete the pod (Kubernetes) or restart QEMU (static/local)",
    )
    async def restart_instance(
        request: Request,
        name: NAME,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        return await mutate(request, name, "restart", authorization)

    @app.delete(
        "/api/instances/{name}",
        response_model=ActionResult,
        responses=action_responses,
        summary="Forget a lost local instance (its supervisor died without unregistering)",
    )
    async def forget_instance(
        request: Request,
        name: NAME,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        return await mutate(request, name, "forget", authorization)

    @app.get(
        "/api/instances/{name}/timeline",
        response_model=list[TimelineEntry],
        responses={404: _ERR, 422: _ERR},
        summary="The instance's incident timeline: status changes, the automatic recovery's "
        "decisions and people's actions, oldest first",
    )
    async def timeline(name: NAME) -> list[TimelineEntry]:
        entries = fleet.timeline(name)
        if entries is None:
            raise ApiError(404, "not_found", f"no instance named {name!r}")
        return entries

    add_remediation_routes(app, remediation, settings.control_token)
    add_watch_routes(app, runtime, target_or_404)

    # ------------------------------------------------------------------ operations
    @app.get("/health", response_model=BackendHealth, summary="Liveness with details")
    async def health() -> BackendHealth:
        return BackendHealth(
            version=VERSION,
            uptime_seconds=round(runtime.uptime(), 3),
            rss_bytes=_rss_bytes(),
            discovery=fleet.source,
            discovery_ok=fleet.discovery.ok,
            instances=len(fleet),
            python=platform.python_version(),
        )

    @app.get(
        "/ready",
        response_model=ReadinessReport,
        responses={503: {"model": ReadinessReport}},
        summary="200 once discovery has synced at least once, else 503",
    )
    async def ready() -> JSONResponse:
        d = fleet.discovery
        synced = ReadinessCheck(
            ok=d.synced,
            detail=(
                f"{d.source.value} discovery synced at {d.last_sync.isoformat()}"
                if d.synced and d.last_sync
                else f"{d.source.value} discovery has not synced yet"
                + (f": {d.error}" if d.error else "")
            ),
        )
        report = ReadinessReport(ready=synced.ok, checks={"discovery_synced": synced})
        return JSONResponse(
            report.model_dump(mode="json"), status_code=200 if report.ready else 503
        )

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        summary="Prometheus metrics",
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app

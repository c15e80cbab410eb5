"""The supervisor's HTTP endpoints (contract in DESIGN.md)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from emulator.auth import bearer_token, token_matches
from emulator.bodylimit import BodyLimit
from emulator.health import readiness
from emulator.instance import EmulatorInstance
from emulator.jsonlog import log
from emulator.metrics import create_registry
from emulator.models import EmulatorStatus, Readiness, ResetResult, ViewerAnswer, ViewerOffer
from emulator.qmp import QmpCommandError, QmpUnavailable
from emulator.status_stream import HEARTBEAT, MAX_SUBSCRIBERS, StatusStream
from emulator.stream.errors import ViewerError
from emulator.stream.owner import StreamOwner
from emulator.thumbnail import MAX_WIDTH, MIN_WIDTH, ThumbnailCache

logger = logging.getLogger("emulator.http")
audit = logging.getLogger("emulator.audit")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(
    instance: EmulatorInstance,
    control_token: str | None,
    *,
    status_heartbeat: float = HEARTBEAT,
    stream_subscribers: int = MAX_SUBSCRIBERS,
) -> FastAPI:
    app = FastAPI(
        title="loco-emulator",
        description="Health, metrics, thumbnails and control of one QEMU emulator.",
        version="1",
    )
    app.add_middleware(BodyLimit)
    registry = create_registry(instance)
    thumbnails = ThumbnailCache()

    def _authorize(request: Request, action: str) -> JSONResponse | None:
        if control_token is None:
            return None
        presented = bearer_token(request.headers.get("authorization"))
        if presented is None:
            log(
                audit,
                logging.WARNING,
                f"{action} refused",
                result="401",
                client=request.client and request.client.host,
            )
            return JSONResponse(
                {"error": "this action needs Authorization: Bearer <control token>"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not token_matches(presented, control_token):
            log(
                audit,
                logging.WARNING,
                f"{action} refused",
                result="403",
                client=request.client and request.client.host,
            )
            return _error(403, "the control token is wrong")
        return None

    @app.get("/health", response_model=EmulatorStatus, responses={503: {"model": EmulatorStatus}})
    async def health() -> JSONResponse:
        """Liveness with the full status; 503 only when restarts have given up."""
        st = instance.status()
        code = 503 if st.qemu.crash_loop else 200
        return JSONResponse(st.model_dump(mode="json"), status_code=code)

    @app.get(
        "/status/stream",
        response_class=StatusStream,
        responses={
            200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
            503: {"description": "Too many status streams open"},
        },
    )
    async def status_stream() -> StatusStream:
        """Server-sent events: the full status (``event: status``, ``id``: its revision),
        then a new one whenever anything but a clock field changes; a ``: keep-alive``
        comment every ``X-Heartbeat-Interval`` seconds of quiet."""
        return StatusStream(
            instance.feed, heartbeat=status_heartbeat, max_subscribers=stream_subscribers
        )

    @app.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
    async def ready() -> JSONResponse:
        """200 when QEMU runs (QMP), VNC frames arrive and the display is active."""
        r = readiness(instance.status())
        return JSONResponse(r.model_dump(mode="json"), status_code=200 if r.ready else 503)

    @app.get("/startup", response_model=Readiness, responses={503: {"model": Readiness}})
    async def startup() -> JSONResponse:
        """200 once QEMU has booted the first time."""
        booted = instance.supervisor.booted
        body = Readiness(ready=booted, reason=None if booted else "QEMU has not booted yet")
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if booted else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/thumbnail.png", responses={200: {"content": {"image/png": {}}}})
    async def thumbnail(
        width: Annotated[int, Query(ge=MIN_WIDTH, le=MAX_WIDTH)] = 320,
    ) -> Response:
        """The latest frame scaled to ``width`` pixels (aspect kept)."""
        frame = instance.sampler.latest_frame()
        if frame is None:
            return _error(503, "no frame received from the display yet")
        png = await thumbnails.png(frame, width)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/reset", response_model=ResetResult, responses={401: {}, 403: {}, 503: {}})
    async def reset(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        """Soft reset (QMP system_reset): the guest reboots, QEMU keeps running."""
        if (denied := _authorize(request, "reset")) is not None:
            return denied
        try:
            took = await instance.supervisor.reset()
        except (QmpUnavailable, QmpCommandError) as exc:
            log(audit, logging.WARNING, "reset failed", result="503", error=str(exc))
            return _error(503, f"reset failed: {exc}")
        log(
            audit,
            logging.INFO,
            "reset",
            result="ok",
            took_ms=round(took * 1000, 2),
            client=request.client and request.client.host,
        )
        return JSONResponse(ResetResult(ok=True, message="system_reset sent").model_dump())

    @app.post("/restart", response_model=ResetResult, responses={401: {}, 403: {}})
    async def restart(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        """Hard restart: QEMU is stopped and started again (also ends a crash loop)."""
        if (denied := _authorize(request, "restart")) is not None:
            return denied
        instance.supervisor.request_restart()
        log(
            audit,
            logging.INFO,
            "restart",
            result="requested",
            client=request.client and request.client.host,
        )
        return JSONResponse(
            ResetResult(ok=True, message="QEMU restart requested").model_dump(), status_code=202
        )

    # ------------------------------------------------------------------ WebRTC viewers
    # Reads, not actions: watching changes nothing in the emulator, so no control token
    # (which must never reach a browser page). The backend's /watch page signals here.

    def _stream() -> StreamOwner:
        if instance.stream is None:
            raise ViewerError("this emulator does not stream (start it with --stream)", 404)
        return instance.stream

    def _viewer_error(exc: ViewerError) -> JSONResponse:
        return _error(exc.status, str(exc))

    viewer_errors: dict[int | str, dict[str, object]] = {
        code: {"description": "error"} for code in (400, 404, 409, 429, 503)
    }

    @app.post(
        "/stream/viewers", response_model=ViewerOffer, status_code=201, responses=viewer_errors
    )
    async def open_viewer() -> JSONResponse:
        """A new WebRTC viewer of the stream: answer the offer with PUT."""
        try:
            viewer_id, sdp = await _stream().open_viewer()
        except ViewerError as exc:
            return _viewer_error(exc)
        return JSONResponse(ViewerOffer(id=viewer_id, sdp=sdp).model_dump(), status_code=201)

    @app.put("/stream/viewers/{viewer_id}", status_code=204, responses=viewer_errors)
    async def answer_viewer(
        viewer_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], answer: ViewerAnswer
    ) -> Response:
        """The browser's SDP answer to its offer."""
        try:
            await _stream().answer_viewer(viewer_id, answer.sdp)
        except ViewerError as exc:
            return _viewer_error(exc)
        return Response(status_code=204)

    @app.delete("/stream/viewers/{viewer_id}", status_code=204, responses=viewer_errors)
    async def close_viewer(viewer_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]) -> Response:
        """The viewer leaves (a closed page also leaves by itself, when ICE fails)."""
        try:
            closed = await _stream().close_viewer(viewer_id)
        except ViewerError as exc:
            return _viewer_error(exc)
        return Response(status_code=204) if closed else _error(404, "no such viewer")

    return app

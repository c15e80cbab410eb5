"""``/watch/{name}``: a page that plays one instance's live stream in the browser, and the
WebRTC signalling it needs, relayed to that instance's supervisor.

The media does not pass through the backend: the supervisor's webrtcbin sends it to the
browser directly (ICE finds the path). The backend only relays two small SDP messages,
so a page of one instance can only ever reach that instance's supervisor: the name in the
path picks the target, and the viewer id is the supervisor's own.

Watching is a read: the page and its signalling follow the rules of the other reads
(``/api/instances``, thumbnails). No control token is asked for, sent or relayed.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

import httpx
from fastapi import Body, FastAPI
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response

from backend.api.errors import ApiError
from backend.bounded_http import KiB, fetch
from backend.breaker import BreakerOpenError
from backend.discovery.base import Target
from backend.models import ErrorBody
from backend.prober import describe_error
from backend.runtime import BackendRuntime
from emulator.models import ViewerAnswer, ViewerOffer

# An SDP offer with a dozen candidates is about 4 KB.
SIGNAL_LIMIT = 64 * KiB
# webrtcbin gathers its ICE candidates before it answers (up to 10 s on the supervisor).
SIGNAL_DEADLINE = 15.0
_ERR = {"model": ErrorBody}
NAME = Annotated[str, PathParam(max_length=253, description="Instance name")]
VIEWER = Annotated[str, PathParam(pattern=r"^[0-9a-f]{16}$", description="Viewer id")]
# The page runs only its own script and talks only to this origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; media-src 'self' blob:; "
        "style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


def _asset(name: str) -> str:
    return resources.files("backend.api").joinpath(name).read_text(encoding="utf-8")


def _upstream_error(resp: httpx.Response, name: str) -> ApiError:
    try:
        message = resp.json().get("error") or resp.text[:200]
    except ValueError:
        message = resp.text[:200]
    status = resp.status_code if resp.status_code in (400, 404, 409, 429, 503) else 502
    return ApiError(status, "stream_unavailable", f"{name}: {message}")


def add_watch_routes(
    app: FastAPI, runtime: BackendRuntime, target_or_404: Callable[[str], Target]
) -> None:
    page = _asset("watch.html")
    script = _asset("watch.js")

    async def signal(name: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        target = target_or_404(name)
        if not target.health_url:
            raise ApiError(409, "no_address", f"{name} has no supervisor address yet")
        url = f"{target.health_url}/stream/viewers{path}"

        async def call() -> httpx.Response:
            return await fetch(
                runtime.http(),
                method,
                url,
                limit=SIGNAL_LIMIT,
                deadline=SIGNAL_DEADLINE,
                # The client's own timeout is the health probe's (a second or so): the
                # offer waits for ICE gathering, which takes longer.
                timeout=SIGNAL_DEADLINE,
                **kwargs,
            )

        try:
            resp = await runtime.breakers.get(name).call(call)
        except BreakerOpenError:
            raise ApiError(
                503, "unreachable", f"{name}'s supervisor is unreachable (circuit open)"
            ) from None
        except httpx.HTTPError as exc:
            raise ApiError(
                502, "upstream_error", f"{name}'s supervisor: {describe_error(exc)}"
            ) from None
        if not resp.is_success:
            raise _upstream_error(resp, name)
        return resp

    @app.get(
        "/watch/{name}",
        response_class=Response,
        responses={
            200: {"content": {"text/html": {}}, "description": "The watch page"},
            404: _ERR,
            422: _ERR,
        },
        summary="Watch one instance live",
    )
    async def watch(name: NAME) -> HTMLResponse:
        target_or_404(name)
        body = page.replace("{{instance}}", html.escape(name, quote=True))
        return HTMLResponse(body, headers=_PAGE_HEADERS)

    @app.get("/watch.js", include_in_schema=False)
    async def watch_script() -> Response:
        return Response(script, media_type="text/javascript", headers=_PAGE_HEADERS)

    @app.post(
        "/api/instances/{name}/stream/viewers",
        response_model=ViewerOffer,
        status_code=201,
        responses={c: _ERR for c in (404, 409, 422, 429, 502, 503)},
        summary="A WebRTC viewer of the instance's stream: the supervisor's SDP offer",
    )
    async def open_viewer(name: NAME) -> JSONResponse:
        resp = await signal(name, "POST", "")
        offer = ViewerOffer.model_validate_json(resp.content)
        return JSONResponse(offer.model_dump(), status_code=201)

    @app.put(
        "/api/instances/{name}/stream/viewers/{viewer}",
        status_code=204,
        responses={c: _ERR for c in (400, 404, 409, 422, 502, 503)},
        summary="The browser's SDP answer",
    )
    async def answer_viewer(
        name: NAME,
        viewer: VIEWER,
        answer: Annotated[ViewerAnswer, Body()],
    ) -> Response:
        await signal(name, "PUT", f"/{viewer}", json=answer.model_dump())
        return Response(status_code=204)

    @app.delete(
        "/api/instances/{name}/stream/viewers/{viewer}",
        status_code=204,
        responses={c: _ERR for c in (404, 409, 422, 502, 503)},
        summary="The viewer leaves",
    )
    async def close_viewer(name: NAME, viewer: VIEWER) -> Response:
        await signal(name, "DELETE", f"/{viewer}")
        return Response(status_code=204)

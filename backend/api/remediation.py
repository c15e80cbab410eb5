"""``/api/remediation``: the automatic recovery's state, and pause/resume (mutations:
token-guarded and audited like reset and restart)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Request

from backend.api.auth import authorize
from backend.api.errors import ApiError
from backend.models import ErrorBody, PauseRequest, RemediationStatus
from backend.remediation.control import PauseConflict, Remediation
from emulator.jsonlog import log

audit_logger = logging.getLogger("backend.audit")
_ERR: dict[str, Any] = {"model": ErrorBody}
_MUTATION_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _ERR,
    401: _ERR,
    403: _ERR,
    409: _ERR,
    413: _ERR,
    422: _ERR,
    503: _ERR,
}


def add_remediation_routes(
    app: FastAPI, remediation: Remediation | None, control_token: str | None
) -> None:
    """Adds the routes to ``app`` itself (the app's 405 handler reads ``app.routes``)."""

    def running() -> Remediation:
        if remediation is None:
            raise ApiError(
                409,
                "remediation_off",
                "the automatic recovery is off on this backend (start it with "
                "--remediation or LOCO_REMEDIATION=1; Helm: backend.remediation.enabled)",
            )
        return remediation

    @app.get(
        "/api/remediation",
        response_model=RemediationStatus,
        summary="The automatic recovery: on, leading, paused, instances on the ladder",
    )
    async def status() -> RemediationStatus:
        if remediation is None:
            return RemediationStatus(enabled=False, dry_run=False, paused=False, leader=False)
        return remediation.status()

    async def audited(
        request: Request,
        action: str,
        authorization: str | None,
        body: PauseRequest | None = None,
    ) -> RemediationStatus:
        client = request.client.host if request.client else None
        result, status_code = "ok", 200
        try:
            authorize(control_token, authorization)
            control = running()
            try:
                if body is not None:
                    await control.pause(body.minutes, body.reason, client)
                else:
                    await control.resume()
            except PauseConflict as exc:
                raise ApiError(
                    503,
                    "not_recorded",
                    f"could not record the {action} where every replica reads it: {exc}",
                ) from None
            return control.status()
        except ApiError as exc:
            result, status_code = exc.error, exc.status
            raise
        except BaseException:
            result, status_code = "internal_error", 500
            raise
        finally:
            log(
                audit_logger,
                logging.INFO if result == "ok" else logging.WARNING,
                "audit",
                action=f"remediation {action}",
                result=result,
                status_code=status_code,
                client=client,
                minutes=body.minutes if body is not None else None,
                reason=body.reason if body is not None else None,
            )

    @app.post(
        "/api/remediation/pause",
        response_model=RemediationStatus,
        responses=_MUTATION_ERRORS,
        summary="Pause the automatic recovery (for maintenance); it resumes by itself after "
        "'minutes' when given",
    )
    async def pause(
        request: Request,
        body: Annotated[PauseRequest | None, Body()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> RemediationStatus:
        return await audited(request, "pause", authorization, body or PauseRequest())

    @app.post(
        "/api/remediation/resume",
        response_model=RemediationStatus,
        responses=_MUTATION_ERRORS,
        summary="Resume the automatic recovery",
    )
    async def resume(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> RemediationStatus:
        return await audited(request, "resume", authorization)

"""Reset and restart of one instance.

* reset: the supervisor's ``POST /reset`` (QMP ``system_reset``), with the control token.
* restart: Kubernetes instances — delete the pod (its StatefulSet recreates it); static and
  local instances — the supervisor's ``POST /restart`` (QEMU stopped and started again).
* forget: a lost local instance (its supervisor died without unregistering) — its
  registration is removed so it leaves the list; its state directory is kept.

Calls to a supervisor go through that target's breaker (an unreachable supervisor fails
fast with 503 while its breaker is open). Failures become :class:`ApiError` with the
upstream's reason, so the operator sees *why* an action failed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from backend.api.errors import ApiError
from backend.bounded_http import KiB, fetch
from backend.breaker import BreakerOpenError
from backend.discovery.base import Target
from backend.models import ActionResult, InstanceSource
from backend.prober import describe_error
from backend.runtime import BackendRuntime

# A supervisor answers an action with a line of JSON; QMP system_reset takes milliseconds.
ACTION_ANSWER_LIMIT = 64 * KiB
ACTION_DEADLINE = 10.0


def _upstream_message(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return body[key]
    return resp.text[:200]


async def _supervisor_post(runtime: BackendRuntime, target: Target, path: str) -> str:
    if not target.health_url:
        raise ApiError(
            409, "no_address", f"{target.name} has no supervisor address yet (pod has no IP)"
        )
    headers = {}
    if runtime.settings.control_token:
        headers["Authorization"] = f"Bearer {runtime.settings.control_token}"
    url = f"{target.health_url}{path}"

    async def call() -> httpx.Response:
        return await fetch(
            runtime.http(),
            "POST",
            url,
            headers=headers,
            limit=ACTION_ANSWER_LIMIT,
            deadline=ACTION_DEADLINE,
        )

    try:
        resp = await runtime.breakers.get(target.name).call(call)
    except BreakerOpenError as exc:
        raise ApiError(
            503,
            "unreachable",
            f"{target.name}'s supervisor is unreachable (circuit open)",
            headers={"Retry-After": str(max(1, round(exc.retry_after_seconds)))},
        ) from None
    except httpx.HTTPError as exc:
        raise ApiError(
            502, "upstream_error", f"{target.name}'s supervisor: {describe_error(exc)}"
        ) from None
    if resp.is_success:
        return _upstream_message(resp)
    msg = _upstream_message(resp)
    if resp.status_code in (401, 403):
        raise ApiError(
            502,
            "upstream_refused",
            f"{target.name}'s supervisor refused the control token (HTTP {resp.status_code}: "
            f"{msg}); the backend and the supervisors must share LOCO_CONTROL_TOKEN",
        )
    if resp.status_code == 503:
        raise ApiError(503, "upstream_unavailable", f"{target.name}: {msg}")
    raise ApiError(
        502, "upstream_error", f"{target.name}'s supervisor answered HTTP {resp.status_code}: {msg}"
    )


async def reset(runtime: BackendRuntime, target: Target) -> ActionResult:
    message = await _supervisor_post(runtime, target, "/reset")
    return ActionResult(
        ok=True,
        action="reset",
        instance=target.name,
        message=message or "system_reset sent",
        at=datetime.now(UTC),
    )


async def restart(runtime: BackendRuntime, target: Target) -> ActionResult:
    if target.source is InstanceSource.KUBERNETES:
        from backend.kube.errors import KubeError

        if runtime.kube is None or not target.namespace:
            raise ApiError(500, "internal_error", "no Kubernetes client for a Kubernetes pod")
        try:
            await runtime.kube.delete_pod(target.namespace, target.name)
        except BreakerOpenError as exc:
            raise ApiError(
                503,
                "unreachable",
                "the Kubernetes API is unreachable (circuit open)",
                headers={"Retry-After": str(max(1, round(exc.retry_after_seconds)))},
            ) from None
        except KubeError as exc:
            if exc.status == 404:
                raise ApiError(404, "not_found", f"pod {target.name} is already gone") from None
            if exc.status in (401, 403):
                raise ApiError(
                    502,
                    "upstream_refused",
                    f"the Kubernetes API refused to delete pod {target.name}: "
                    f"{exc.message} (check the backend's RBAC: pods/delete)",
                ) from None
            raise ApiError(502, "upstream_error", str(exc)) from None
        message = f"pod {target.namespace}/{target.name} deleted; its controller recreates it"
    else:
        message = await _supervisor_post(runtime, target, "/restart") or "restart requested"
    return ActionResult(
        ok=True, action="restart", instance=target.name, message=message, at=datetime.now(UTC)
    )


async def forget(runtime: BackendRuntime, target: Target) -> ActionResult:
    from backend.discovery.local import LocalDiscovery, StillAlive

    discovery = runtime.discovery
    if target.lost is None or not isinstance(discovery, LocalDiscovery):
        raise ApiError(
            409,
            "not_lost",
            f"{target.name} is not lost: only a local instance whose supervisor is gone can "
            "be forgotten (restart or stop a running one instead)",
        )
    try:
        await asyncio.to_thread(discovery.forget, target)
    except StillAlive:
        raise ApiError(
            409, "not_lost", f"{target.name}'s supervisor is running again; nothing to forget"
        ) from None
    except OSError as exc:
        raise ApiError(
            500, "forget_failed", f"cannot remove {target.name}'s registration: {exc}"
        ) from None
    runtime.fleet.remove(target.name)
    state_dir = target.extra.get("state_dir", "?")
    return ActionResult(
        ok=True,
        action="forget",
        instance=target.name,
        message=f"{target.name} forgotten; its state directory {state_dir} is kept",
        at=datetime.now(UTC),
    )

"""GET /api/v1/namespaces/{ns}/pods/{name}/log with the kubelet's parameters and errors."""

from __future__ import annotations

import time
from datetime import datetime

from tests.kubesim.asgi import Request, Response, StreamResponse
from tests.kubesim.context import ApiError, Context, bad_request, not_found
from tests.kubesim.resources import PODS

TEXT = "text/plain"


def _since(req: Request) -> float | None:
    seconds = req.q_int("sinceSeconds")
    since_time = req.q("sinceTime")
    if seconds is not None and since_time:
        raise bad_request("at most one of `sinceTime` or `sinceSeconds` may be specified")
    if seconds is not None:
        if seconds < 1:
            raise ApiError(
                422,
                "Invalid",
                f'PodLogOptions "" is invalid: sinceSeconds: Invalid value: {seconds}: must be greater than 0',  # noqa: E501
            )
        return time.time() - seconds
    if since_time:
        try:
            return datetime.fromisoformat(since_time.replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise bad_request(f"invalid sinceTime: {since_time}") from exc
    return None


def pod_log(ctx: Context, req: Request, namespace: str, name: str) -> Response | StreamResponse:
    pod = ctx.store.get(PODS.key, namespace, name)
    if pod is None:
        raise not_found(PODS, name)
    containers = [c["name"] for c in pod["spec"].get("containers") or []]
    container = req.q("container")
    if not container:
        default = (pod["metadata"].get("annotations") or {}).get(
            "kubectl.kubernetes.io/default-container"
        )
        if len(containers) == 1:
            container = containers[0]
        elif default in containers:
            container = default
        else:
            raise bad_request(
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"  # noqa: E501
            )
    if container not in containers:
        raise bad_request(f"container {container} is not valid for pod {name}")

    tail = req.q_int("tailLines")
    limit = req.q_int("limitBytes")
    timestamps = req.q_bool("timestamps")
    since = _since(req)
    logs = ctx.cluster.logs.get(pod["metadata"]["uid"])

    if req.q_bool("previous"):
        previous = logs.previous.get(container) if logs else None
        if previous is None:
            raise bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        log = previous
    else:
        status = next(
            (
                cs
                for cs in pod.get("status", {}).get("containerStatuses") or []
                if cs["name"] == container
            ),
            None,
        )
        state = (status or {}).get("state") or {}
        if status is None or "waiting" in state:
            reason = state.get("waiting", {}).get("reason", "ContainerCreating")
            raise bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        if logs is None:
            raise bad_request(f'container "{container}" in pod "{name}" is not available')
        log = logs.container(container)

    if req.q_bool("follow"):
        return StreamResponse(200, log.follow(tail, since, timestamps, limit), TEXT)
    lines, _ = log.select(tail, since, limit, timestamps)
    return Response(200, b"".join(lines), TEXT)

"""The simulator's own control endpoints under /_sim (outside the Kubernetes API).

They let a test in another process (or a person with curl) drive a simulator started with
``python -m tests.kubesim``. No authentication: the server listens on loopback only.

  GET    /_sim/state                               rv, compaction point, pods, open watches
  GET    /_sim/requests                            recent (method, path?query) the API served
  POST   /_sim/faults        {"latency": {...}} | {"error": {...}}  -> {"id": N}
  DELETE /_sim/faults[/ID]                         remove all / one
  POST   /_sim/drop-watches                        end every open watch stream
  POST   /_sim/expire                              compact: older resourceVersions get 410
  POST   /_sim/down?seconds=S                      stop listening for S seconds
  POST   /_sim/namespaces/NS/pods/NAME/logs        body: text, appended as log lines
  POST   /_sim/namespaces/NS/pods/NAME/restart     ?exitCode=1&reason=Error
  POST   /_sim/namespaces/NS/pods/NAME/ready       ?value=true|false|auto
  POST   /_sim/namespaces/NS/pods/NAME/bind        {"health_url", "vnc", "log_file",
                                                    "probe_readiness"}
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from tests.kubesim.asgi import Request, Response
from tests.kubesim.context import ApiError, Context, bad_request
from tests.kubesim.controller import PodBinding
from tests.kubesim.store import StoreError

_POD = re.compile(
    r"/_sim/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/(?P<op>logs|restart|ready|bind)"
)


async def _json(req: Request) -> Any:
    raw = await req.body()
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise bad_request(f"invalid JSON: {exc}") from exc


async def handle_admin(ctx: Context, req: Request) -> Response:
    path, method = req.path.rstrip("/"), req.method
    if path == "/_sim/state" and method == "GET":
        return Response.json(200, state(ctx))
    if path == "/_sim/requests" and method == "GET":
        return Response.json(200, [list(r) for r in ctx.requests])
    if path == "/_sim/faults" and method == "POST":
        spec = await _json(req)
        if "latency" in spec:
            d = spec["latency"]
            rid = ctx.faults.add_latency(
                float(d["seconds"]), d.get("path", ".*"), d.get("methods"), d.get("count")
            )
        elif "error" in spec:
            d = spec["error"]
            rid = ctx.faults.add_error(
                int(d.get("status", 500)),
                d.get("path", ".*"),
                d.get("methods"),
                d.get("count"),
                d.get("message"),
            )
        else:
            raise bad_request('expected {"latency": {...}} or {"error": {...}}')
        return Response.json(201, {"id": rid})
    if path == "/_sim/faults" and method == "GET":
        return Response.json(200, ctx.faults.describe())
    if path == "/_sim/faults" and method == "DELETE":
        ctx.faults.clear()
        return Response.json(200, {})
    m = re.fullmatch(r"/_sim/faults/(\d+)", path)
    if m and method == "DELETE":
        ctx.faults.remove(int(m.group(1)))
        return Response.json(200, {})
    if path == "/_sim/drop-watches" and method == "POST":
        return Response.json(200, {"dropped": ctx.store.drop_watchers()})
    if path == "/_sim/expire" and method == "POST":
        return Response.json(200, {"compactedResourceVersion": str(ctx.store.expire())})
    if path == "/_sim/down" and method == "POST":
        seconds = float(req.q("seconds") or "1")
        if ctx.go_down is None:
            raise ApiError(501, "NotImplemented", "this server cannot go down")
        # Answer first, then go down: the caller needs to know the request was taken.
        asyncio.get_running_loop().call_later(
            0.05, lambda: asyncio.ensure_future(ctx.go_down(seconds))
        )  # type: ignore[misc]
        return Response.json(202, {"down_for": seconds})
    m = _POD.fullmatch(path)
    if m and method == "POST":
        return await _pod_op(ctx, req, m.group("ns"), m.group("name"), m.group("op"))
    return Response.json(404, {"error": f"no admin endpoint {method} {path}"})


async def _pod_op(ctx: Context, req: Request, ns: str, name: str, op: str) -> Response:
    cluster = ctx.cluster
    try:
        if op == "logs":
            text = (await req.body()).decode("utf-8", errors="replace")
            append_log(ctx, ns, name, text, req.q("container"))
        elif op == "restart":
            cluster.restart_container(
                ns, name, int(req.q("exitCode") or 1), req.q("reason") or "Error"
            )
        elif op == "ready":
            value = (req.q("value") or "auto").lower()
            if value == "auto":
                cluster.ready_override.pop((ns, name), None)
            else:
                cluster.ready_override[(ns, name)] = value == "true"
            cluster.apply_readiness(ns, name)
        elif op == "bind":
            d = await _json(req)
            cluster.bind(
                ns,
                name,
                PodBinding(
                    health_url=d.get("health_url"),
                    vnc=d.get("vnc"),
                    log_file=d.get("log_file"),
                    pod_ip=d.get("pod_ip"),
                    probe_readiness=bool(d.get("probe_readiness")),
                ),
            )
    except StoreError as exc:
        return Response.json(exc.code, {"error": exc.reason})
    return Response.json(200, {})


def append_log(ctx: Context, ns: str, name: str, text: str, container: str | None = None) -> None:
    pod = ctx.store.get("pods", ns, name)
    if pod is None:
        raise StoreError(404, "NotFound")
    logs = ctx.cluster.logs.get(pod["metadata"]["uid"])
    if logs is None:
        raise StoreError(409, "Conflict")
    logs.container(container or pod["spec"]["containers"][0]["name"]).append(text)


def state(ctx: Context) -> dict[str, Any]:
    pods = []
    for p in ctx.store.list("pods"):
        conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions") or []}
        pods.append(
            {
                "namespace": p["metadata"]["namespace"],
                "name": p["metadata"]["name"],
                "uid": p["metadata"]["uid"],
                "phase": p.get("status", {}).get("phase"),
                "ready": conds.get("Ready") == "True",
                "terminating": bool(p["metadata"].get("deletionTimestamp")),
                "podIP": p.get("status", {}).get("podIP"),
            }
        )
    return {
        "resourceVersion": str(ctx.store.rv),
        "compactedResourceVersion": str(ctx.store.compacted_rv),
        "openStreams": len(ctx.open_streams),
        "pods": pods,
        "faults": ctx.faults.describe(),
    }

"""The ASGI application: faults, authentication, authorization, routing.

Order matters and mirrors a real API server's filter chain: (injected faults), then
authentication (401), then authorization (403), then the handler.
"""

from __future__ import annotations

import asyncio
import logging
import re

from tests.kubesim import crud, resources
from tests.kubesim.asgi import (
    Receive,
    Request,
    Response,
    Scope,
    Send,
    StreamResponse,
    send_response,
    send_stream,
)
from tests.kubesim.auth import forbidden, unauthorized
from tests.kubesim.context import ApiError, Context
from tests.kubesim.objects import status

log = logging.getLogger(__name__)

_CORE = re.compile(r"/api/v1(?P<rest>/.*)?")
_GROUP = re.compile(r"/apis/(?P<group>[^/]+)/(?P<version>[^/]+)(?P<rest>/.*)?")


def _not_found_page() -> Response:
    # For unknown paths the real server answers with this Status, not an HTML page.
    return Response.json(
        404, status(404, "NotFound", "the server could not find the requested resource")
    )


class App:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        req = Request.from_scope(scope, receive)
        try:
            resp = await self.handle(req)
        except ApiError as exc:
            resp = Response.json(exc.code, exc.body())
        except Exception as exc:  # a simulator bug must surface as a 500, as in a real server
            log.exception("kubesim handler failed for %s %s", req.method, req.target)
            resp = Response.json(
                500, status(500, "InternalError", f"Internal error occurred: {exc!r}")
            )
        if isinstance(resp, StreamResponse):
            await send_stream(send, receive, resp)
        else:
            await send_response(send, resp)

    async def handle(self, req: Request) -> Response | StreamResponse:
        ctx = self.ctx
        ctx.requests.append((req.method, req.target))

        delay = ctx.faults.delay_for(req.method, req.target)
        if delay > 0:
            await asyncio.sleep(delay)
        rule = ctx.faults.error_for(req.method, req.target)
        if rule is not None:
            return Response.json(rule.status, rule.body())

        if req.path in ("/healthz", "/livez", "/readyz"):
            return Response(200, b"ok", "text/plain; charset=utf-8")

        token = ctx.auth.authenticate(req.headers.get("authorization"))
        if token is None:
            return Response.json(401, unauthorized())

        # Discovery and version: every authenticated user may read them
        # (system:discovery / system:basic-user in a real cluster).
        if req.method == "GET":
            doc = self._discovery(req)
            if doc is not None:
                return doc

        target = self._target(req.path)
        if target is None:
            return _not_found_page()
        verb = self._verb(req, target)
        if verb is None:
            return Response.json(
                405,
                status(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                ),
            )
        if not token.allows(
            verb,
            target.rt.group,
            target.rt.plural + (f"/{target.sub}" if target.sub else ""),
            target.namespace,
        ):
            return Response.json(
                403,
                forbidden(
                    token.user,
                    verb,
                    target.rt.group,
                    target.rt.plural,
                    target.sub,
                    target.namespace,
                    target.name,
                ),
            )
        return await self._dispatch(req, target, verb)

    def _discovery(self, req: Request) -> Response | None:
        path = req.path.rstrip("/") or "/"
        accept = req.headers.get("accept") or ""
        if path == "/version":
            return Response.json(200, resources.version_info())
        if path in ("/api", "/apis"):
            if resources.wants_aggregated(accept):
                return Response.json(
                    200,
                    resources.aggregated(core=path == "/api"),
                    resources.AGGREGATED_CONTENT_TYPE,
                )
            if path == "/api":
                return Response.json(200, resources.api_versions(self.ctx.server_address))
            return Response.json(200, resources.api_group_list())
        if path == "/api/v1":
            return Response.json(200, resources.api_resource_list("", "v1"))
        m = re.fullmatch(r"/apis/([^/]+)", path)
        if m:
            doc = resources.api_group(m.group(1))
            return Response.json(200, doc) if doc else _not_found_page()
        m = re.fullmatch(r"/apis/([^/]+)/([^/]+)", path)
        if m:
            doc = resources.api_resource_list(m.group(1), m.group(2))
            return Response.json(200, doc) if doc else _not_found_page()
        if path.startswith("/openapi/"):
            # Not served: kubectl only needs OpenAPI for explain/apply/validation, which the
            # project does not script; client-go treats 404 as "no schema available".
            return _not_found_page()
        return None

    @staticmethod
    def _target(path: str) -> crud.Target | None:
        m = _CORE.fullmatch(path)
        if m:
            group, version = "", "v1"
        else:
            m = _GROUP.fullmatch(path)
            if not m:
                return None
            group, version = m.group("group"), m.group("version")
        parts = [p for p in (m.group("rest") or "").split("/") if p]
        if not parts:
            return None
        namespace: str | None = None
        if (
            parts[0] == "namespaces"
            and len(parts) >= 3
            and resources.lookup(group, version, parts[2])
        ):
            namespace, parts = parts[1], parts[2:]
        if len(parts) > 3:
            return None
        rt = resources.lookup(group, version, parts[0])
        if rt is None:
            return None
        name = parts[1] if len(parts) > 1 else None
        sub = parts[2] if len(parts) > 2 else None
        if rt.namespaced != (namespace is not None) and not (rt.namespaced and name is None):
            return None
        if sub is not None and rt.subresource(sub) is None:
            return None
        return crud.Target(rt, namespace, name, sub)

    @staticmethod
    def _verb(req: Request, t: crud.Target) -> str | None:
        m = req.method
        if t.name is None:
            if m == "GET":
                return "watch" if req.q_bool("watch") else "list"
            return {"POST": "create", "DELETE": "deletecollection"}.get(m)
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(m)

    async def _dispatch(self, req: Request, t: crud.Target, verb: str) -> Response | StreamResponse:
        ctx = self.ctx
        if verb == "list":
            return crud.list_objects(ctx, req, t)
        if verb == "watch":
            return crud.watch_objects(ctx, req, t)
        if verb == "get":
            return crud.get_object(ctx, req, t)
        if verb == "create":
            if t.rt.namespaced and t.namespace is None:
                return _not_found_page()
            return await crud.create_object(ctx, req, t)
        if verb == "update":
            return await crud.update_object(ctx, req, t)
        if verb == "patch":
            return await crud.patch_object(ctx, req, t)
        if verb == "delete":
            return await crud.delete_object(ctx, req, t)
        if verb == "deletecollection":
            return await crud.delete_collection(ctx, req, t)
        return _not_found_page()

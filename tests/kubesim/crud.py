"""The generic resource verbs: list, watch, get, create, update, patch, delete.

Behaviour follows the API server's generic registry (k8s.io/apiserver/pkg/registry):
list pagination with continue tokens, watch replay from a resourceVersion with 410 Gone
once compacted, bookmarks, selector-aware watch events (an object that stops matching
is reported DELETED), status subresources that own ``.status``, generation bumps on spec
changes, and graceful deletion for pods.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import yaml

from tests.kubesim import patch as patches
from tests.kubesim.asgi import JSON, Request, Response, StreamResponse
from tests.kubesim.context import (
    ApiError,
    Context,
    already_exists,
    bad_request,
    conflict,
    expired,
    not_found,
)
from tests.kubesim.objects import Obj, deep
from tests.kubesim.resources import NAMESPACES, PODS, STATEFULSETS, ResourceType
from tests.kubesim.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    match_labels_selector,
)
from tests.kubesim.store import ADDED, DELETED, DROP, MODIFIED, Change, StoreError, TooOld


@dataclass(frozen=True)
class Target:
    """A parsed resource URL: /api(s)/.../namespaces/{ns}/{plural}/{name}/{sub}."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None


# --- response shaping (PartialObjectMetadata, plain JSON) --------------------------------


@dataclass(frozen=True)
class Rendering:
    kind: str  # "json" | "meta"
    version: str = "v1"


def rendering(req: Request) -> Rendering:
    """Pick the representation from Accept, in the client's order of preference."""
    for media in (req.headers.get("accept") or JSON).split(","):
        params = dict(p.strip().split("=", 1) for p in media.split(";")[1:] if "=" in p)
        base = media.split(";")[0].strip()
        if base not in ("application/json", "*/*", "application/*"):
            continue
        as_ = params.get("as")
        if (
            as_ in ("PartialObjectMetadata", "PartialObjectMetadataList")
            and params.get("g") == "meta.k8s.io"
        ):
            return Rendering("meta", params.get("v", "v1"))
        if as_ is None:
            return Rendering("json")
    return Rendering("json")


def with_kind(rt: ResourceType, obj: Obj) -> Obj:
    return {
        "kind": rt.kind,
        "apiVersion": rt.api_version,
        **{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")},
    }


def _partial(obj: Obj, version: str) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": obj["metadata"],
    }


def _render_one(rt: ResourceType, obj: Obj, r: Rendering) -> Obj:
    if r.kind == "meta":
        return _partial(obj, r.version)
    return with_kind(rt, obj)


# --- list and watch -------------------------------------------------------------------


def _selectors(req: Request, rt: ResourceType) -> tuple[LabelSelector, FieldSelector]:
    try:
        return (
            LabelSelector.parse(req.q("labelSelector")),
            FieldSelector.parse(req.q("fieldSelector"), rt.plural),
        )
    except SelectorError as exc:
        raise bad_request(str(exc)) from exc


def _int_rv(value: str | None, what: str = "resourceVersion") -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise bad_request(
            f'{what}: Invalid value: "{value}": must be a valid resource version'
        ) from exc


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{key[0]}/{key[1]}\x00"})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ns, _, name = raw["start"].rstrip("\x00").partition("/")
        return int(raw["rv"]), (ns, name)
    except (ValueError, KeyError, TypeError) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from exc


def list_objects(ctx: Context, req: Request, t: Target) -> Response:
    rt = t.rt
    labels, fields = _selectors(req, rt)
    limit = req.q_int("limit")
    token = req.q("continue")
    rv = _int_rv(req.q("resourceVersion"))
    match = req.q("resourceVersionMatch")
    list_rv = ctx.store.rv
    start: tuple[str, str] | None = None
    if token:
        token_rv, start = _decode_continue(token)
        if token_rv < ctx.store.compacted_rv:
            raise expired(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue "
                "value from the response."
            )
        list_rv = token_rv
    elif rv is not None and match == "Exact" and rv < ctx.store.compacted_rv:
        raise expired("The resourceVersion for the provided list is too old.")
    elif rv is not None and match == "Exact":
        list_rv = rv
    items = [
        o
        for o in ctx.store.list(rt.key, t.namespace)
        if labels.matches(o["metadata"].get("labels")) and fields.matches(o)
    ]
    if start is not None:
        items = [
            o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start
        ]
    meta: Obj = {"resourceVersion": str(list_rv)}
    if limit and limit > 0 and len(items) > limit:
        last = items[limit - 1]["metadata"]
        meta["continue"] = _encode_continue(list_rv, (last.get("namespace", ""), last["name"]))
        meta["remainingItemCount"] = len(items) - limit
        items = items[:limit]
    r = rendering(req)
    if r.kind == "meta":
        return Response.json(
            200,
            {
                "kind": "PartialObjectMetadataList",
                "apiVersion": f"meta.k8s.io/{r.version}",
                "metadata": meta,
                "items": [_partial(o, r.version) for o in items],
            },
        )
    # Items of a typed list carry no kind/apiVersion of their own, as on a real server.
    for o in items:
        o.pop("kind", None)
        o.pop("apiVersion", None)
    return Response.json(
        200,
        {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": items},
    )


def _watch_line(type_: str, obj: Obj) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _translate(
    change: Change, labels: LabelSelector, fields: FieldSelector
) -> tuple[str, Obj] | None:
    """A store change as this watcher must see it, given its selectors."""

    def match(o: Obj | None) -> bool:
        return o is not None and labels.matches(o["metadata"].get("labels")) and fields.matches(o)

    new_ok = match(change.obj)
    if change.type == ADDED:
        return (ADDED, change.obj) if new_ok else None
    if change.type == DELETED:
        return (DELETED, change.obj) if match(change.old) else None
    old_ok = match(change.old)
    if new_ok and old_ok:
        return (MODIFIED, change.obj)
    if new_ok:
        return (ADDED, change.obj)
    if old_ok:
        return (DELETED, change.obj)
    return None


def watch_objects(ctx: Context, req: Request, t: Target) -> StreamResponse:
    rt = t.rt
    labels, fields = _selectors(req, rt)
    rv = _int_rv(req.q("resourceVersion"))
    timeout = req.q_int("timeoutSeconds")
    bookmarks = req.q_bool("allowWatchBookmarks")
    send_initial = req.q("sendInitialEvents")
    r = rendering(req)
    store = ctx.store

    # rv unset or "0": start with synthetic ADDED events for the current state; a real rv
    # replays history after it. sendInitialEvents=true forces the initial state either way.
    initial = rv is None or rv == 0 or (send_initial or "").lower() == "true"
    since = None if rv is None or rv == 0 else rv
    try:
        watcher, backlog = store.watch(rt.key, t.namespace, None if initial else since)
    except TooOld as exc:
        return _one_shot_error(expired(str(exc)))
    snapshot = (
        [
            o
            for o in store.list(rt.key, t.namespace)
            if labels.matches(o["metadata"].get("labels")) and fields.matches(o)
        ]
        if initial
        else []
    )
    start_rv = store.rv

    def render(type_: str, obj: Obj) -> bytes:
        if r.kind == "meta":
            return _watch_line(type_, _partial(obj, r.version))
        return _watch_line(type_, with_kind(rt, obj))

    def bookmark(rv_now: int, initial_end: bool = False) -> bytes:
        meta: Obj = {"resourceVersion": str(rv_now), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _watch_line(
            "BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        )

    async def events() -> AsyncIterator[bytes]:
        ctx.open_streams.add(watcher)
        try:
            for obj in snapshot:
                yield render(ADDED, obj)
            if initial and bookmarks and (send_initial or "").lower() == "true":
                yield bookmark(start_rv, initial_end=True)
            for change in backlog:
                out = _translate(change, labels, fields)
                if out is not None:
                    yield render(*out)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout if timeout else None
            while True:
                wait = ctx.timing.bookmark_interval if bookmarks else None
                if deadline is not None:
                    left = deadline - loop.time()
                    if left <= 0:
                        return
                    wait = left if wait is None else min(wait, left)
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if bookmarks and (deadline is None or loop.time() < deadline):
                        yield bookmark(store.rv)
                    continue
                if item is DROP:
                    return
                assert isinstance(item, Change)
                out = _translate(item, labels, fields)
                if out is not None:
                    yield render(*out)
        finally:
            store.unwatch(watcher)
            ctx.open_streams.discard(watcher)

    return StreamResponse(200, events(), JSON)


def _one_shot_error(err: ApiError) -> StreamResponse:
    """The watch cache answers a too-old watch with 200 and a single ERROR event."""

    async def one() -> AsyncIterator[bytes]:
        yield _watch_line("ERROR", err.body())

    return StreamResponse(200, one(), JSON)


# --- get / create / update / patch / delete -----------------------------------------------


def _load(ctx: Context, t: Target) -> Obj:
    assert t.name is not None
    obj = ctx.store.get(t.rt.key, t.namespace or "", t.name)
    if obj is None:
        raise not_found(t.rt, t.name)
    return obj


def get_object(ctx: Context, req: Request, t: Target) -> Response:
    obj = _load(ctx, t)
    if t.sub == "scale":
        return Response.json(200, _scale(obj))
    return Response.json(200, _render_one(t.rt, obj, rendering(req)))


def _scale(sts: Obj) -> Obj:
    meta = sts["metadata"]
    selector = match_labels_selector(sts["spec"].get("selector"))
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": sts["spec"].get("replicas", 1)},
        "status": {
            "replicas": sts.get("status", {}).get("replicas", 0),
            "selector": ",".join(
                f"{r.key}={r.values[0]}" for r in selector.requirements if r.op == "="
            ),
        },
    }


async def _json_body(req: Request) -> Any:
    raw = await req.body()
    ctype = (req.headers.get("content-type") or JSON).split(";")[0].strip()
    try:
        if ctype.endswith("yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise bad_request(f"error decoding request body: {exc}") from exc


def _generate_name(prefix: str) -> str:
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the API server's safe alphabet
    return prefix + "".join(secrets.choice(alphabet) for _ in range(5))


def _check_namespace(ctx: Context, t: Target, obj: Obj) -> None:
    meta = obj.setdefault("metadata", {})
    if not t.rt.namespaced:
        meta.pop("namespace", None)
        return
    body_ns = meta.get("namespace")
    if body_ns and body_ns != t.namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    meta["namespace"] = t.namespace
    if ctx.store.get(NAMESPACES.key, "", t.namespace or "") is None:
        raise not_found(NAMESPACES, t.namespace or "")


def _defaults_on_create(rt: ResourceType, obj: Obj) -> None:
    if rt is STATEFULSETS:
        obj["metadata"]["generation"] = 1
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        obj["status"] = {"replicas": 0, "availableReplicas": 0}
    elif rt is PODS:
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rt is NAMESPACES:
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
            "name"
        ]


async def create_object(ctx: Context, req: Request, t: Target) -> Response:
    obj = await _json_body(req)
    if not isinstance(obj, dict):
        raise bad_request("the body of the request was in an unknown format")
    if obj.get("kind") not in (None, t.rt.kind):
        raise bad_request(
            f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({t.rt.api_version})"  # noqa: E501
        )
    _check_namespace(ctx, t, obj)
    meta = obj["metadata"]
    if not meta.get("name"):
        if meta.get("generateName"):
            meta["name"] = _generate_name(meta["generateName"])
        else:
            raise ApiError(
                422,
                "Invalid",
                f'{t.rt.kind}.{t.rt.version} "" is invalid: metadata.name: Required value: name or generateName is required',  # noqa: E501
            )
    for k in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
        meta.pop(k, None)
    obj["kind"], obj["apiVersion"] = t.rt.kind, t.rt.api_version
    _defaults_on_create(t.rt, obj)
    if req.q("dryRun") == "All":
        return Response.json(201, obj)
    try:
        created = ctx.store.create(t.rt.key, obj)
    except StoreError as exc:
        raise already_exists(t.rt, meta["name"]) from exc
    return Response.json(201, with_kind(t.rt, created))


_POD_MUTABLE_MSG = (
    "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be "
    "set to 1 if it was previously negative)"
)


def _finish_update(ctx: Context, req: Request, t: Target, old: Obj, new: Obj) -> Obj:
    """Apply the registry's update strategy to ``new`` (what the client asked for), then store."""
    rt = t.rt
    assert t.name is not None
    meta, old_meta = new.setdefault("metadata", {}), old["metadata"]
    expect_rv = meta.get("resourceVersion") or None
    if meta.get("name") not in (None, t.name):
        raise bad_request("the name of the object does not match the name on the URL")
    # Identity and lifecycle fields are the server's, whatever the client sent.
    for k in (
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ):
        if k in old_meta:
            meta[k] = old_meta[k]
        else:
            meta.pop(k, None)
    new["kind"], new["apiVersion"] = rt.kind, rt.api_version
    if t.sub == "status":
        # The status subresource owns .status and nothing else.
        merged = deep(old)
        merged["status"] = new.get("status", {})
        new = merged
    else:
        if "status" in old:
            new["status"] = old["status"]
        if rt is PODS and _pod_spec_frozen(old.get("spec", {})) != _pod_spec_frozen(
            new.get("spec", {})
        ):
            raise ApiError(
                422,
                "Invalid",
                f'Pod "{t.name}" is invalid: {_POD_MUTABLE_MSG}',
                {"name": t.name, "kind": "Pod"},
            )
        if rt is STATEFULSETS and new.get("spec") != old.get("spec"):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
    if req.q("dryRun") == "All":
        return new
    try:
        return ctx.store.update(rt.key, new, expect_rv=expect_rv)
    except StoreError as exc:
        if exc.code == 404:
            raise not_found(rt, t.name) from exc
        raise conflict(rt, t.name) from exc


def _pod_spec_frozen(spec: Obj) -> Obj:
    frozen = deep(spec)
    for c in frozen.get("containers") or []:
        c.pop("image", None)
    for c in frozen.get("initContainers") or []:
        c.pop("image", None)
    frozen.pop("activeDeadlineSeconds", None)
    frozen.pop("tolerations", None)
    return frozen


async def update_object(ctx: Context, req: Request, t: Target) -> Response:
    old = _load(ctx, t)
    new = await _json_body(req)
    if not isinstance(new, dict):
        raise bad_request("the body of the request was in an unknown format")
    if t.sub == "scale":
        return Response.json(200, _scale(_set_replicas(ctx, req, t, old, new)))
    return Response.json(200, with_kind(t.rt, _finish_update(ctx, req, t, old, new)))


def _set_replicas(ctx: Context, req: Request, t: Target, sts: Obj, scale: Obj) -> Obj:
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise ApiError(
            422,
            "Invalid",
            f'Scale.autoscaling "{t.name}" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0',  # noqa: E501
        )
    new = deep(sts)
    new["spec"]["replicas"] = replicas
    new["metadata"]["resourceVersion"] = (scale.get("metadata") or {}).get("resourceVersion")
    main = Target(t.rt, t.namespace, t.name, None)
    return _finish_update(ctx, req, main, sts, new)


async def patch_object(ctx: Context, req: Request, t: Target) -> Response:
    old = _load(ctx, t)
    ctype = (req.headers.get("content-type") or "").split(";")[0].strip()
    body = await _json_body(req)
    current = _scale(old) if t.sub == "scale" else with_kind(t.rt, old)
    try:
        if ctype == patches.MERGE_PATCH:
            patched = patches.merge_patch(current, body)
        elif ctype == patches.STRATEGIC_MERGE_PATCH:
            patched = patches.strategic_merge_patch(current, body)
        elif ctype == patches.JSON_PATCH:
            patched = patches.json_patch(current, body)
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{patches.JSON_PATCH}, {patches.MERGE_PATCH}, {patches.STRATEGIC_MERGE_PATCH}",
            )
    except patches.PatchError as exc:
        raise ApiError(422, "Invalid", str(exc)) from exc
    if not isinstance(patched, dict):
        raise bad_request("patch result is not an object")
    if t.sub == "scale":
        return Response.json(200, _scale(_set_replicas(ctx, req, t, old, patched)))
    # A patch carries a resourceVersion precondition only if it sets one explicitly.
    body_meta = body.get("metadata") if isinstance(body, dict) else None
    wanted_rv = body_meta.get("resourceVersion") if isinstance(body_meta, dict) else None
    patched.setdefault("metadata", {})
    if wanted_rv:
        patched["metadata"]["resourceVersion"] = wanted_rv
    else:
        patched["metadata"].pop("resourceVersion", None)
    return Response.json(200, with_kind(t.rt, _finish_update(ctx, req, t, old, patched)))


async def _delete_options(req: Request) -> Obj:
    opts: Obj = {}
    raw = await req.body()
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise bad_request(f"error decoding DeleteOptions: {exc}") from exc
        if isinstance(parsed, dict):
            opts = parsed
    grace = req.q_int("gracePeriodSeconds")
    if grace is not None:
        opts["gracePeriodSeconds"] = grace
    if req.q("dryRun"):
        opts["dryRun"] = [req.q("dryRun")]
    return opts


def _check_preconditions(rt: ResourceType, obj: Obj, opts: Obj) -> None:
    pre = opts.get("preconditions") or {}
    meta = obj["metadata"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rt.qualified} "{meta["name"]}": Precondition failed: '  # noqa: E501
            f"UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}",
        )
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
        raise ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rt.qualified} "{meta["name"]}": Precondition failed: '  # noqa: E501
            f"ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "  # noqa: E501
            f"{meta.get('resourceVersion')}",
        )


def delete_one(ctx: Context, rt: ResourceType, obj: Obj, opts: Obj) -> Obj:
    meta = obj["metadata"]
    ns, name = meta.get("namespace", ""), meta["name"]
    _check_preconditions(rt, obj, opts)
    if "All" in (opts.get("dryRun") or []):
        return obj
    try:
        if rt is PODS:
            grace = opts.get("gracePeriodSeconds")
            return ctx.cluster.delete_pod(ns, name, int(grace) if grace is not None else None)
        if rt is NAMESPACES:
            for other in (PODS, STATEFULSETS):
                for o in ctx.store.list(other.key, name):
                    ctx.store.delete(other.key, name, o["metadata"]["name"])
        return ctx.store.delete(rt.key, ns, name)
    except StoreError as exc:
        raise not_found(rt, name) from exc


async def delete_object(ctx: Context, req: Request, t: Target) -> Response:
    obj = _load(ctx, t)
    opts = await _delete_options(req)
    return Response.json(200, with_kind(t.rt, delete_one(ctx, t.rt, obj, opts)))


async def delete_collection(ctx: Context, req: Request, t: Target) -> Response:
    labels, fields = _selectors(req, t.rt)
    opts = await _delete_options(req)
    deleted = []
    for obj in ctx.store.list(t.rt.key, t.namespace):
        if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj):
            try:
                deleted.append(delete_one(ctx, t.rt, obj, opts))
            except ApiError as exc:
                if exc.code != 404:
                    raise
    for o in deleted:
        o.pop("kind", None)
        o.pop("apiVersion", None)
    return Response.json(
        200,
        {
            "kind": f"{t.rt.kind}List",
            "apiVersion": t.rt.api_version,
            "metadata": {"resourceVersion": str(ctx.store.rv)},
            "items": deleted,
        },
    )

"""The three patch formats of the Kubernetes API: JSON merge, strategic merge, JSON patch."""

from __future__ import annotations

import copy
from typing import Any

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class PatchError(ValueError):
    """The patch cannot be applied; the API answers 422 (or 400 for malformed input)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# The patchMergeKey of the list fields this simulator's objects have (from the Go API
# types' struct tags); lists not named here are replaced wholesale, like atomic lists.
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "podIPs": "ip",
    "hostIPs": "ip",
}
# Primitive lists with patchStrategy "merge": union rather than replace.
MERGE_PRIMITIVE_LISTS = {"finalizers"}


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch (sigs.k8s.io/structured-merge-diff semantics for built-ins).

    Supports the directives kubectl emits: ``$patch: replace|delete|merge``,
    ``$retainKeys``, ``$setElementOrder/<list>`` (ordering hint, honoured) and
    ``$deleteFromPrimitiveList/<list>``.
    """
    return _smp_map(target if isinstance(target, dict) else {}, patch)


def _smp_map(target: dict[str, Any], patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch: expected an object")
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = copy.deepcopy(target)
    retain = patch.get("$retainKeys")
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(result.get(key) if isinstance(result.get(key), dict) else {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for field, order in orders.items():
        result[field] = _apply_order(field, result.get(field), order)
    return result


def _smp_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    current_list = copy.deepcopy(current) if isinstance(current, list) else []
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    merge_key = MERGE_KEYS.get(field)
    if merge_key is None:
        if field in MERGE_PRIMITIVE_LISTS:
            return current_list + [p for p in patch if p not in current_list]
        return copy.deepcopy(patch)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {merge_key}")
        idx = next(
            (
                i
                for i, c in enumerate(current_list)
                if isinstance(c, dict) and c.get(merge_key) == item[merge_key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                current_list.pop(idx)
            continue
        if idx is None:
            current_list.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            current_list[idx] = _smp_map(current_list[idx], item)
    return current_list


def _apply_order(field: str, items: Any, order: list[Any]) -> Any:
    if not isinstance(items, list):
        return items
    key = MERGE_KEYS.get(field)

    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else x

    wanted = [ident(o) for o in order]
    ranked = sorted(
        range(len(items)),
        key=lambda i: (
            wanted.index(ident(items[i])) if ident(items[i]) in wanted else len(wanted),
            i,
        ),
    )
    return [items[i] for i in ranked]


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 operations: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise PatchError("json patch: expected an array of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"json patch: malformed operation {op!r}")
        kind, path = op["op"], op["path"]
        if kind == "add":
            doc = _put(doc, path, copy.deepcopy(op.get("value")), insert=True)
        elif kind == "remove":
            doc, _ = _take(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            doc = _put(doc, path, copy.deepcopy(op.get("value")), insert=False)
        elif kind == "move":
            doc, value = _take(doc, op["from"])
            doc = _put(doc, path, value, insert=True)
        elif kind == "copy":
            doc = _put(doc, path, copy.deepcopy(_get(doc, op["from"])), insert=True)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"json patch: invalid path {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    if not tokens:
        raise PatchError("json patch: cannot operate on the whole document")
    cur = doc
    for t in tokens[:-1]:
        cur = _step(cur, t, path)
    return cur, tokens[-1]


def _step(cur: Any, token: str, path: str) -> Any:
    if isinstance(cur, dict):
        if token not in cur:
            raise PatchError(f"doc is missing path: {path!r}")
        return cur[token]
    if isinstance(cur, list):
        try:
            return cur[int(token)]
        except (ValueError, IndexError) as exc:
            raise PatchError(f"doc is missing path: {path!r}") from exc
    raise PatchError(f"doc is missing path: {path!r}")


def _get(doc: Any, path: str) -> Any:
    cur = doc
    for t in _tokens(path):
        cur = _step(cur, t, path)
    return cur


def _put(doc: Any, path: str, value: Any, insert: bool) -> Any:
    if path == "":
        return value
    parent, last = _parent(doc, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            idx = int(last)
            if insert:
                parent.insert(idx, value)
            else:
                parent[idx] = value
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _take(doc: Any, path: str) -> tuple[Any, Any]:
    parent, last = _parent(doc, path)
    try:
        if isinstance(parent, dict):
            return doc, parent.pop(last)
        if isinstance(parent, list):
            return doc, parent.pop(int(last))
    except (KeyError, ValueError, IndexError) as exc:
        raise PatchError(f"doc is missing path: {path!r}") from exc
    raise PatchError(f"doc is missing path: {path!r}")

"""The Kubernetes permissions code asks for, derived from its client calls (AST).

The chart's RBAC tests (tests/deploy/test_chart_rbac.py) compare them with the Roles the
chart renders; tests/cluster/test_rbac.py with what a real API server allows.
"""

from __future__ import annotations

import ast
import functools
import re

from kubernetes.aio import client as aio_client

from tests.deploy.chart import ROOT

Permission = tuple[str, str, str]  # (apiGroup, resource, verb)

# Kubernetes client API classes the layer may use, and their API group.
API_CLASSES: dict[type, str] = {
    aio_client.CoreV1Api: "",
    aio_client.AppsV1Api: "apps",
    aio_client.EventsV1Api: "events.k8s.io",
    aio_client.CoordinationV1Api: "coordination.k8s.io",
}
VERBS = {
    "list": "list",
    "read": "get",
    "delete": "delete",
    "patch": "patch",
    "replace": "update",
    "create": "create",
    # A websocket upgrade (exec, attach, port-forward): what current clusters authorize.
    "connect_get": "create",
}
# snake_case resource in a method name -> RBAC resource
RESOURCES = {
    "pod": "pods",
    "pod_log": "pods/log",
    "pod_status": "pods/status",
    "pod_eviction": "pods/eviction",
    "pod_portforward": "pods/portforward",
    "event": "events",
    "stateful_set": "statefulsets",
    "stateful_set_scale": "statefulsets/scale",
    "stateful_set_status": "statefulsets/status",
    "namespace": "namespaces",
    "secret": "secrets",
    "config_map": "configmaps",
    "service": "services",
    "endpoints": "endpoints",
    "lease": "leases",
}
_API_CALL = re.compile(r"^(list|read|delete|patch|replace|create|connect)_")
_METHOD = re.compile(
    r"^(list|read|delete|patch|replace|create|connect_get)_(namespaced_)?([a-z_]+?)"
    r"(_for_all_namespaces)?$"
)
_SUFFIXES = ("_without_preload_content", "_with_http_info")
LAYER = ROOT / "backend" / "kube"


def _api_group_of(method: str) -> str | None:
    """The API group when ``method`` is an API call of a client class, else None."""
    for cls, group in API_CLASSES.items():
        if _API_CALL.match(method) and method in vars(cls):
            return group
    return None


def _permissions_of_call(
    node: ast.Attribute, call: ast.Call | None, where: str
) -> list[Permission]:
    group = _api_group_of(node.attr)
    if group is None:
        return []
    name = node.attr
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    m = _METHOD.match(name)
    assert m, f"{where}: a Kubernetes API call this test cannot map to RBAC"
    verb_word, namespaced, resource_word, all_namespaces = m.groups()
    assert namespaced and not all_namespaces, (
        f"{where} is cluster-wide: the chart grants namespaced Roles only"
    )
    assert resource_word in RESOURCES, f"{where}: add {resource_word!r} to RESOURCES"
    resource = RESOURCES[resource_word]
    watch = call is not None and any(
        k.arg == "watch" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in call.keywords
    )
    verb = "watch" if watch else VERBS[verb_word]
    return [(group, resource, verb)]


def _calls(tree: ast.AST) -> dict[int, ast.Call]:
    """The call each attribute is made by, or handed to (``self._stream(core.list_…,
    watch=True)`` is a watch)."""
    calls: dict[int, ast.Call] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            calls[id(n.func)] = n
            for arg in n.args:
                calls.setdefault(id(arg), n)
    return calls


@functools.cache
def layer_methods() -> dict[str, set[Permission]]:
    """What each ``KubeApi`` method asks of the API server (from its source)."""
    tree = ast.parse((LAYER / "api.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "KubeApi")
    methods: dict[str, set[Permission]] = {}
    for fn in cls.body:
        if not isinstance(fn, ast.AsyncFunctionDef | ast.FunctionDef):
            continue
        calls = _calls(fn)
        found: set[Permission] = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Attribute):
                where = f"backend/kube/api.py:{node.lineno} {node.attr}"
                found.update(_permissions_of_call(node, calls.get(id(node)), where))
        if found:
            methods[fn.name] = found
    return methods


@functools.cache
def layer_functions() -> dict[str, set[str]]:
    """Module-level functions of the layer and the ``KubeApi`` methods they call."""
    methods = layer_methods()
    functions: dict[str, set[str]] = {}
    for path in LAYER.glob("*.py"):
        for fn in ast.parse(path.read_text()).body:
            if isinstance(fn, ast.AsyncFunctionDef | ast.FunctionDef):
                used = {
                    n.attr
                    for n in ast.walk(fn)
                    if isinstance(n, ast.Attribute) and n.attr in methods
                }
                if used:
                    functions[fn.name] = used
    return functions


def permissions_used_by(package: str) -> dict[Permission, list[str]]:
    """Every (group, resource, verb) code under ``package`` can ask for, with where: the
    layer methods it calls, directly or through the layer's functions."""
    methods, functions = layer_methods(), layer_functions()
    used: dict[Permission, list[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if path == LAYER / "api.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            name = (
                node.attr
                if isinstance(node, ast.Attribute)
                else node.id
                if isinstance(node, ast.Name)
                else None
            )
            called = {name} & methods.keys() if name else set()
            if name in functions:
                called |= functions[name]
            for method in called:
                where = f"{path.relative_to(ROOT)}:{node.lineno} {name}"
                for permission in methods[method]:
                    used.setdefault(permission, []).append(where)
    return used


@functools.cache
def permissions_used_by_backend() -> dict[Permission, list[str]]:
    return permissions_used_by("backend")

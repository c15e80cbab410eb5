"""RBAC: the backend gets exactly what its code uses, in its namespace only.

The rules the backend needs are not written down here by hand: they are derived from the
Kubernetes client calls in backend/ (AST), so a new call without a matching rule in the
chart, or a rule nothing uses any more, fails this test. Then the rendered Role is loaded
into the API simulator (tests/kubesim) and the backend's real discovery and actions run
with exactly those permissions.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.aio import client as aio_client

from tests.deploy.chart import NAMESPACE, ROOT, VARIANTS, render

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


def granted(rules: list[dict[str, Any]]) -> set[Permission]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def all_roles_and_bindings() -> Iterator[tuple[str, dict[str, Any]]]:
    for variant, values in VARIANTS.items():
        for doc in render(values).docs:
            yield variant, doc


# ------------------------------------------------------------------------ static checks


def test_backend_uses_what_the_chart_expects() -> None:
    """Guards the derivation itself: the calls we know the backend makes are found."""
    used = permissions_used_by_backend()
    assert ("", "pods", "list") in used
    assert ("", "pods", "watch") in used
    assert ("", "pods", "delete") in used
    assert ("", "pods/log", "get") in used


REMEDIATION_ON = {"backend": {"remediation": {"enabled": True}}}
# Only the election asks for these, and it runs only with the automatic recovery on.
ELECTION = {
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "update"),
}


def test_backend_role_grants_exactly_what_the_backend_uses() -> None:
    role = render(REMEDIATION_ON).get("Role", "loco-backend")
    have = granted(role["rules"])
    need = permissions_used_by_backend()
    missing = {p: need[p] for p in need.keys() - have}
    unused = have - need.keys()
    assert not missing, f"the backend calls these but its Role does not allow them: {missing}"
    assert not unused, f"the backend's Role allows these but no backend code uses them: {unused}"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["loco-remediation"],
            "verbs": ["get", "update"],
        },
    ]


def test_without_remediation_the_backend_gets_no_lease_rights() -> None:
    need = permissions_used_by_backend()
    assert all(
        where.startswith(("backend/kube/lease.py", "backend/remediation/"))
        for p in ELECTION
        for where in need[p]
    ), "only the election uses leases"
    have = granted(render().get("Role", "loco-backend")["rules"])
    assert have == need.keys() - ELECTION


def test_backend_role_is_bound_to_the_backend_only() -> None:
    r = render()
    binding = r.get("RoleBinding", "loco-backend")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "loco-backend",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "loco-backend", "namespace": NAMESPACE}
    ]
    assert r.backend_pod["spec"]["serviceAccountName"] == "loco-backend"
    assert r.backend_pod["spec"]["automountServiceAccountToken"] is True
    # the token is mounted into the backend pod only, not into every pod using the account
    assert r.get("ServiceAccount", "loco-backend")["automountServiceAccountToken"] is False


def test_emulators_have_no_api_access() -> None:
    r = render()
    assert r.emulator_pod["spec"]["serviceAccountName"] == "loco-emulator"
    assert r.emulator_pod["spec"]["automountServiceAccountToken"] is False
    assert r.get("ServiceAccount", "loco-emulator")["automountServiceAccountToken"] is False
    for binding in r.all("RoleBinding"):
        assert {"kind": "ServiceAccount", "name": "loco-emulator", "namespace": NAMESPACE} not in (
            binding.get("subjects") or []
        )


def test_no_wildcards_and_nothing_cluster_wide() -> None:
    for variant, doc in all_roles_and_bindings():
        assert doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"), variant
        if doc["kind"] == "Role":
            for rule in doc["rules"]:
                for key in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[key], f"{variant}: wildcard in {doc['metadata']['name']}"
                assert "resourceNames" not in rule or rule["resourceNames"]
                assert "nonResourceURLs" not in rule
                # nothing that reads or writes secrets, nothing that escalates
                assert not {"secrets", "roles", "rolebindings", "pods/exec"} & set(
                    rule["resources"]
                )
                assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
        if doc["kind"] == "RoleBinding":
            assert doc["roleRef"]["kind"] == "Role", variant


def test_console_needs_what_the_operator_role_grants() -> None:
    """What the console asks with the operator's credentials is in the operator Role; its
    reads are in the read-only Role."""
    r = render()
    operator = granted(r.get("Role", "loco-operator")["rules"])
    viewer = granted(r.get("Role", "loco-viewer")["rules"])
    need = permissions_used_by("locotui")
    assert ("", "pods", "watch") in need and ("apps", "statefulsets", "patch") in need
    missing = {p: need[p] for p in need.keys() - operator}
    assert not missing, f"the console calls these but the operator Role does not allow: {missing}"
    reads = {p for p in need if p[2] in ("get", "list", "watch")}
    assert reads <= viewer, f"reads the viewer Role lacks: {reads - viewer}"


def test_operator_and_read_only_roles() -> None:
    r = render()
    operator = granted(r.get("Role", "loco-operator")["rules"])
    viewer = granted(r.get("Role", "loco-viewer")["rules"])
    read = {
        (g, res, v)
        for g, res in (("", "pods"), ("", "events"), ("apps", "statefulsets"))
        for v in ("get", "list", "watch")
    } | {("", "pods/log", "get")}
    assert viewer == read  # no pods/portforward: a VNC viewer can type into the guest
    assert operator == read | {
        ("", "pods/portforward", "get"),
        ("", "pods/portforward", "create"),
        ("", "pods", "delete"),
        ("apps", "statefulsets", "patch"),
        ("apps", "statefulsets/scale", "get"),
        ("apps", "statefulsets/scale", "patch"),
    }
    # no bindings unless subjects are given
    assert r.maybe("RoleBinding", "loco-operator") is None
    assert r.maybe("RoleBinding", "loco-viewer") is None


def test_operator_roles_bound_to_given_subjects() -> None:
    r = render(VARIANTS["bound-roles"])
    op = r.get("RoleBinding", "loco-operator")
    assert op["roleRef"]["name"] == "loco-operator" and op["roleRef"]["kind"] == "Role"
    assert op["subjects"] == [{"kind": "Group", "name": "oncall"}]
    assert r.get("RoleBinding", "loco-viewer")["subjects"] == [{"kind": "User", "name": "ada"}]


def test_optional_roles_can_be_left_out() -> None:
    r = render(VARIANTS["no-optional-roles"])
    assert [d["metadata"]["name"] for d in r.all("Role")] == ["loco-backend"]


def test_backend_role_can_be_left_to_the_user() -> None:
    r = render({"rbac": {"create": False}})
    assert r.maybe("Role", "loco-backend") is None
    assert r.maybe("RoleBinding", "loco-backend") is None
    assert r.get("ServiceAccount", "loco-backend")


# ------------------------------------------------------------------------ against the simulator


def sim_rules(role: dict[str, Any], namespace: str) -> tuple[Any, ...]:
    from tests.kubesim import Rule

    return tuple(
        Rule(
            verbs=tuple(rule["verbs"]),
            resources=tuple(rule["resources"]),
            api_groups=tuple(rule["apiGroups"]),
            namespaces=(namespace,),
        )
        for rule in role["rules"]
    )


class Sink:
    def __init__(self) -> None:
        self.targets: dict[str, Any] = {}
        self.states: list[Any] = []
        self.removed: list[str] = []

    def sync(self, targets: list[Any]) -> None:
        self.targets = {t.name: t for t in targets}

    def upsert(self, target: Any) -> None:
        self.targets[target.name] = target

    def remove(self, name: str) -> None:
        self.removed.append(name)
        self.targets.pop(name, None)

    def discovery_state(self, state: Any) -> None:
        self.states.append(state)


async def until(predicate: Any, what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    """The simulator with the chart's StatefulSet created through the API (3 pods)."""
    from tests.kubesim import KubeSim

    sim = KubeSim(namespace=NAMESPACE, emulators=0, kubeconfig=tmp_path / "kubeconfig")
    sim.start()
    try:
        with sim.api_client() as admin:
            from kubernetes import client as k8s_client

            apps = k8s_client.AppsV1Api(admin)
            apps.create_namespaced_stateful_set(NAMESPACE, render().statefulset)
        sim.wait_pods_ready(3, timeout=15, namespace=NAMESPACE)
        yield sim
    finally:
        sim.stop()


def token_for(sim: Any, name: str, role: dict[str, Any]) -> Any:
    from tests.kubesim import Token

    token = Token(
        f"{name}-token", f"system:serviceaccount:{NAMESPACE}:{name}", sim_rules(role, NAMESPACE)
    )
    sim.add_token(token)
    return token


async def api_as(sim: Any, token: Any) -> Any:
    """The Kubernetes layer as the holder of ``token`` (through a breaker, as the backend)."""
    from backend.breaker import TargetBreaker
    from backend.kube.api import KubeApi
    from backend.kube.config import connect

    conn = await connect(sim.kubeconfig, sim.context_for(token), env={})
    return KubeApi(conn, call=TargetBreaker("kubernetes-api", 3, 5.0).call)


async def test_backend_works_with_exactly_its_role(cluster: Any) -> None:
    from backend.discovery.kubernetes import KubernetesDiscovery
    from backend.models import NamespaceSource

    sim = cluster
    token = token_for(sim, "loco-backend", render().get("Role", "loco-backend"))
    api = await api_as(sim, token)
    discovery = KubernetesDiscovery(
        api, NAMESPACE, NamespaceSource.SERVICE_ACCOUNT, resync_seconds=30
    )
    sink = Sink()
    task = asyncio.create_task(discovery.run(sink))
    try:
        names = [f"loco-emulator-{i}" for i in range(3)]
        await until(lambda: sorted(sink.targets) == names, "3 emulators discovered")
        assert all(s.ok for s in sink.states), [s.error for s in sink.states]
        for target in sink.targets.values():
            assert target.health_url.endswith(":8080")
            assert target.vnc.endswith(":5900")
        logs = await api.pod_log(NAMESPACE, "loco-emulator-1", tail=10)
        assert isinstance([line async for line in logs.lines()], list)
        await api.delete_pod(NAMESPACE, "loco-emulator-1")
        # the watch (not only the list) works: the deletion arrives as an event
        await until(lambda: "loco-emulator-1" in sink.removed, "deletion seen by the watch")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await discovery.close()


async def test_read_only_role_cannot_restart(cluster: Any) -> None:
    from backend.kube.errors import KubeError

    sim = cluster
    token = token_for(sim, "viewer", render().get("Role", "loco-viewer"))
    api = await api_as(sim, token)
    try:
        # viewers read logs ...
        logs = await api.pod_log(NAMESPACE, "loco-emulator-0", tail=5)
        assert isinstance([line async for line in logs.lines()], list)
        # ... but do not restart emulators
        with pytest.raises(KubeError) as info:
            await api.delete_pod(NAMESPACE, "loco-emulator-0")
        assert info.value.status == 403
    finally:
        await api.close()


async def test_backend_without_watch_cannot_discover(cluster: Any) -> None:
    """The simulator enforces verbs: dropping one from the Role breaks the backend."""
    from backend.discovery.kubernetes import KubernetesDiscovery
    from backend.models import NamespaceSource

    sim = cluster
    role = render().get("Role", "loco-backend")
    crippled = {
        "rules": [
            {**rule, "verbs": [v for v in rule["verbs"] if v != "watch"]} for rule in role["rules"]
        ]
    }
    api = await api_as(sim, token_for(sim, "no-watch", crippled))
    discovery = KubernetesDiscovery(api, NAMESPACE, NamespaceSource.SERVICE_ACCOUNT)
    sink = Sink()
    task = asyncio.create_task(discovery.run(sink))
    try:
        await until(lambda: any(not s.ok for s in sink.states), "a failed discovery state")
        error = next(s.error for s in sink.states if not s.ok)
        assert "403" in error and "watch" in error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await discovery.close()

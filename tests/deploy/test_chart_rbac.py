"""RBAC: the backend gets exactly what its code uses, in its namespace only.

The rules the backend needs are not written down here by hand: they are derived from the
Kubernetes client calls in backend/ (AST), so a new call without a matching rule in the
chart, or a rule nothing uses any more, fails this test. tests/cluster/test_rbac.py then
proves the installed Roles on a real API server: every derived permission allowed, what
must not be denied, and the backend's discovery and actions running with exactly its Role.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.deploy.chart import NAMESPACE, VARIANTS, render
from tests.deploy.permissions import Permission, permissions_used_by, permissions_used_by_backend


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

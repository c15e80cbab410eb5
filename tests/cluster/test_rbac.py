"""Least privilege, proven on a real API server with RBAC on.

Every permission the backend's code uses (derived from its Kubernetes client calls, see
tests/deploy/test_chart_rbac.py) and every one the console's actions need is allowed for
the chart's Roles, and what they must not do is denied (``kubectl auth can-i --as``). Then
the backend's own discovery and actions run with exactly the chart's Role.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.breaker import TargetBreaker
from backend.discovery.kubernetes import KubernetesDiscovery
from backend.kube.api import KubeApi
from backend.kube.config import connect
from backend.kube.errors import KubeError
from backend.models import NamespaceSource
from localcluster import access
from tests.cluster.fleet import BACKEND_SA, CLUSTER, OPERATOR, STATEFULSET, VIEWER, Fleet
from tests.deploy.permissions import permissions_used_by_backend
from tests.support.waiting import eventually

pytestmark = CLUSTER

# What the console does with the operator's credentials (locotui/data/kube_client.py):
# watch and read pods, read their logs and events, delete a pod (restart), patch the
# StatefulSet (rolling restart) and read it for the rollout's progress.
CONSOLE_READS = [
    ("get", "pods"),
    ("list", "pods"),
    ("watch", "pods"),
    ("get", "pods/log"),
    ("list", "events"),
    ("get", "statefulsets.apps"),
    ("list", "statefulsets.apps"),
]
# Port-forward to a pod's VNC: the operator's only (a viewer could type into the guest).
CONSOLE_WRITES = [
    ("delete", "pods"),
    ("patch", "statefulsets.apps"),
    ("create", "pods/portforward"),
]
# Never for anyone of the release: secrets, running things in pods, creating workloads,
# anything outside the namespace or cluster-wide.
NOBODY = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("create", "pods"),
    ("create", "pods/exec"),
    ("patch", "deployments.apps"),
    ("delete", "statefulsets.apps"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
]


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


def can_i(fleet: Fleet, who: str, verb: str, resource: str, namespace: str | None = None) -> bool:
    kind, _, sub = resource.partition("/")
    args = ["auth", "can-i", verb, kind, f"--as={who}", "-n", namespace or fleet.namespace]
    if sub:
        args.append(f"--subresource={sub}")
    result = fleet.cluster.kubectl(*args)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {result.stderr}"
    return answer == "yes"


def _resource(group: str, resource: str) -> str:
    kind, _, sub = resource.partition("/")
    return f"{kind}.{group}/{sub}" if group and sub else f"{kind}.{group}" if group else resource


def test_backend_may_do_what_its_code_does_and_nothing_more(fleet: Fleet) -> None:
    """Installed with automatic recovery off (the default): the Lease rights its election
    uses are not granted (tests/cluster/test_remediation.py elects with them on)."""
    used = permissions_used_by_backend()
    assert used
    for group, resource, verb in used:
        allowed = can_i(fleet, BACKEND_SA, verb, _resource(group, resource))
        assert allowed is (resource != "leases"), (verb, resource)
    backend_never = [
        ("patch", "statefulsets.apps"),
        ("get", "pods/exec"),
        ("create", "pods/portforward"),
    ]
    for verb, resource in [*NOBODY, *backend_never]:
        assert not can_i(fleet, BACKEND_SA, verb, resource), (verb, resource)
    # Its own namespace only.
    assert not can_i(fleet, BACKEND_SA, "list", "pods", namespace="default")
    assert not can_i(fleet, BACKEND_SA, "list", "pods", namespace="kube-system")
    assert not can_i(fleet, BACKEND_SA, "list", "nodes")


def test_the_emulators_may_do_nothing(fleet: Fleet) -> None:
    emulator = f"system:serviceaccount:{fleet.namespace}:loco-emulator"
    for verb, resource in [*CONSOLE_READS, *CONSOLE_WRITES, *NOBODY]:
        assert not can_i(fleet, emulator, verb, resource), (verb, resource)
    pod = fleet.pod(f"{STATEFULSET}-0")
    assert pod is not None and pod["spec"]["automountServiceAccountToken"] is False


def test_operator_and_viewer_roles(fleet: Fleet) -> None:
    for verb, resource in CONSOLE_READS:
        assert can_i(fleet, OPERATOR, verb, resource), (OPERATOR, verb, resource)
        assert can_i(fleet, VIEWER, verb, resource), (VIEWER, verb, resource)
    for verb, resource in CONSOLE_WRITES:
        assert can_i(fleet, OPERATOR, verb, resource), (OPERATOR, verb, resource)
        assert not can_i(fleet, VIEWER, verb, resource), (VIEWER, verb, resource)
    assert can_i(fleet, OPERATOR, "patch", "statefulsets.apps/scale")
    for who in (OPERATOR, VIEWER):
        for verb, resource in NOBODY:
            assert not can_i(fleet, who, verb, resource), (who, verb, resource)
        assert not can_i(fleet, who, "list", "pods", namespace="default")


# ------------------------------------------------------ the backend's code, with the Role


def _service_account(fleet: Fleet, name: str, role: dict[str, Any] | None) -> Path:
    rules = None if role is None else role["rules"]
    return access.service_account_kubeconfig(fleet.cluster, fleet.namespace, name, rules)


@pytest.fixture
def accounts(fleet: Fleet) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        for kind in ("rolebinding", "role", "serviceaccount"):
            fleet.kubectl("delete", kind, name, "--ignore-not-found")


async def _api(kubeconfig: Path) -> KubeApi:
    """The Kubernetes layer with these credentials, through a breaker as the backend has it."""
    conn = await connect(kubeconfig, env={})
    return KubeApi(conn, call=TargetBreaker("kubernetes-api", 3, 5.0).call)


async def _log(api: KubeApi, namespace: str, pod: str, tail: int) -> str:
    stream = await api.pod_log(namespace, pod, tail=tail)
    return "\n".join([line async for line in stream.lines()])


def _role(fleet: Fleet, name: str) -> dict[str, Any]:
    return dict(fleet.get("role", name))


async def test_backend_code_works_with_exactly_the_charts_role(
    fleet: Fleet, accounts: list[str]
) -> None:
    accounts.append("rbac-backend")
    kubeconfig = _service_account(fleet, "rbac-backend", _role(fleet, "loco-backend"))
    api = await _api(kubeconfig)
    discovery = KubernetesDiscovery(
        api, fleet.namespace, NamespaceSource.SERVICE_ACCOUNT, resync_seconds=60
    )
    sink = Sink()
    task = asyncio.create_task(discovery.run(sink))
    try:
        names = [f"{STATEFULSET}-{i}" for i in range(3)]
        await eventually(lambda: sorted(sink.targets) == names, 30, "3 emulators discovered")
        assert all(s.ok for s in sink.states), [s.error for s in sink.states]
        log = await _log(api, fleet.namespace, f"{STATEFULSET}-1", 10)
        assert "QEMU" in log or "supervisor" in log, log
        await api.delete_pod(fleet.namespace, f"{STATEFULSET}-1")
        # The watch (not only the list) works: the deletion arrives as an event.
        await eventually(
            lambda: f"{STATEFULSET}-1" in sink.removed, 60, "deletion seen by the watch"
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await discovery.close()


async def test_a_role_without_watch_breaks_discovery_with_the_servers_words(
    fleet: Fleet, accounts: list[str]
) -> None:
    """The API server enforces each verb: dropping one from the Role breaks the backend."""
    role = _role(fleet, "loco-backend")
    crippled = {
        "rules": [
            {**rule, "verbs": [v for v in rule["verbs"] if v != "watch"]} for rule in role["rules"]
        ]
    }
    accounts.append("rbac-no-watch")
    api = await _api(_service_account(fleet, "rbac-no-watch", crippled))
    discovery = KubernetesDiscovery(api, fleet.namespace, NamespaceSource.SERVICE_ACCOUNT)
    sink = Sink()
    task = asyncio.create_task(discovery.run(sink))
    try:
        await eventually(lambda: any(not s.ok for s in sink.states), 30, "a failed discovery state")
        error = next(s.error for s in sink.states if not s.ok)
        assert "403" in error and "cannot watch resource" in error, error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await discovery.close()


async def test_the_viewer_reads_logs_but_cannot_restart(fleet: Fleet) -> None:
    api = await _api(fleet.kubeconfig_for(VIEWER))
    try:
        assert "supervisor" in await _log(api, fleet.namespace, f"{STATEFULSET}-0", 50)
        with pytest.raises(KubeError) as info:
            await api.delete_pod(fleet.namespace, f"{STATEFULSET}-0")
    finally:
        await api.close()
    assert info.value.status == 403
    assert f'User "{VIEWER}" cannot delete resource "pods"' in info.value.message, info.value

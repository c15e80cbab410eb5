"""The automatic recovery on the real cluster: two backend replicas, one acting.

The chart runs the backend twice with the policy on. They elect the acting replica through
a real coordination.k8s.io Lease; the other serves the fleet and does nothing. The test
freezes a guest's picture (over the test guest's serial port, inside its pod), sees the
leader reset it, deletes the leader's pod and checks that the other replica takes over
within the lease's duration and carries on the incident it was handed (the recovery is
reported by the new leader) without acting on the guest a second time.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from localcluster import helm
from localcluster.cluster import Cluster
from tests.cluster.fleet import CLUSTER, RELEASE, TEST_VALUES, Fleet
from tests.support.supervisor import audited
from tests.support.waiting import poll_until

pytestmark = CLUSTER

NAMESPACE = "loco-failover"
LEASE_SECONDS = 6
EMULATOR = "loco-emulator-0"
SERIAL = "/var/lib/loco/serial.sock"


def _values() -> dict[str, Any]:
    values = copy.deepcopy(TEST_VALUES)
    values["backend"] = {
        "replicas": 2,
        "remediation": {
            "enabled": True,
            "cooldownSeconds": 3,
            "leaseDurationSeconds": LEASE_SECONDS,
            # A long watch after the reset and a long "recovered" window: the incident is
            # still open when the leader is deleted, so the new one must carry it on.
            "thresholds": {
                "testimage": {
                    "bad_for": 10,
                    "frozen_for": 5,
                    "watch_reset": 300,
                    "recovered_for": 45,
                }
            },
        },
    }
    return values


@pytest.fixture
def failover(cluster: Cluster) -> Iterator[Fleet]:
    fleet = Fleet(cluster, NAMESPACE, replicas=1)
    try:
        helm.install(cluster, namespace=NAMESPACE, release=RELEASE, replicas=1, values=_values())
        yield fleet
    finally:
        helm.uninstall(cluster, NAMESPACE, RELEASE)


def _backends(fleet: Fleet) -> dict[str, str]:
    """Live, Ready backend pods: name -> URL (the pod's own address)."""
    items = fleet.get("pods", "-l", "app.kubernetes.io/component=backend")["items"]
    return {
        p["metadata"]["name"]: f"http://{p['status']['podIP']}:8081"
        for p in items
        if fleet.ready(p) and p["status"].get("podIP")
    }


def _remediation(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/api/remediation", timeout=5).json())


def _leader(fleet: Fleet) -> tuple[str, dict[str, str]] | None:
    """The one acting replica when exactly one says so and the other agrees."""
    backends = _backends(fleet)
    if len(backends) != 2:
        return None
    states = {name: _remediation(url) for name, url in backends.items()}
    leaders = [name for name, s in states.items() if s["leader"]]
    if len(leaders) != 1 or any(s["holder"] != leaders[0] for s in states.values()):
        return None
    return leaders[0], backends


def _timeline(url: str) -> list[str]:
    entries = httpx.get(f"{url}/api/instances/{EMULATOR}/timeline", timeout=5).json()
    return [e["text"] for e in entries]


def _acted(fleet: Fleet, url: str) -> float:
    """Resets and restarts the replica at ``url`` carried out."""
    name = "loco_remediation_actions_total"
    return sum(fleet.metric(name, url, action=a, outcome="acted") for a in ("reset", "restart"))


def _resets_by_the_supervisor(fleet: Fleet) -> int:
    """``system_reset``s the emulator carried out (its audit lines in the pod's log)."""
    return audited(fleet.ok("logs", EMULATOR, "-c", "emulator"), "reset")


def _freeze(fleet: Fleet) -> None:
    """Tells the test guest to stop drawing, over its serial port inside the pod."""
    script = (
        "import socket; s = socket.socket(socket.AF_UNIX); "
        f"s.connect({SERIAL!r}); s.sendall(b'f'); s.close()"
    )
    fleet.ok("exec", EMULATOR, "-c", "emulator", "--", "python3", "-c", script)


def test_one_replica_acts_and_the_other_takes_over_without_acting_twice(
    failover: Fleet,
) -> None:
    fleet = failover
    fleet.wait_ready(1)
    elected = poll_until(lambda: _leader(fleet), 120, "one elected backend replica", interval=0.5)
    leader, backends = elected
    [(follower, follower_url)] = [(n, u) for n, u in backends.items() if n != leader]
    lease = fleet.get("lease", f"{RELEASE}-remediation")
    assert lease["spec"]["holderIdentity"] == leader
    assert lease["spec"]["leaseDurationSeconds"] == LEASE_SECONDS

    _freeze(fleet)
    poll_until(
        lambda: any(t.startswith("reset (acted)") for t in _timeline(backends[leader])),
        120,
        "the leader resetting the frozen guest",
        interval=0.5,
    )
    assert _acted(fleet, backends[leader]) == 1
    assert _acted(fleet, follower_url) == 0, "the replica that does not hold the lease does nothing"
    assert not any("(acted)" in t for t in _timeline(follower_url) if t.startswith("reset"))

    # The leader's pod is deleted, as a node drain or a rollout would: the other replica
    # takes the lease within its duration (plus one retry of the election and the time a
    # loaded machine takes to answer).
    fleet.ok("delete", "pod", leader, "--wait=false")
    started = time.monotonic()
    poll_until(
        lambda: _remediation(follower_url)["leader"],
        LEASE_SECONDS * 2 + 10,
        "the other replica taking over",
        interval=0.2,
    )
    took = time.monotonic() - started
    print(f"takeover {took:.1f} s after the leader's pod was deleted (lease {LEASE_SECONDS} s)")

    # It carries on the incident it was handed: the guest draws again after the reset, the
    # new leader closes the incident, and nobody reset it a second time.
    poll_until(
        lambda: any(t.startswith("recovered") for t in _timeline(follower_url)),
        120,
        "the new leader closing the incident it took over",
        interval=1.0,
    )
    assert _acted(fleet, follower_url) == 0, "the new leader did not act on it again"
    assert _resets_by_the_supervisor(fleet) == 1
    # The deleted leader's replacement joins as a follower.
    again = poll_until(lambda: _leader(fleet), 120, "two replicas, one leader", interval=0.5)
    assert again[0] == follower

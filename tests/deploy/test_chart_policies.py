"""The emulators' PodDisruptionBudget and NetworkPolicy: on by default, switchable, and
aimed at exactly the pods and ports they are meant for. (On a real cluster: the drain test
in tests/cluster.)"""

from __future__ import annotations

from typing import Any

from tests.deploy.chart import container, port_named, render, render_error


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_budget_keeps_all_but_one_emulator_up_by_default() -> None:
    r = render()
    budget = r.get("PodDisruptionBudget", "loco-emulator")["spec"]
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget
    # A sick emulator never blocks a drain.
    assert budget["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert budget["selector"] == r.statefulset["spec"]["selector"]
    assert _selects(budget["selector"], r.emulator_pod["metadata"]["labels"])
    assert not _selects(budget["selector"], r.backend_pod["metadata"]["labels"])


def test_budget_with_min_available() -> None:
    values = {"emulator": {"podDisruptionBudget": {"maxUnavailable": None, "minAvailable": "50%"}}}
    budget = render(values).get("PodDisruptionBudget", "loco-emulator")["spec"]
    assert budget["minAvailable"] == "50%" and "maxUnavailable" not in budget


def test_budget_needs_exactly_one_limit() -> None:
    both = {"emulator": {"podDisruptionBudget": {"minAvailable": 2}}}
    assert "not both" in render_error(both)
    neither = {"emulator": {"podDisruptionBudget": {"maxUnavailable": None}}}
    assert "needs maxUnavailable or minAvailable" in render_error(neither)
    assert "/emulator/podDisruptionBudget/maxUnavailable" in render_error(
        {"emulator": {"podDisruptionBudget": {"maxUnavailable": "half"}}}
    )


def test_policies_can_be_switched_off() -> None:
    r = render({"emulator": {"podDisruptionBudget": {"enabled": False}}})
    assert r.all("PodDisruptionBudget") == [] and r.all("NetworkPolicy")
    r = render({"networkPolicy": {"enabled": False}})
    assert r.all("NetworkPolicy") == [] and r.all("PodDisruptionBudget")


def test_only_the_backend_and_prometheus_reach_the_health_port() -> None:
    r = render()
    policy = r.get("NetworkPolicy", "loco-emulator")["spec"]
    assert _selects(policy["podSelector"], r.emulator_pod["metadata"]["labels"])
    assert policy["policyTypes"] == ["Ingress"], "egress stays open (DNS, nothing else needed)"
    [rule] = policy["ingress"]
    # One port: the supervisor's, by the name the backend also uses. VNC is not in it.
    assert rule["ports"] == [{"port": "health", "protocol": "TCP"}]
    assert port_named(r.emulator_container, "health") == 8080
    backend_peer, prometheus_peer = rule["from"]
    assert set(backend_peer) == {"podSelector"}, "the backend in the release's own namespace"
    assert _selects(backend_peer["podSelector"], r.backend_pod["metadata"]["labels"])
    assert not _selects(backend_peer["podSelector"], r.emulator_pod["metadata"]["labels"])
    assert prometheus_peer == {
        "namespaceSelector": {},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }


def test_network_policy_peers_follow_values() -> None:
    extra = {"ipBlock": {"cidr": "10.0.0.0/8"}}
    r = render(
        {
            "networkPolicy": {
                "prometheus": {"namespaceSelector": {"matchLabels": {"team": "obs"}}},
                "extraFrom": [extra],
            }
        }
    )
    peers = r.get("NetworkPolicy", "loco-emulator")["spec"]["ingress"][0]["from"]
    assert peers[1] == {
        "namespaceSelector": {"matchLabels": {"team": "obs"}},
        # Helm merges values: the default podSelector stays unless set to null.
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
    }
    assert peers[2] == extra


def test_without_backend_and_prometheus_nothing_gets_in() -> None:
    r = render({"backend": {"enabled": False}, "networkPolicy": {"prometheus": None}})
    assert r.get("NetworkPolicy", "loco-emulator")["spec"]["ingress"] == []
    assert container(r.emulator_pod, "emulator")

"""The scale benchmark's machinery on a small fleet, so it cannot rot unnoticed: pods on
kwok nodes beside the real one, bound to stand-in supervisors, discovered by the backend
through the real watch. The figures at 1000 pods come from bench/bench_cluster_scale.py."""

from __future__ import annotations

from pathlib import Path

from bench.bench_cluster_scale import KWOK_LABEL, NAMESPACE, measure
from localcluster.cluster import Cluster
from tests.cluster.fleet import CLUSTER

pytestmark = CLUSTER


def test_pods_on_simulated_nodes_are_discovered_and_forgotten(
    cluster: Cluster, tmp_path: Path
) -> None:
    result = measure(cluster, 40, 2.0, 1.0, tmp_path, lambda _m: None)
    assert result.pods == 40 and result.nodes == 1
    assert 0 < result.listed_s <= result.healthy_s
    assert result.rss_mib > 0
    # Everything the benchmark made is gone: no simulated node is left.
    nodes = cluster.kubectl("get", "nodes", "-l", f"{KWOK_LABEL}={NAMESPACE}", "-o", "name").stdout
    assert nodes.strip() == ""

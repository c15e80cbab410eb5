"""Fixtures of the tests against the real local cluster (deploy/localcluster).

``cluster`` is shared by every worker of the run (see localcluster/shared.py). Where the
cluster cannot run (not root, another kubelet or container runtime on the host, missing
packages) its tests are skipped with the reason in the summary; with CI=true they fail
instead, since CI must run them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from localcluster.cluster import Cluster
from localcluster.errors import ClusterError
from localcluster.shared import SharedCluster
from tests.cluster import fleet as fleet_module
from tests.cluster.fleet import Fleet


def _cannot(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"local cluster: {reason} (CI=true: the cluster tests must run)", pytrace=False)
    pytest.skip(f"local cluster: {reason}")


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    local = Cluster()
    if not local.is_up():
        reason = local.cannot_run()
        if reason:
            _cannot(reason)
    shared = SharedCluster(local)
    try:
        shared.acquire()
    except ClusterError as exc:
        pytest.fail(f"local cluster: {exc.line()}", pytrace=False)
    try:
        yield local
    finally:
        left = shared.release()
        assert not left, f"the host was not restored: {left}"


@pytest.fixture(scope="session")
def installed(cluster: Cluster) -> Iterator[Fleet]:
    """The chart as release ``loco`` in namespace ``loco-test``, 3 test emulators."""
    try:
        yield fleet_module.install(cluster)
    finally:
        fleet_module.uninstall(cluster)


@pytest.fixture
def fleet(installed: Fleet) -> Fleet:
    """The release with its 3 emulators and the backend Ready (a test before may have
    restarted, scaled or evicted them)."""
    installed.wait_ready(installed.replicas)
    return installed

"""Ready-made pytest fixtures. Import the ones you need into a test module (or list this
module in a conftest's ``pytest_plugins``):

    from tests.kubesim.fixtures import kubesim, kubesim_factory  # noqa: F401

* ``kubesim``          a running KubeSim: namespace "loco", StatefulSet ``loco-emulator``
                       with 3 Ready pods, kubeconfig in tmp_path (function scope).
* ``kubesim_factory``  ``make(**KubeSim kwargs) -> KubeSim``, started, stopped at teardown.
* ``k8s_api_client``   an official-client ``ApiClient`` for ``kubesim`` (admin token).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubesim.sim import KubeSim


@pytest.fixture
def kubesim(tmp_path: Path) -> Iterator[KubeSim]:
    with KubeSim(namespace="loco", emulators=3, kubeconfig=tmp_path / "kubeconfig") as sim:
        sim.wait_pods_ready(3)
        yield sim


@pytest.fixture
def kubesim_factory(tmp_path: Path) -> Iterator[Callable[..., KubeSim]]:
    started: list[KubeSim] = []

    def make(**kwargs: Any) -> KubeSim:
        kwargs.setdefault("kubeconfig", tmp_path / f"kubeconfig-{len(started)}")
        sim = KubeSim(**kwargs).start()
        started.append(sim)
        return sim

    yield make
    for sim in reversed(started):
        sim.stop()


@pytest.fixture
def k8s_api_client(kubesim: KubeSim) -> Iterator[Any]:
    client = kubesim.api_client()
    try:
        yield client
    finally:
        client.close()

"""One local cluster for every test worker of a run (only one kubelet fits on a host).

The first worker to ask starts it and the last one to leave stops it, unless it was
already running before the run (then it is left running). Workers register by pid in a
file guarded by an exclusive lock, so a worker that died without leaving is pruned and
the count never goes stale.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from localcluster import processes
from localcluster.cluster import Cluster


@dataclass
class _Registry:
    started_by_tests: bool = False
    users: list[int] = field(default_factory=list)


class SharedCluster:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        base = cluster.layout.cache
        self.lock_path = base / "test-users.lock"
        self.registry_path = base / "test-users.json"

    @contextmanager
    def _locked(self) -> Iterator[_Registry]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a worker starting the cluster holds it meanwhile
            registry = self._load()
            registry.users = [p for p in registry.users if processes.start_time(p) is not None]
            yield registry
            self.registry_path.write_text(json.dumps(vars(registry)))
        finally:
            os.close(fd)

    def _load(self) -> _Registry:
        try:
            return _Registry(**json.loads(self.registry_path.read_text()))
        except (OSError, ValueError, TypeError):
            return _Registry()

    def acquire(self) -> None:
        with self._locked() as registry:
            if not registry.users:
                registry.started_by_tests = not self.cluster.is_up()
                if registry.started_by_tests:
                    self.cluster.up()
            registry.users.append(os.getpid())

    def release(self) -> list[str]:
        """Leaves; the last one out stops a cluster the tests started. What was left behind."""
        with self._locked() as registry:
            registry.users = [p for p in registry.users if p != os.getpid()]
            if registry.users or not registry.started_by_tests:
                return []
            registry.started_by_tests = False
            return self.cluster.down()

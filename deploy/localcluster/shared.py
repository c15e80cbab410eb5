"""One local cluster for every program that uses it at the same time: the workers of a
test run, the soak (only one kubelet fits on a host).

The first user to ask starts it and the last one to leave stops it, unless it was already
running before the first one came (then it is left running). Users register by pid in a
file guarded by an exclusive lock, so a user that died without leaving is pruned and the
count never goes stale. The file names and the ``started_by_tests`` key are the ones the
test runs have always used, so a checkout from before the soak joined still agrees.
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
            fcntl.flock(fd, fcntl.LOCK_EX)  # a user starting the cluster holds it meanwhile
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
        """Registers this process; the first user in starts a cluster that is not up."""
        with self._locked() as registry:
            if not registry.users:
                registry.started_by_tests = not self.cluster.is_up()
                if registry.started_by_tests:
                    self.cluster.up()
            registry.users.append(os.getpid())

    def release(self) -> list[str]:
        """Leaves; the last one out stops a cluster that one of the users started. Returns
        what was left behind."""
        with self._locked() as registry:
            registry.users = [p for p in registry.users if p != os.getpid()]
            if registry.users or not registry.started_by_tests:
                return []
            registry.started_by_tests = False
            return self.cluster.down()

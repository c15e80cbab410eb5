"""Where the local cluster keeps things.

* The cache (binaries by version, base images, built images) is per user and outside the
  repository: ``$LOCO_CLUSTER_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/lego-loco-cluster``.
  A second ``up`` finds everything there and starts in seconds; containerd's root (its
  image store) is kept there too, so images are imported once.
* The cluster's own state (PKI, etcd data, the kubelet's root, logs, kubeconfigs, the
  snapshot of the host taken before start) is one directory,
  ``$LOCO_CLUSTER_DIR`` or ``/var/lib/lego-loco-cluster``; runtime sockets and pid files
  are under ``/run/lego-loco-cluster``. ``down`` removes both. Nothing of the host's own
  containerd is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def cache_root(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get("LOCO_CLUSTER_CACHE"):
        return Path(env["LOCO_CLUSTER_CACHE"])
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or "~").expanduser() / ".cache")
    return Path(base) / "lego-loco-cluster"


@dataclass(frozen=True)
class Layout:
    cache: Path
    state: Path
    run: Path

    @classmethod
    def default(cls, env: dict[str, str] | None = None) -> Layout:
        env = dict(os.environ) if env is None else env
        state = Path(env.get("LOCO_CLUSTER_DIR") or "/var/lib/lego-loco-cluster")
        run = Path(env.get("LOCO_CLUSTER_RUN") or "/run/lego-loco-cluster")
        return cls(cache=cache_root(env), state=state, run=run)

    # --- cache ---------------------------------------------------------------------------
    @property
    def build_logs(self) -> Path:
        return self.cache / "logs"

    @property
    def last_logs(self) -> Path:
        """The daemons' logs of the last cluster, kept by ``down``."""
        return self.cache / "logs" / "last-cluster"

    @property
    def images(self) -> Path:
        return self.cache / "images"

    # --- state ---------------------------------------------------------------------------
    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.state / "etcd"

    @property
    def kubelet_root(self) -> Path:
        return self.state / "kubelet"

    @property
    def containerd_root(self) -> Path:
        # In the cache: imported images survive `down`, so the next `up` skips importing.
        return self.cache / "containerd"

    @property
    def config(self) -> Path:
        return self.state / "config"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state / "admin.kubeconfig"

    @property
    def host_snapshot(self) -> Path:
        return self.state / "host-before.json"

    @property
    def info(self) -> Path:
        """What ``up`` made: image names, node address, start time (JSON)."""
        return self.state / "cluster.json"

    @property
    def users(self) -> Path:
        return self.state / "users"

    # --- run -----------------------------------------------------------------------------
    @property
    def containerd_state(self) -> Path:
        return self.run / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd" / "containerd.sock"

    @property
    def pids(self) -> Path:
        return self.run / "pids"

    @property
    def lock_file(self) -> Path:
        # In the cache, which stays: a lock file in /run would be left behind by `down`.
        return self.cache / "cluster.lock"

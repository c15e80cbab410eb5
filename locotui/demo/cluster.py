"""``locotui demo --cluster``: the chart on a real Kubernetes on this machine, and the console.

The local cluster (deploy/localcluster: etcd, the API server, a kubelet on containerd, ...)
is started unless it already runs; the chart is installed with the real Helm as release
``loco`` in namespace ``loco`` with emulators booting the test guest; the console connects
to the backend's Service and to the API server as a user bound to the chart's operator
Role (a client certificate of its own), not as the administrator. Quitting stops the
cluster again when the demo started it; one that ran before is left running, release and
all.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Any

from locotui import config
from locotui.demo.command import _raise_stop, _say, _Stop

NAMESPACE = "loco"
RELEASE = "loco"
DEMO_USER = "loco-demo-operator"
MAX_INSTANCES = 8  # one node: each emulator reserves a little CPU and memory


def run(settings: config.Settings, options: Any) -> int:
    try:
        from localcluster import access, helm
        from localcluster.cluster import Cluster
        from localcluster.errors import ClusterError
        from localcluster.progress import Progress
    except ImportError:
        _say("error: --cluster needs the project's checkout: run `make demo-cluster`")
        return 1
    if not 1 <= options.instances <= MAX_INSTANCES:
        _say(f"error: --instances {options.instances}: choose between 1 and {MAX_INSTANCES}")
        return 2
    cluster = Cluster(progress=Progress(prefix="locotui demo"))
    started_here = False
    started = time.monotonic()
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        if not cluster.is_up():
            started_here = True
            cluster.up()
        values = {"rbac": {"operatorRole": {"subjects": [{"kind": "User", "name": DEMO_USER}]}}}
        helm.install(cluster, NAMESPACE, RELEASE, options.instances, values=values)
        kubeconfig = access.user_kubeconfig(cluster, DEMO_USER, namespace=NAMESPACE)
        backend = helm.backend_url(cluster, NAMESPACE)
        token = helm.control_token(cluster, NAMESPACE)
        _say(f"ready in {time.monotonic() - started:.1f} s")
        if options.no_console:
            return _wait(cluster, backend, kubeconfig, started_here)
        return _console(settings, backend, token, kubeconfig)
    except ClusterError as exc:
        _say(f"error: {exc.line()}")
        return 1
    except (KeyboardInterrupt, _Stop):
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if started_here and not options.keep_cluster:
            _say("stopping the local cluster (keep it with --keep-cluster)")
            try:
                cluster.down()
            except ClusterError as exc:
                _say(f"error: {exc.line()}")


def _wait(cluster: Any, backend: str, kubeconfig: Path, started_here: bool) -> int:
    _say(f"backend {backend} (the Service, reachable from this machine)")
    _say(f"operator kubeconfig {kubeconfig} (namespace {NAMESPACE}, Role loco-operator)")
    _say(f"administrator kubeconfig {cluster.layout.admin_kubeconfig}")
    stops = "stops the cluster" if started_here else "leaves the cluster running"
    _say(f"Ctrl-C {stops}")
    while True:  # until a signal raises out of here (KeyboardInterrupt or _Stop)
        signal.pause()


def _console(settings: config.Settings, backend: str, token: str, kubeconfig: Path) -> int:
    from locotui.cli import run_console

    demo_settings = dataclasses.replace(
        settings,
        backend_url=backend,
        control_token=token,
        kubeconfig=kubeconfig,
        kube_context=None,
        namespace=NAMESPACE,
        read_only=False,
    )
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return run_console(demo_settings, env, kubernetes=True)

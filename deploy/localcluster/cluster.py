"""Bringing the local cluster up and down, and asking how it is.

``up`` checks the machine, builds what is missing, makes the images, records the host's
state, then starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, a private
containerd, kubelet and kube-proxy, and CoreDNS in the cluster. If any step fails, all that
was started is stopped and the host is restored before the error is reported. ``down``
stops everything and restores the host from the record.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from localcluster import build, config, hoststate, manifests, pki, processes, topology, versions
from localcluster.errors import ClusterError
from localcluster.images import Images
from localcluster.lock import exclusive
from localcluster.paths import Layout
from localcluster.processes import Daemon
from localcluster.progress import Progress, elapsed
from localcluster.steps import output, run_logged
from localcluster.topology import Topology

# Start order; stopped in reverse (node first, then the control plane).
DAEMONS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "containerd",
    "kubelet",
    "kube-proxy",
)
# Programs that, when run by someone else, mean this host cannot take our cluster.
FOREIGN = ("kubelet", "kube-proxy", "containerd", "dockerd")
HOST_TOOLS = {
    "containerd": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "nft": "nftables",
    "buildah": "buildah",
    "debootstrap": "debootstrap",
}
SETUP_HINT = "run `make setup-cluster` as root"
START_TIMEOUT = 180.0


@dataclass(frozen=True)
class Info:
    """What a running cluster is made of, for the tools around it (helm, demo, tests)."""

    kubeconfig: str
    server: str
    node_name: str
    node_ip: str
    images: dict[str, str]
    started_at: float

    @classmethod
    def load(cls, path: Path) -> Info:
        return cls(**json.loads(path.read_text()))


class Cluster:
    def __init__(self, layout: Layout | None = None, progress: Progress | None = None) -> None:
        self.layout = layout or Layout.default()
        self.progress = progress or Progress()

    # --- small helpers --------------------------------------------------------------------
    def daemon(self, name: str) -> Daemon:
        return Daemon(name, self.layout.pids, self.layout.logs / f"{name}.log")

    def binary(self, name: str) -> Path:
        return build.binary_path(self.layout, versions.BY_NAME[name])

    def running(self) -> list[str]:
        return [n for n in DAEMONS if self.daemon(n).running]

    def info(self) -> Info | None:
        try:
            return Info.load(self.layout.info)
        except (OSError, ValueError, TypeError):
            return None

    def is_up(self) -> bool:
        return self.running() == list(DAEMONS) and self.info() is not None

    def kubectl(self, *args: str, kubeconfig: Path | None = None, timeout: float = 120.0) -> Any:
        """Runs the cluster's own kubectl (never an older one from PATH)."""
        argv = [
            str(self.binary("kubectl")),
            "--kubeconfig",
            str(kubeconfig or self.layout.admin_kubeconfig),
            *args,
        ]
        return output(argv, timeout=timeout)

    def crictl(self, *args: str, timeout: float = 120.0) -> Any:
        argv = [
            str(self.binary("crictl")),
            "--runtime-endpoint",
            f"unix://{self.layout.containerd_socket}",
            "--image-endpoint",
            f"unix://{self.layout.containerd_socket}",
            "--timeout",
            "60s",
            *args,
        ]
        return output(argv, timeout=timeout)

    def ctr(self, *args: str) -> list[str]:
        return [
            "ctr",
            "--address",
            str(self.layout.containerd_socket),
            "--namespace",
            "k8s.io",
            *args,
        ]

    # --- checks ---------------------------------------------------------------------------
    def cannot_run(self) -> str | None:
        """Why this machine cannot run the cluster, or None when it can."""
        if os.geteuid() != 0:
            return "the local cluster needs root (a kubelet manages cgroups, mounts and iptables)"
        missing = [pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None]
        if missing:
            return f"missing system packages: {', '.join(missing)} ({SETUP_HINT})"
        ours = {self.daemon(n).pid() for n in DAEMONS}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in ours:
                continue
            argv = processes.cmdline(int(entry.name))
            if not argv:
                continue
            program = Path(argv[0]).name
            if program in FOREIGN and str(self.layout.run) not in " ".join(argv):
                return (
                    f"another {program} is running on this machine (pid {entry.name}); only one "
                    "kubelet and container runtime fit on a host"
                )
        if not self.layout.host_snapshot.exists():
            for hierarchy in hoststate.cgroup_hierarchies():
                if (hierarchy / "kubepods").exists():
                    return f"{hierarchy}/kubepods exists: another kubelet runs or ran here"
        return None

    def _check_ports(self, t: Topology) -> None:
        import socket

        for name, port in t.ports.all().items():
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("0.0.0.0", port))  # noqa: S104 - only a test bind, closed at once
                except OSError:
                    raise ClusterError(
                        f"port {port} ({name}) is in use on this machine",
                        hint="stop what uses it (ss -ltnp) and try again",
                    ) from None

    # --- up -----------------------------------------------------------------------------------
    def _need_root(self) -> None:
        if os.geteuid() != 0:
            raise ClusterError(
                "the local cluster needs root (a kubelet manages cgroups, mounts and iptables)",
                hint="run it as root, e.g. sudo make cluster",
            )

    def up(self) -> Info:
        start = time.monotonic()
        self._need_root()
        with exclusive(self.layout.lock_file, "start the local cluster"):
            if self.is_up():
                info = self.info()
                assert info is not None
                self.progress.say(f"already running; kubeconfig: {info.kubeconfig}")
                return info
            if self.running() or self.layout.host_snapshot.exists():
                self.progress.say("cleaning up after an earlier cluster that did not stop cleanly")
                self._down()
            reason = self.cannot_run()
            if reason:
                raise ClusterError(f"cannot start the local cluster: {reason}")
            bins = build.ensure(self.layout, (*versions.CLUSTER, "crictl"), self.progress)
            images = Images(self.layout, self.progress).ensure_all(bins["coredns"])
            t = topology.detect()
            self._check_ports(t)
            self.layout.state.mkdir(parents=True, exist_ok=True, mode=0o700)
            hoststate.snapshot().save(self.layout.host_snapshot)
            try:
                info = self._start(
                    t, {k: v.name for k, v in images.items()}, [i.archive for i in images.values()]
                )
            except BaseException as exc:
                self.progress.say(
                    "start-up failed; stopping what was started and restoring the host"
                )
                self._down()
                if (
                    isinstance(exc, ClusterError)
                    and exc.log is not None
                    and exc.log.is_relative_to(self.layout.logs)
                ):
                    # The state directory is gone now; its logs were kept in the cache.
                    raise ClusterError(
                        exc.what,
                        self.layout.last_logs / exc.log.relative_to(self.layout.logs),
                        exc.hint,
                    ) from None
                raise
        self.progress.say(f"cluster ready in {elapsed(time.monotonic() - start)}")
        return info

    def _start(self, t: Topology, images: dict[str, str], archives: list[Path]) -> Info:
        L = self.layout
        for d in (L.config, L.logs, L.pids, L.state / "cni" / "net.d"):
            d.mkdir(parents=True, exist_ok=True)
        certs = pki.generate(L.pki, t.node_name, t.node_ip, topology.SERVICE_IP, t.hostname)
        kc = {
            "admin": config.kubeconfig(
                L.admin_kubeconfig, t.server, certs.ca.cert, certs.admin, "admin"
            ),
            "controller-manager": config.kubeconfig(
                L.config / "controller-manager.kubeconfig",
                t.server,
                certs.ca.cert,
                certs.controller_manager,
            ),
            "scheduler": config.kubeconfig(
                L.config / "scheduler.kubeconfig", t.server, certs.ca.cert, certs.scheduler
            ),
            "kubelet": config.kubeconfig(
                L.config / "kubelet.kubeconfig", t.server, certs.ca.cert, certs.kubelet
            ),
            "kube-proxy": config.kubeconfig(
                L.config / "kube-proxy.kubeconfig", t.server, certs.ca.cert, certs.kube_proxy
            ),
        }

        with self.progress.step("starting etcd and the API server"):
            self._start_etcd(t, certs)
            self._start_apiserver(t, certs)
        self.bootstrap(images["coredns"])
        with self.progress.step("starting the controller manager and the scheduler"):
            self._start_controller_manager(t, certs, kc["controller-manager"])
            self._start_scheduler(t, kc["scheduler"])
        with self.progress.step("starting containerd and importing the images"):
            self._start_containerd(images["pause"])
            self._import(images, archives)
        with self.progress.step("starting the kubelet and kube-proxy; waiting for the node"):
            self._start_kubelet(t, certs, kc["kubelet"])
            self._start_kube_proxy(t, kc["kube-proxy"])
            self._wait_node_ready(t)
        with self.progress.step("waiting for CoreDNS"):
            self.wait_rollout("kube-system", "deployment/coredns")
        info = Info(
            kubeconfig=str(L.admin_kubeconfig),
            server=t.server,
            node_name=t.node_name,
            node_ip=t.node_ip,
            images=images,
            started_at=time.time(),
        )
        L.info.write_text(json.dumps(vars(info), indent=1) + "\n")
        return info

    # --- waiting ------------------------------------------------------------------------------
    def wait(
        self,
        check: Callable[[], bool],
        what: str,
        daemon: str | None = None,
        timeout: float = START_TIMEOUT,
        interval: float = 0.25,
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                if check():
                    return
            if daemon is not None and self.daemon(daemon).exited():
                raise ClusterError(
                    f"{daemon} exited while {what}",
                    self.daemon(daemon).log,
                    "the last lines of the log say why",
                )
            if time.monotonic() > deadline:
                log = self.daemon(daemon).log if daemon else None
                raise ClusterError(f"timed out after {timeout:.0f} s {what}", log)
            time.sleep(interval)

    def _https_ok(self, url: str, ca: Path | None, client: pki.Pair | None) -> bool:
        if ca is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=str(ca))
        if client is not None:
            ctx.load_cert_chain(str(client.cert), str(client.key))
        return httpx.get(url, verify=ctx, timeout=3.0).status_code == 200

    def wait_rollout(self, namespace: str, what: str, timeout: float = START_TIMEOUT) -> None:
        def done() -> bool:
            result = self.kubectl(
                "-n", namespace, "rollout", "status", what, "--timeout=5s", timeout=30
            )
            return result.returncode == 0

        self.wait(done, f"waiting for {what} in {namespace}", "kubelet", timeout)

    # --- the control plane ------------------------------------------------------------------
    def _start_etcd(self, t: Topology, c: pki.ClusterPKI) -> None:
        L = self.layout
        L.etcd_data.mkdir(parents=True, exist_ok=True, mode=0o700)
        peer = f"http://127.0.0.1:{t.ports.etcd_peer}"
        self.daemon("etcd").start(
            [
                self.binary("etcd"),
                "--name=lego-loco",
                f"--data-dir={L.etcd_data}",
                f"--listen-client-urls={t.etcd_url}",
                f"--advertise-client-urls={t.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=lego-loco={peer}",
                f"--cert-file={c.etcd_server.cert}",
                f"--key-file={c.etcd_server.key}",
                f"--trusted-ca-file={c.etcd_ca.cert}",
                "--client-cert-auth=true",
                "--log-level=warn",
            ]
        )
        self.wait(
            lambda: self._https_ok(f"{t.etcd_url}/health", c.etcd_ca.cert, c.etcd_client),
            "waiting for etcd",
            "etcd",
        )

    def _start_apiserver(
        self, t: Topology, c: pki.ClusterPKI, extra_args: Sequence[str] = ()
    ) -> None:
        L = self.layout
        self.daemon("kube-apiserver").start(
            [
                self.binary("kube-apiserver"),
                f"--etcd-servers={t.etcd_url}",
                f"--etcd-cafile={c.etcd_ca.cert}",
                f"--etcd-certfile={c.apiserver_etcd.cert}",
                f"--etcd-keyfile={c.apiserver_etcd.key}",
                f"--secure-port={t.ports.apiserver}",
                f"--advertise-address={t.node_ip}",
                f"--tls-cert-file={c.apiserver.cert}",
                f"--tls-private-key-file={c.apiserver.key}",
                f"--client-ca-file={c.ca.cert}",
                f"--kubelet-client-certificate={c.apiserver_kubelet.cert}",
                f"--kubelet-client-key={c.apiserver_kubelet.key}",
                # The node's hostname does not resolve here: reach kubelets by address.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={c.service_accounts.cert}",
                f"--service-account-signing-key-file={c.service_accounts.key}",
                f"--service-cluster-ip-range={topology.SERVICE_CIDR}",
                f"--cert-dir={L.state / 'apiserver'}",
                "--profiling=false",
                "--v=1",
                *extra_args,
            ]
        )
        self.wait(
            lambda: self._https_ok(f"{t.server}/readyz", c.ca.cert, c.admin),
            "waiting for the API server",
            "kube-apiserver",
        )

    def bootstrap(self, coredns_image: str) -> None:
        docs = [manifests.apiserver_kubelet_binding(), *manifests.coredns(coredns_image)]
        path = config.write_json(
            self.layout.config / "bootstrap.json",
            {"apiVersion": "v1", "kind": "List", "items": docs},
        )
        result = self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
        if result.returncode != 0:
            log = self.layout.logs / "bootstrap.log"
            log.write_text(result.stdout + result.stderr)
            raise ClusterError("applying the cluster's own objects (RBAC, CoreDNS) failed", log)

    def _start_controller_manager(self, t: Topology, c: pki.ClusterPKI, kubeconfig: Path) -> None:
        self.daemon("kube-controller-manager").start(
            [
                self.binary("kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={t.ports.controller_manager}",
                f"--service-account-private-key-file={c.service_accounts.key}",
                f"--root-ca-file={c.ca.cert}",
                "--use-service-account-credentials=true",
                f"--cluster-name={topology.CLUSTER_NAME}",
                f"--service-cluster-ip-range={topology.SERVICE_CIDR}",
                "--leader-elect=false",
                "--profiling=false",
            ]
        )
        self.wait(
            lambda: self._https_ok(
                f"https://127.0.0.1:{t.ports.controller_manager}/healthz", None, None
            ),
            "waiting for the controller manager",
            "kube-controller-manager",
        )

    def _start_scheduler(self, t: Topology, kubeconfig: Path) -> None:
        self.daemon("kube-scheduler").start(
            [
                self.binary("kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={t.ports.scheduler}",
                "--leader-elect=false",
                "--profiling=false",
            ]
        )
        self.wait(
            lambda: self._https_ok(f"https://127.0.0.1:{t.ports.scheduler}/healthz", None, None),
            "waiting for the scheduler",
            "kube-scheduler",
        )

    # --- the node --------------------------------------------------------------------------------
    def _start_containerd(self, sandbox_image: str) -> None:
        L = self.layout
        conf = L.config / "containerd.toml"
        conf.write_text(config.containerd_toml(L, sandbox_image))
        config.write_json(
            L.state / "cni" / "net.d" / "10-lego-loco.conflist", config.cni_conflist(L)
        )
        L.containerd_state.mkdir(parents=True, exist_ok=True, mode=0o711)
        L.containerd_root.mkdir(parents=True, exist_ok=True, mode=0o711)
        self.daemon("containerd").start(["containerd", "--config", conf])
        self.wait(
            lambda: output(self.ctr("version"), timeout=10).returncode == 0,
            "waiting for containerd",
            "containerd",
        )

    def _import(self, images: dict[str, str], archives: list[Path]) -> None:
        present = set(output(self.ctr("images", "list", "--quiet"), timeout=60).stdout.split())
        log = self.layout.logs / "images-import.log"
        for name, archive in zip(images.values(), archives, strict=True):
            if name in present:
                continue
            run_logged(
                self.ctr("images", "import", str(archive)),
                log,
                f"importing {name} into containerd",
                timeout=900,
            )

    def _start_kubelet(self, t: Topology, c: pki.ClusterPKI, kubeconfig: Path) -> None:
        L = self.layout
        conf = config.write_yaml(L.config / "kubelet.yaml", config.kubelet_config(L, t, c))
        L.kubelet_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        (L.state / "pod-logs").mkdir(parents=True, exist_ok=True)
        self.daemon("kubelet").start(
            [
                self.binary("kubelet"),
                f"--config={conf}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={L.kubelet_root}",
                f"--cert-dir={L.kubelet_root / 'pki'}",
                f"--hostname-override={t.node_name}",
                f"--node-ip={t.node_ip}",
                f"--volume-plugin-dir={L.kubelet_root / 'volume-plugins'}",
                "--v=1",
            ]
        )

    def _start_kube_proxy(self, t: Topology, kubeconfig: Path) -> None:
        conf = config.write_yaml(
            self.layout.config / "kube-proxy.yaml",
            config.kube_proxy_config(self.layout, t, kubeconfig),
        )
        self.daemon("kube-proxy").start([self.binary("kube-proxy"), f"--config={conf}", "--v=1"])
        self.wait(
            lambda: (
                httpx.get(
                    f"http://127.0.0.1:{t.ports.proxy_healthz}/healthz", timeout=3
                ).status_code
                == 200
            ),
            "waiting for kube-proxy",
            "kube-proxy",
        )

    def _wait_node_ready(self, t: Topology) -> None:
        def ready() -> bool:
            result = self.kubectl(
                "get", "node", t.node_name, "-o",
                'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
                timeout=30,
            )  # fmt: skip
            return result.stdout.strip() == "True"

        self.wait(ready, "waiting for the node to be Ready", "kubelet")

    # --- stopping parts (the tests stop and start the API server) ----------------------------
    def stop_daemon(self, name: str) -> None:
        self.daemon(name).stop()

    def restart_daemon(self, name: str, extra_args: Sequence[str] = ()) -> None:
        """Starts a stopped control-plane daemon again (with ``extra_args`` added)."""
        info = self.info()
        if info is None:
            raise ClusterError("the local cluster is not running", hint="run `make cluster`")
        t = topology.Topology(node_ip=info.node_ip, hostname=topology.detect().hostname)
        certs = pki.generate(
            self.layout.pki, t.node_name, t.node_ip, topology.SERVICE_IP, t.hostname
        )
        starters: dict[str, Callable[[], None]] = {
            "etcd": lambda: self._start_etcd(t, certs),
            "kube-apiserver": lambda: self._start_apiserver(t, certs, extra_args),
        }
        if name not in starters:
            raise ClusterError(f"restarting {name} is not supported (only {', '.join(starters)})")
        if not self.daemon(name).running:
            starters[name]()

    # --- down -----------------------------------------------------------------------------------
    def down(self) -> list[str]:
        self._need_root()
        with exclusive(self.layout.lock_file, "stop the local cluster"):
            return self._down()

    def _down(self) -> list[str]:
        """Stops everything of ours and restores the host; returns what could not be undone."""
        L = self.layout
        problems: list[str] = []
        report = problems.append
        start = time.monotonic()
        self.progress.say("stopping the local cluster")
        for name in ("kube-proxy", "kubelet"):
            self.daemon(name).stop()
        if self.daemon("containerd").running and self.binary("crictl").exists():
            # Pods first, through the runtime: it tears their networks down (veths,
            # addresses, CNI chains) and unmounts their root filesystems.
            self.crictl("rmp", "--all", "--force", timeout=180)
        self.daemon("containerd").stop(timeout=30)
        processes.kill_all(processes.pids_where(str(L.containerd_socket)))
        before = self._snapshot_or_none()
        if before is not None and not any(before.cgroups.values()):
            hoststate.kill_cgroup_processes()
        for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            self.daemon(name).stop()
        left: list[str] = []
        if before is not None:
            left = hoststate.restore(before, report, ours=(L.state, L.run, L.containerd_root))
        elif L.state.exists():
            report("no record of the host's state before the cluster started; nothing restored")
        self._keep_logs()
        shutil.rmtree(L.state, ignore_errors=True)
        shutil.rmtree(L.run, ignore_errors=True)
        for line in problems + left:
            self.progress.say(f"left behind: {line}")
        self.progress.say(f"stopped in {elapsed(time.monotonic() - start)}")
        return problems + left

    def _snapshot_or_none(self) -> hoststate.HostState | None:
        try:
            return hoststate.HostState.load(self.layout.host_snapshot)
        except (OSError, ValueError, TypeError):
            return None

    def _keep_logs(self) -> None:
        src = self.layout.logs
        if not src.is_dir():
            return
        dst = self.layout.last_logs
        shutil.rmtree(dst, ignore_errors=True)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst)

    # --- status -----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        info = self.info()
        return {
            "running": self.running(),
            "complete": self.is_up(),
            "kubeconfig": info.kubeconfig if info else None,
            "node": info.node_name if info else None,
            "images": info.images if info else {},
        }

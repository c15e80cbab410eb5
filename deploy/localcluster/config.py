"""Configuration files of the cluster's components, rendered from the topology and layout.

Everything points into the cluster's own directories: containerd's root, state, socket and
CNI configuration, the kubelet's root and pod logs, the CNI plugin's address store. The
host's /etc, /var/lib/containerd and /var/lib/kubelet are never touched.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import yaml

from localcluster import topology as topo
from localcluster.paths import Layout
from localcluster.pki import ClusterPKI, Pair
from localcluster.topology import Topology

CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_private(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def kubeconfig(
    path: Path,
    server: str,
    ca: Path,
    client: Pair | None = None,
    user: str = "user",
    namespace: str | None = None,
    token: str | None = None,
) -> Path:
    """A self-contained kubeconfig (certificates inline), readable by its owner only."""
    credentials: dict[str, Any] = {}
    if client is not None:
        credentials = {
            "client-certificate-data": _b64(client.cert),
            "client-key-data": _b64(client.key),
        }
    if token is not None:
        credentials = {"token": token}
    context: dict[str, Any] = {"cluster": topo.CLUSTER_NAME, "user": user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": topo.CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": topo.CONTEXT, "context": context}],
        "current-context": topo.CONTEXT,
    }
    return write_private(path, yaml.safe_dump(doc, sort_keys=False))


def cni_bin_dir() -> str:
    for candidate in CNI_BIN_DIRS:
        if (Path(candidate) / "bridge").exists():
            return candidate
    return CNI_BIN_DIRS[0]


def cni_conflist(layout: Layout) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": topo.CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": topo.BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": topo.NODE_POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    # Not /var/lib/cni: the address store goes with the cluster.
                    "dataDir": str(layout.state / "cni" / "networks"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def containerd_toml(layout: Layout, sandbox_image: str) -> str:
    run = layout.containerd_state
    # TOML by hand: a flat, fixed document, and no TOML writer in the standard library.
    lines = [
        "version = 2",
        f'root = "{layout.containerd_root}"',
        f'state = "{run}"',
        # Plugins containerd does not need here and that would only complain.
        'disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", '
        '"io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", '
        '"io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]',
        "",
        "[grpc]",
        f'  address = "{layout.containerd_socket}"',
        "[ttrpc]",
        f'  address = "{layout.containerd_socket}.ttrpc"',
        "[debug]",
        '  address = ""',
        "[metrics]",
        '  address = ""',
        "",
        '[plugins."io.containerd.internal.v1.opt"]',
        f'  path = "{layout.containerd_root / "opt"}"',
        '[plugins."io.containerd.grpc.v1.cri"]',
        f'  sandbox_image = "{sandbox_image}"',
        # Processes here lack CAP_SYS_RESOURCE: without this every sandbox fails to start
        # (runc cannot lower oom_score_adj).
        "  restrict_oom_score_adj = true",
        "  enable_selinux = false",
        # Network namespaces under our state dir, not /var/run/netns.
        "  netns_mounts_under_state_dir = true",
        '[plugins."io.containerd.grpc.v1.cri".containerd]',
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '  runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        "  SystemdCgroup = false",
        f'  Root = "{run / "runc"}"',
        '[plugins."io.containerd.grpc.v1.cri".cni]',
        f'  bin_dir = "{cni_bin_dir()}"',
        f'  conf_dir = "{layout.state / "cni" / "net.d"}"',
        "  max_conf_num = 1",
        "",
    ]
    return "\n".join(lines)


def kubelet_config(layout: Layout, t: Topology, pki: ClusterPKI) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": t.node_ip,
        "port": t.ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": t.ports.kubelet_healthz,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki.ca.cert)},
        },
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki.kubelet_server.cert),
        "tlsPrivateKeyFile": str(pki.kubelet_server.key),
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        # cgroup v1 machines: kubelet 1.34 refuses v1 unless told, and there is no systemd.
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDNS": [topo.DNS_IP],
        "clusterDomain": topo.CLUSTER_DOMAIN,
        "resolvConf": "/etc/resolv.conf",
        "podLogsDirectory": str(layout.state / "pod-logs"),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        # Images come from local imports only; garbage-collecting one would break pods.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # A busy shared test machine: evict only when really short, never on a blip.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "2%",
            "imagefs.available": "2%",
        },
        "evictionPressureTransitionPeriod": "30s",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "staticPodPath": "",
        "shutdownGracePeriod": "0s",
        "logging": {"format": "text"},
    }


def kube_proxy_config(layout: Layout, t: Topology, kubeconfig_path: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig_path)},
        "hostnameOverride": t.node_name,
        "clusterCIDR": topo.POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{t.ports.proxy_healthz}",
        "metricsBindAddress": f"127.0.0.1:{t.ports.proxy_metrics}",
        # Node ports on the node's address only: no route_localnet on the host.
        "nodePortAddresses": ["primary"],
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
        # Zero: leave the host's conntrack limits and timeouts as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }


def write_yaml(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def write_json(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path

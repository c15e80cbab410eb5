"""The shape of the local cluster: its one node, addresses, networks and ports."""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

from localcluster.errors import ClusterError

NODE_NAME = "lego-loco-control-plane"
CLUSTER_NAME = "lego-loco-cluster"
CONTEXT = "lego-loco-cluster"
# Pod network: one /24 on the node's bridge, inside a /16 that kube-proxy treats as the
# cluster's (traffic leaving it is masqueraded). Services live in their own /16.
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service: the first address of the range
DNS_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
BRIDGE = "loco0"
CNI_NETWORK = "lego-loco-cluster"


@dataclass(frozen=True)
class Ports:
    apiserver: int = 6443
    etcd_client: int = 12379
    etcd_peer: int = 12380
    kubelet: int = 10250
    kubelet_healthz: int = 10248
    controller_manager: int = 10257
    scheduler: int = 10259
    proxy_healthz: int = 10256
    proxy_metrics: int = 10249

    def all(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(frozen=True)
class Topology:
    node_ip: str
    hostname: str
    ports: Ports = field(default_factory=Ports)
    node_name: str = NODE_NAME

    @property
    def server(self) -> str:
        """The API server as clients on this machine reach it."""
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def etcd_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.etcd_client}"


def default_route_source() -> str:
    """The address this machine uses towards its default gateway: the node's InternalIP.

    Pods reach the API server there (a loopback address would be the pod's own).
    """
    routes = Path("/proc/net/route").read_text().splitlines()[1:]
    if not any(line.split()[1] == "00000000" for line in routes if line.split()):
        raise ClusterError(
            "this machine has no default route",
            hint="the node needs an address pods can reach: add a default route",
        )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        # connect() on UDP sends nothing; it only picks the source address.
        s.connect(("203.0.113.1", 9))  # TEST-NET-3: routed by default
        return str(s.getsockname()[0])


def host_networks() -> list[ipaddress.IPv4Network]:
    """Networks routed on this machine other than ours (to refuse overlapping ranges)."""
    found = []
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8 or parts[0] == BRIDGE or parts[1] == "00000000":
            continue
        dest = ipaddress.IPv4Address(bytes.fromhex(parts[1])[::-1])
        mask = ipaddress.IPv4Address(bytes.fromhex(parts[7])[::-1])
        found.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
    return found


def detect() -> Topology:
    node_ip = default_route_source()
    for net in host_networks():
        for ours in (POD_CIDR, SERVICE_CIDR):
            if net.overlaps(ipaddress.IPv4Network(ours)):
                raise ClusterError(
                    f"this machine already routes {net}, which overlaps the cluster's {ours}",
                    hint="free that range, or change POD_CIDR/SERVICE_CIDR in topology.py",
                )
    hostname = socket.gethostname().lower()
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", hostname):
        hostname = NODE_NAME
    return Topology(node_ip=node_ip, hostname=hostname)

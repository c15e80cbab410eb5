"""What the local cluster is made of: every component, pinned, and how Go builds it.

Changing a version here is the only way to change what runs; binaries are cached by
version, so a bump rebuilds just the components it touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

KUBERNETES = "v1.34.4"
# etcd 3.6 is the series Kubernetes 1.34 is tested with.
ETCD = "v3.6.16"
COREDNS = "v1.12.4"
CRI_TOOLS = "v1.34.0"
HELM = "v4.3.1"
KWOK = "v0.7.0"
# Not part of the cluster: the terminal UI bench/bench_cluster_open.py compares the console with.
K9S = "v0.50.16"

# Staging modules of k8s.io/kubernetes are published as v0.<minor>.<patch>.
STAGING = "v0" + KUBERNETES[2:]
KUBE_MAJOR, KUBE_MINOR = KUBERNETES[1:].split(".")[:2]
# The oldest Go that builds every component (their go.mod files ask for 1.24 or newer) and
# the first that can fetch a newer toolchain by itself.
MIN_GO = (1, 21)


class Kind(Enum):
    # A command of k8s.io/kubernetes: its go.mod replaces 31 staging modules with local
    # paths, so `go install pkg@version` refuses it; a wrapper module pins them instead.
    KUBERNETES = "kubernetes"
    # etcd's server module has the same problem; a three-line main calls etcdmain.Main.
    ETCD = "etcd"
    # A module without replace directives: plain `go install pkg@version`.
    INSTALL = "install"


_KUBE_VERSION_PKG = "k8s.io/component-base/version"
_KUBE_LDFLAGS = (
    f"-X {_KUBE_VERSION_PKG}.gitVersion={KUBERNETES}",
    f"-X {_KUBE_VERSION_PKG}.gitMajor={KUBE_MAJOR}",
    f"-X {_KUBE_VERSION_PKG}.gitMinor={KUBE_MINOR}",
    f"-X {_KUBE_VERSION_PKG}.gitTreeState=clean",
    # client-go reports its own version in the User-Agent and to `kubectl version`.
    f"-X k8s.io/client-go/pkg/version.gitVersion={KUBERNETES}",
    f"-X k8s.io/client-go/pkg/version.gitMajor={KUBE_MAJOR}",
    f"-X k8s.io/client-go/pkg/version.gitMinor={KUBE_MINOR}",
)


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    kind: Kind
    package: str
    ldflags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The cache directory name: one per component and version."""
        return f"{self.name}-{self.version}"


def _kube(name: str) -> Component:
    return Component(
        name, KUBERNETES, Kind.KUBERNETES, f"k8s.io/kubernetes/cmd/{name}", _KUBE_LDFLAGS
    )


# In build order: the API server first, since its build fills the Go cache the other
# Kubernetes commands mostly reuse.
COMPONENTS: tuple[Component, ...] = (
    _kube("kube-apiserver"),
    _kube("kube-controller-manager"),
    _kube("kube-scheduler"),
    _kube("kubelet"),
    _kube("kube-proxy"),
    _kube("kubectl"),
    Component("etcd", ETCD, Kind.ETCD, "go.etcd.io/etcd/server/v3"),
    Component("coredns", COREDNS, Kind.INSTALL, "github.com/coredns/coredns"),
    Component(
        "crictl",
        CRI_TOOLS,
        Kind.INSTALL,
        "sigs.k8s.io/cri-tools/cmd/crictl",
        (f"-X sigs.k8s.io/cri-tools/pkg/version.Version={CRI_TOOLS[1:]}",),
    ),
    Component(
        "helm",
        HELM,
        Kind.INSTALL,
        "helm.sh/helm/v4/cmd/helm",
        (f"-X helm.sh/helm/v4/internal/version.version={HELM}",),
    ),
    Component(
        "kwok",
        KWOK,
        Kind.INSTALL,
        "sigs.k8s.io/kwok/cmd/kwok",
        (f"-X sigs.k8s.io/kwok/pkg/consts.Version={KWOK[1:]}",),
    ),
    Component(
        "k9s",
        K9S,
        Kind.INSTALL,
        "github.com/derailed/k9s",
        (f"-X github.com/derailed/k9s/cmd.version={K9S}",),
    ),
)

BY_NAME = {c.name: c for c in COMPONENTS}
# What a running cluster needs; crictl, helm and kwok are tools used beside it.
CLUSTER = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
    "coredns",
    "helm",
)
# What `prepare` builds ahead of the tests: everything but what only a benchmark runs (k9s
# is built the first time the benchmark asks for it, then cached like the rest).
PREPARED = tuple(c.name for c in COMPONENTS if c.name != "k9s")

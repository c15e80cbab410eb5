"""``python -m localcluster``: a single-node Kubernetes on this machine, for trying and testing."""

from __future__ import annotations

import argparse
import json
import sys

from localcluster import access, build, helm, versions
from localcluster.cluster import Cluster
from localcluster.errors import ClusterError
from localcluster.images import Images
from localcluster.paths import Layout
from localcluster.progress import Progress

DESCRIPTION = f"""\
A single-node Kubernetes {versions.KUBERNETES} on this machine, built from the Go module proxy
(etcd {versions.ETCD}, CoreDNS {versions.COREDNS}, Helm {versions.HELM}) and cached by version
outside the repository, running on Debian's containerd, runc and CNI plugins. For trying the
chart and running the tests against the real thing; production is any conformant cluster.
Needs root. `down` stops everything and puts the host back as it was.
"""

EPILOG = """\
commands:
  up          build what is missing, make the images, start the cluster (seconds when cached)
  down        stop everything and restore the host (processes, mounts, cgroups, iptables, sysctls)
  status      what runs, where the kubeconfig is (--json for scripts)
  install     helm upgrade --install the project's chart with local images (3 test emulators)
  kubeconfig  print the admin kubeconfig's path, or make one for a user (--user, --group)
  prepare     build every component and make the images, without starting anything
  build       only build the components (all, or those named)
  images      only make the images
  check       say whether this machine can run the cluster (exit 0) or why not (exit 1)

environment:
  LOCO_CLUSTER_CACHE  cache directory (default ${XDG_CACHE_HOME:-~/.cache}/lego-loco-cluster)
  LOCO_CLUSTER_DIR    the running cluster's state (default /var/lib/lego-loco-cluster)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m localcluster",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    sub.add_parser("up", help="start the cluster")
    sub.add_parser("down", help="stop the cluster and restore the host")
    status = sub.add_parser("status", help="what runs")
    status.add_argument("--json", action="store_true", help="machine-readable")
    install = sub.add_parser("install", help="install the chart with the local images")
    install.add_argument("--namespace", "-n", default=helm.NAMESPACE)
    install.add_argument("--release", default=helm.RELEASE)
    install.add_argument("--replicas", type=int, default=3, help="emulators (default 3)")
    install.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more chart values, as helm --set takes them",
    )
    kc = sub.add_parser("kubeconfig", help="admin kubeconfig, or one for a user")
    kc.add_argument("--user", help="make a client certificate and kubeconfig for this user")
    kc.add_argument("--group", action="append", default=[], help="the user's groups")
    kc.add_argument("--namespace", "-n", help="the kubeconfig context's namespace")
    b = sub.add_parser("build", help="build the components")
    b.add_argument(
        "components",
        nargs="*",
        choices=[[]] + [c.name for c in versions.COMPONENTS],  # type: ignore[list-item]
        metavar="component",
        help=f"any of: {', '.join(c.name for c in versions.COMPONENTS)}",
    )
    sub.add_parser("images", help="make the images")
    sub.add_parser("prepare", help="build the components and make the images")
    sub.add_parser("check", help="can this machine run the cluster?")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    progress = Progress()
    layout = Layout.default()
    cluster = Cluster(layout, progress)
    try:
        return _run(args, cluster, progress)
    except ClusterError as exc:
        print(f"cluster: error: {exc.line()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # e.g. a cache or state directory this user may not write
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"cluster: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, cluster: Cluster, progress: Progress) -> int:
    layout = cluster.layout
    if args.command == "up":
        info = cluster.up()
        progress.say(f"kubeconfig: {info.kubeconfig}")
        progress.say(f"  export KUBECONFIG={info.kubeconfig}")
        progress.say(f"  kubectl: {cluster.binary('kubectl')}  helm: {cluster.binary('helm')}")
        progress.say("stop it with `make cluster-down` (or python -m localcluster down)")
        return 0
    if args.command == "down":
        left = cluster.down()
        return 1 if left else 0
    if args.command == "status":
        status = cluster.status()
        if args.json:
            print(json.dumps(status, indent=1))
        elif status["complete"]:
            print(f"running: {', '.join(status['running'])}")
            print(f"kubeconfig: {status['kubeconfig']}")
        elif status["running"]:
            print(f"partly running: {', '.join(status['running'])} (run `down`, then `up`)")
        else:
            print("not running")
        return 0 if status["complete"] else 3
    if args.command == "install":
        helm.install(cluster, args.namespace, args.release, args.replicas, args.set)
        return 0
    if args.command == "kubeconfig":
        if args.user:
            print(access.user_kubeconfig(cluster, args.user, tuple(args.group), args.namespace))
        else:
            print(layout.admin_kubeconfig)
        return 0
    if args.command == "build":
        names = args.components or [c.name for c in versions.COMPONENTS]
        for name, path in build.ensure(layout, names, progress).items():
            print(f"{name}: {path}")
        return 0
    if args.command in ("images", "prepare"):
        names = list(versions.PREPARED) if args.command == "prepare" else ["coredns"]
        bins = build.ensure(layout, names, progress)
        for image in Images(layout, progress).ensure_all(bins["coredns"]).values():
            print(image.name)
        return 0
    if args.command == "check":
        reason = cluster.cannot_run()
        print(reason or "this machine can run the local cluster")
        return 1 if reason else 0
    raise AssertionError(args.command)

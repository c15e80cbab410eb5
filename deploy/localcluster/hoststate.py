"""What a running cluster changes on the host, captured before it starts and put back after.

A kubelet, kube-proxy and the CNI bridge change kernel settings, add iptables chains and
rules (and with them nftables tables), create pod cgroups in every v1 hierarchy, a bridge,
mounts and a few well-known directories. :func:`snapshot` records the host's own state of
each; :func:`restore` removes only what appeared since and writes the old values back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from localcluster import topology as topo
from localcluster.steps import output

# Kernel settings the kubelet (kernel tunables), kube-proxy and the CNI plugins change.
SYSCTLS = (
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv4/conf/all/forwarding",
    "net/ipv6/conf/all/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
    "net/netfilter/nf_conntrack_tcp_timeout_established",
    "net/netfilter/nf_conntrack_tcp_timeout_close_wait",
    "net/netfilter/nf_conntrack_udp_timeout",
    "net/netfilter/nf_conntrack_udp_timeout_stream",
)
# Places the components create whatever their configuration says (hard-coded paths of
# containerd's shims, the kubelet's container log links, libcni's cache).
HOST_PATHS = (
    "/run/containerd",
    "/run/netns",
    "/var/lib/cni",
    "/var/log/pods",
    "/var/log/containers",
    "/opt/containerd",
    "/etc/cni",
    "/var/lib/kubelet",
    "/run/kubernetes",
    "/etc/kubernetes",
    "/usr/libexec/kubernetes",
)
# Top-level cgroups the kubelet creates (cgroupfs driver, QoS classes under them).
CGROUPS = ("kubepods",)
CGROUP_ROOT = Path("/sys/fs/cgroup")
IPTABLES = ("iptables", "ip6tables")
# Device nodes every program relies on. A build or a container that is handed the host's
# /dev by mistake can replace one (a /dev/null turned into a file breaks every shell on the
# machine): each is recorded as its type, numbers and mode, and put back.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")


def _read_sysctl(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name).read_text().strip()
    except OSError:
        return None


def _mounts() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, octal-escaped.
        points.append(line.split()[4].encode().decode("unicode_escape"))
    return points


def cgroup_hierarchies() -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    return sorted(p for p in CGROUP_ROOT.iterdir() if (p / "cgroup.procs").exists())


def _iptables_save(binary: str) -> str:
    if shutil.which(f"{binary}-save") is None:
        return ""
    return output([f"{binary}-save"], timeout=60).stdout


def _nft_tables() -> list[str]:
    if shutil.which("nft") is None:
        return []
    lines = output(["nft", "list", "tables"], timeout=30).stdout.splitlines()
    return [line.removeprefix("table ").strip() for line in lines if line.startswith("table ")]


def _device(path: str) -> str:
    """``c 1:3 0666`` for a character device; otherwise what is there instead."""
    try:
        st = os.lstat(path)
    except OSError:
        return "missing"
    if stat.S_ISCHR(st.st_mode):
        return f"c {os.major(st.st_rdev)}:{os.minor(st.st_rdev)} {stat.S_IMODE(st.st_mode):04o}"
    if stat.S_ISLNK(st.st_mode):
        return f"symlink -> {os.readlink(path)}"
    return "directory" if stat.S_ISDIR(st.st_mode) else "file"


def _links() -> list[str]:
    return sorted(os.listdir("/sys/class/net")) if Path("/sys/class/net").is_dir() else []


@dataclass
class HostState:
    sysctls: dict[str, str | None] = field(default_factory=dict)
    mounts: list[str] = field(default_factory=list)
    cgroups: dict[str, list[str]] = field(default_factory=dict)
    iptables: dict[str, str] = field(default_factory=dict)
    nft_tables: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    paths: dict[str, bool] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> HostState:
        return cls(**json.loads(path.read_text()))


def snapshot() -> HostState:
    return HostState(
        sysctls={name: _read_sysctl(name) for name in SYSCTLS},
        mounts=_mounts(),
        cgroups={
            str(h): sorted(c for c in CGROUPS if (h / c).exists()) for h in cgroup_hierarchies()
        },
        iptables={b: _iptables_save(b) for b in IPTABLES},
        nft_tables=_nft_tables(),
        links=_links(),
        paths={p: os.path.lexists(p) for p in HOST_PATHS},
        devices={d: _device(d) for d in DEVICES},
    )


# Mount points of the system itself: one lost here (a layer of /dev/pts, say) would break
# the host, whoever removed it. Mounts elsewhere come and go with other people's work.
SYSTEM_MOUNTS = ("/dev", "/proc", "/sys", "/run")


def differences(
    before: HostState, now: HostState | None = None, ours: Iterable[Path] = ()
) -> list[str]:
    """What is different from ``before`` in the cluster's places, the well-known paths and
    the system's mounts, one line per item (empty: as it was)."""
    now = now or snapshot()
    roots = [Path(p) for p in (*HOST_PATHS, *SYSTEM_MOUNTS, *map(str, ours))]
    found = []
    for name, value in before.sysctls.items():
        if now.sysctls.get(name) != value:
            found.append(f"sysctl {name} = {now.sysctls.get(name)} (was {value})")
    # Counted, not as sets: a mount stacked twice on one path (as /dev/pts may be) that
    # lost one layer is a difference too.
    watched = Counter(m for m in now.mounts if _under(m, roots))
    known = Counter(m for m in before.mounts if _under(m, roots))
    found += [f"mount {m}" for m in sorted((watched - known).elements())]
    found += [f"mount gone: {m}" for m in sorted((known - watched).elements())]
    for h, names in now.cgroups.items():
        found += [f"cgroup {h}/{n}" for n in names if n not in before.cgroups.get(h, [])]
    for binary in IPTABLES:
        old = _rules(before.iptables.get(binary, ""))
        new = _rules(now.iptables.get(binary, ""))
        found += [f"{binary} {t} chain {c}" for t, c in sorted(new.chains - old.chains)]
        extra = new.rules - old.rules
        found += [f"{binary} {t} rule {r}" for (t, r) in sorted(extra.elements())]
    found += [f"nft table {t}" for t in now.nft_tables if t not in before.nft_tables]
    found += [f"link {n}" for n in now.links if n not in before.links]
    found += [f"path {p}" for p, there in now.paths.items() if there and not before.paths.get(p)]
    found += [
        f"device {d} is {now.devices.get(d)} (was {was})"
        for d, was in before.devices.items()
        if now.devices.get(d) != was
    ]
    return found


@dataclass
class _Rules:
    chains: set[tuple[str, str]]
    rules: Counter[tuple[str, str]]


def _rules(save: str) -> _Rules:
    chains: set[tuple[str, str]] = set()
    rules: Counter[tuple[str, str]] = Counter()
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chains.add((table, line[1:].split()[0]))
        elif line.startswith("-A "):
            rules[(table, line[3:])] += 1
    return _Rules(chains, rules)


Report = Callable[[str], None]


def restore(before: HostState, report: Report, ours: Iterable[Path] = ()) -> list[str]:
    """Removes what appeared since ``before`` and restores settings; returns what is left."""
    _unmount(before, [Path(p) for p in (*HOST_PATHS, *map(str, ours))], report)
    _remove_cgroups(before, report)
    _restore_iptables(before, report)
    _remove_nft_tables(before, report)
    if topo.BRIDGE in _links() and topo.BRIDGE not in before.links:
        output(["ip", "link", "delete", topo.BRIDGE], timeout=30)
    for name, value in before.sysctls.items():
        if value is not None and _read_sysctl(name) != value:
            try:
                (Path("/proc/sys") / name).write_text(value)
            except OSError as exc:
                report(f"could not restore sysctl {name}={value}: {exc}")
    for path, existed in before.paths.items():
        if not existed and os.path.lexists(path):
            _remove_tree(Path(path), report)
    _restore_devices(before, report)
    return differences(before, ours=ours)


def _restore_devices(before: HostState, report: Report) -> None:
    for path, was in before.devices.items():
        if _device(path) == was or not was.startswith("c "):
            continue
        numbers, mode = was[2:].split()
        major, minor = (int(n) for n in numbers.split(":"))
        report(f"{path} was replaced ({_device(path)}); putting the device back")
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.mknod(path, stat.S_IFCHR | int(mode, 8), os.makedev(major, minor))
            os.chmod(path, int(mode, 8))  # mknod's mode is masked by the umask
        except OSError as exc:
            report(f"could not put {path} back: {exc}")


def _under(point: str, roots: list[Path]) -> bool:
    return any(point == str(r) or point.startswith(f"{r}/") for r in roots)


def _unmount(before: HostState, roots: list[Path], report: Report) -> None:
    # Deepest first; only mounts that are new and inside the cluster's own places.
    for _ in range(3):
        new = [m for m in _mounts() if m not in before.mounts and _under(m, roots)]
        if not new:
            return
        for point in sorted(new, key=lambda m: m.count("/"), reverse=True):
            result = output(["umount", point], timeout=30)
            if result.returncode != 0:
                # Busy (a dying process still holds it): detach now, freed when released.
                lazy = output(["umount", "-l", point], timeout=30)
                if lazy.returncode != 0 and point in _mounts():
                    report(f"could not unmount {point}: {lazy.stderr.strip()}")


def _remove_cgroups(before: HostState, report: Report) -> None:
    for hierarchy in cgroup_hierarchies():
        for name in CGROUPS:
            top = hierarchy / name
            if name in before.cgroups.get(str(hierarchy), []) or not top.exists():
                continue
            # rmdir bottom-up: a cgroup directory goes only when its children have gone.
            dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            for d in [*dirs, top]:
                try:
                    d.rmdir()
                except OSError as exc:
                    report(f"could not remove cgroup {d}: {exc.strerror}")


def _restore_iptables(before: HostState, report: Report) -> None:
    for binary in IPTABLES:
        if shutil.which(binary) is None:
            continue
        old = _rules(before.iptables.get(binary, ""))
        new = _rules(_iptables_save(binary))
        # Rules first (they may jump to new chains), then the emptied new chains.
        for (table, rule), count in (new.rules - old.rules).items():
            for _ in range(count):
                argv = [binary, "-w", "-t", table, "-D", *shlex.split(rule)]
                result = output(argv, timeout=30)
                if result.returncode != 0:
                    report(f"{binary}: could not delete rule in {table}: {rule}")
        added = sorted(new.chains - old.chains)
        for table, chain in added:
            output([binary, "-w", "-t", table, "-F", chain], timeout=30)
        for table, chain in added:
            result = output([binary, "-w", "-t", table, "-X", chain], timeout=30)
            if result.returncode != 0:
                report(f"{binary}: could not delete chain {table}/{chain}: {result.stderr.strip()}")


def _remove_nft_tables(before: HostState, report: Report) -> None:
    for table in _nft_tables():
        if table in before.nft_tables:
            continue
        result = output(["nft", "delete", "table", *table.split()], timeout=30)
        if result.returncode != 0:
            report(f"could not delete nft table {table}: {result.stderr.strip()}")


def _remove_tree(path: Path, report: Report) -> None:
    try:
        if path.is_symlink() or path.is_file():
            path.unlink()
        else:
            shutil.rmtree(path)
    except OSError as exc:
        report(f"could not remove {path}: {exc}")


def kill_cgroup_processes() -> int:
    """Kills whatever still runs in the pod cgroups (after the runtime is gone)."""
    killed = 0
    for hierarchy in cgroup_hierarchies():
        for name in CGROUPS:
            top = hierarchy / name
            if not top.exists():
                continue
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    for pid in procs.read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                            killed += 1
    return killed


# Where buildah (through containers/image and runc) writes whatever its --root says.
BUILDER_PATHS = ("/run/runc", "/var/lib/containers", "/run/containers")


@contextmanager
def leave_no_trace(paths: Iterable[str], report: Report) -> Iterator[None]:
    """Removes those of ``paths`` that did not exist before the block, however it ends."""
    existed = {p: os.path.lexists(p) for p in paths}
    try:
        yield
    finally:
        for path, there in existed.items():
            if not there and os.path.lexists(path):
                _remove_tree(Path(path), report)

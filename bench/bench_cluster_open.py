"""Launch to the first screen that lists the pods, k9s beside the console, on the real API
server with N emulator pods.

    .venv/bin/python -m bench.bench_cluster_open [--pods 1000] [--rounds 5]

Needs root, like bench/bench_cluster_scale.py, whose stand-in fleet it uses: the local
cluster (shared with test runs and the soak: started when it is not running, stopped
afterwards by its last user when one of them started it; only this benchmark's namespace
and nodes are removed), N pods of the
stand-in StatefulSet on kwok nodes, one process of fake supervisors they point at, and
the real backend discovering them through the pod watch with the chart's Role, probing
every ``--probe-interval`` seconds throughout (so every run competes with the same
background load). Not part of ``make bench``.

Three ways to open the fleet, run in turn (k9s, ours through the backend, ours from
Kubernetes alone, then again) for ``--rounds`` rounds after ``--warmup`` untimed ones
(those fill the page cache with each program's files, so no run pays for a cold disk):

* ``k9s`` — k9s (pinned in deploy/localcluster/versions.py, built and cached like the
  cluster's components) with the admin kubeconfig, ``--context``, ``-n NAMESPACE``,
  ``-c pods --splashless``: its pods view of the namespace. Without ``--splashless`` k9s
  shows its logo for a fixed second before any view (``splashDelay`` in its
  internal/view/app.go); leaving that out compares with k9s at its fastest.
  ``--k9s-splash`` keeps it;
* ``ours/backend`` — ``locotui --backend URL --view table``: the backend's snapshot;
* ``ours/k8s`` — ``locotui --backend http://127.0.0.1:<closed port> --kubeconfig ADMIN
  --context ... -n NAMESPACE --view table``: the refused connection starts the
  Kubernetes-only fallback at once, which lists and watches the pods itself.

k9s and ours/k8s read the same admin kubeconfig (ours/backend none: KUBECONFIG is empty).
Every run gets a 160x50 terminal, TERM=tmux-256color, COLORTERM=truecolor, and a HOME and
XDG_CONFIG_HOME / XDG_STATE_HOME / XDG_DATA_HOME / XDG_CACHE_HOME of its own, new for
every run (no user configuration, nothing cached from an earlier run). k9s gets one
setting written there, ``skipLatestRevCheck``: otherwise it asks api.github.com for its
newest release at start, which has nothing to do with the cluster.

Criterion, the same kind of thing for both: launch (just before the terminal is asked to
start the program) to the first screen on which the pod list is drawn with rows: at least
``--rows`` distinct names of this namespace's pods visible (30 by default; a screenful is
about 40 rows for both at 160x50) and the number of pods in the list's title or header
(k9s: ``pods(NAMESPACE)[1,000]``; ours: ``of 1000``), so a list still filling does not
count. Both fill their list from one list of all the pods, so in practice the first screen
with rows is the whole first screenful. Also reported: launch to the first screen with any
text on it (the program is up and drawing), which splits each time into start-up and
waiting for the data.

The terminal is a private tmux server polled with ``capture-pane`` every 20 ms, not a pty
read here and rendered with a terminal emulator: pyte is not among the project's
dependencies, and tmux is a real terminal that both programs draw into in the same way.
Each poll costs a few milliseconds of CPU, the same for both programs. A screen is seen
at most one poll (plus one capture) after it was drawn.

Prints medians, min-max and the ratio ours/k9s; never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_backend import backend
from bench.bench_cluster_scale import (
    STATEFULSET,
    backend_discovery,
    count_listed,
    scale,
    shared_cluster,
    stand_in_fleet,
    until,
)
from localcluster import build, topology, versions
from localcluster.cluster import Cluster
from localcluster.errors import ClusterError

NAMESPACE = "loco-open"
BIN = Path(sys.executable).parent
SIZE = (160, 50)
POLL = 0.02
TOOLS = ("k9s", "ours/backend", "ours/k8s")


@dataclass
class Run:
    tool: str
    first_text_s: float
    rows_s: float
    screen: str


@dataclass
class Samples:
    first_text: list[float] = field(default_factory=list)
    rows: list[float] = field(default_factory=list)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Terminal:
    """A private tmux server (its own socket and an empty configuration) that runs each
    program in a new 160x50 session and reads its screen."""

    def __init__(self, work: Path) -> None:
        self.socket = f"bench-open-{os.getpid()}"
        self.conf = work / "tmux.conf"
        # The server stays up between sessions (each run is one), so no run pays for its
        # start; the same TERM for every program in it.
        self.conf.write_text(
            "set -g exit-empty off\nset -g default-terminal tmux-256color\n"
            "set -g remain-on-exit on\n"
        )
        # The server's environment is what every program inherits besides -e: only what
        # a program needs to run, nothing of the caller's (no KUBECONFIG, no LOCO_*).
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(work),
        }
        self.tmux("start-server")
        self.path = self.tmux("display-message", "-p", "#{socket_path}").stdout.strip()

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=10,
            env=self.env,
        )

    def start(self, session: str, argv: list[str], env: dict[str, str], cwd: Path) -> int:
        """Runs ``argv`` (no shell in between) in a new session; returns its pid."""
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        self.tmux(
            "new-session", "-d", "-s", session, "-x", str(SIZE[0]), "-y", str(SIZE[1]),
            "-c", str(cwd), *env_args, "--", *argv,
        )  # fmt: skip
        return int(self.tmux("display-message", "-p", "-t", session, "#{pane_pid}").stdout)

    def screen(self, session: str) -> str:
        return self.tmux("capture-pane", "-p", "-t", session, check=False).stdout

    def stop(self, session: str, pid: int) -> None:
        """Ends the program (SIGTERM, then SIGKILL) and its session."""
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not _alive(pid):
                break
        self.tmux("kill-session", "-t", session, check=False)

    def close(self) -> None:
        self.tmux("kill-server", check=False)
        # tmux 3.3 leaves the socket file of a server that was killed.
        Path(self.path).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Running and not a zombie (tmux reaps its panes' processes soon, not at once)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def lists_pods(tool: str, screen: str, rows: int, pods: int) -> bool:
    """The criterion: ``rows`` pod names and the fleet's size on the screen."""
    if len(set(re.findall(rf"\b{STATEFULSET}-\d+\b", screen))) < rows:
        return False
    # k9s writes the count with a thousands separator: [1,000].
    size = rf"pods\({NAMESPACE}\)\[{pods:,}\]" if tool == "k9s" else rf"\bof {pods}\b"
    return re.search(size, screen) is not None


def isolated_env(home: Path) -> dict[str, str]:
    """A home and XDG directories of the run's own: no user configuration, no cache."""
    dirs = {
        "XDG_CONFIG_HOME": home / "config",
        "XDG_STATE_HOME": home / "state",
        "XDG_DATA_HOME": home / "data",
        "XDG_CACHE_HOME": home / "cache",
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return {
        "HOME": str(home),
        **{k: str(v) for k, v in dirs.items()},
        "COLORTERM": "truecolor",
        "KUBECONFIG": "",
    }


def k9s_config(env: dict[str, str]) -> None:
    """The one setting k9s gets: no request to api.github.com for its newest release."""
    where = Path(env["XDG_CONFIG_HOME"]) / "k9s"
    where.mkdir(parents=True, exist_ok=True)
    (where / "config.yaml").write_text("k9s:\n  skipLatestRevCheck: true\n")


def argv_for(tool: str, k9s: Path, kubeconfig: Path, url: str, splash: bool) -> list[str]:
    kube = ["--kubeconfig", str(kubeconfig), "--context", topology.CONTEXT, "-n", NAMESPACE]
    if tool == "k9s":
        return [str(k9s), *kube, "-c", "pods", *([] if splash else ["--splashless"])]
    if tool == "ours/backend":
        return [str(BIN / "locotui"), "--backend", url, "--view", "table"]
    dead = f"http://127.0.0.1:{closed_port()}"
    return [str(BIN / "locotui"), "--backend", dead, *kube, "--view", "table"]


def one_run(
    term: Terminal, tool: str, argv: list[str], work: Path, index: int, args: argparse.Namespace
) -> Run:
    home = work / f"home-{index}"
    env = isolated_env(home)
    if tool == "k9s":
        k9s_config(env)
    session = f"run{index}"
    first_text: float | None = None
    screen = ""
    started = time.monotonic()
    pid = term.start(session, argv, env, home)
    try:
        while True:
            polled = time.monotonic()
            screen = term.screen(session)
            if first_text is None and screen.strip():
                first_text = polled - started
            if lists_pods(tool, screen, args.rows, args.pods):
                assert first_text is not None
                return Run(tool, first_text, polled - started, screen)
            if polled - started > args.timeout or not _alive(pid):
                raise RuntimeError(
                    f"{tool}: no screen with {args.rows} pods within {polled - started:.0f} s "
                    f"({'running' if _alive(pid) else 'exited'}); last screen:\n{screen}"
                )
            time.sleep(max(0.0, POLL - (time.monotonic() - polled)))
    finally:
        term.stop(session, pid)
        shutil.rmtree(home, ignore_errors=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(
    cluster: Cluster, args: argparse.Namespace, work: Path, loads: list[str]
) -> dict[str, Samples]:
    """The timed runs; ``loads`` gets the load average before and after them."""
    say = lambda m: print(f"bench: {m}", file=sys.stderr, flush=True)  # noqa: E731
    k9s = build.ensure(cluster.layout, ["k9s"], cluster.progress)["k9s"]
    results = {tool: Samples() for tool in TOOLS}
    with stand_in_fleet(cluster, args.pods, work, NAMESPACE) as nodes:
        discovery = backend_discovery(cluster, NAMESPACE)
        with backend(None, True, args.probe_interval, discovery=discovery) as (url, _pid):
            say(f"scaling to {args.pods} pods on {nodes} kwok nodes")
            scale(cluster, args.pods, NAMESPACE)
            took = until(lambda: count_listed(url, healthy=True) >= args.pods, 900,
                         f"{args.pods} healthy", 1.0)  # fmt: skip
            say(f"all {args.pods} listed and healthy after {took:.0f} s; settling")
            time.sleep(args.settle)
            term = Terminal(work)
            try:
                index = 0
                loads.append(loadavg())
                for round_ in range(-args.warmup, args.rounds):
                    for tool in TOOLS:
                        argv = argv_for(
                            tool, k9s, cluster.layout.admin_kubeconfig, url, args.k9s_splash
                        )
                        run = one_run(term, tool, argv, work, index, args)
                        index += 1
                        counted = round_ >= 0
                        if counted:
                            results[tool].first_text.append(run.first_text_s)
                            results[tool].rows.append(run.rows_s)
                        say(
                            f"{'round ' + str(round_ + 1) if counted else 'warm-up'}: "
                            f"{tool:13} first text {run.first_text_s * 1000:5.0f} ms, "
                            f"pods listed {run.rows_s * 1000:5.0f} ms (load {loadavg()})"
                        )
                        if args.show and round_ == 0:
                            say(f"{tool}: the first screen with pods:\n{run.screen}")
                        time.sleep(args.pause)
                loads.append(loadavg())
            finally:
                term.close()
    return results


def _ms(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1000:6.0f} ms  "
        f"({min(values) * 1000:.0f}-{max(values) * 1000:.0f}; "
        f"{', '.join(f'{v * 1000:.0f}' for v in values)})"
    )


def report(results: dict[str, Samples], args: argparse.Namespace, loads: list[str]) -> None:
    print(
        f"Kubernetes {versions.KUBERNETES}, k9s {versions.K9S}, Python "
        f"{platform.python_version()}: {args.pods} emulator pods, {args.rounds} rounds, "
        f"terminal {SIZE[0]}x{SIZE[1]}, {os.cpu_count()} CPUs"
    )
    print(f"load average before the runs {loads[0]}, after them {loads[1]}")
    print(f"launch -> first screen listing >= {args.rows} pods: median (min-max; each round)")
    for tool in TOOLS:
        print(f"  {tool:13} {_ms(results[tool].rows)}")
    print("launch -> first screen with any text: median (min-max; each round)")
    for tool in TOOLS:
        print(f"  {tool:13} {_ms(results[tool].first_text)}")
    k9s = statistics.median(results["k9s"].rows)
    for tool in TOOLS[1:]:
        ratio = statistics.median(results[tool].rows) / k9s
        print(f"ratio of the medians, {tool} to k9s: {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (1)")
    parser.add_argument("--rows", type=int, default=30, help="pod names on screen (30)")
    parser.add_argument("--probe-interval", type=float, default=1.0, help="backend's (1)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after scaling")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between runs")
    parser.add_argument("--timeout", type=float, default=120.0, help="per run, seconds")
    parser.add_argument("--k9s-splash", action="store_true", help="k9s's logo first (1 s)")
    parser.add_argument("--show", action="store_true", help="print each tool's first screen")
    args = parser.parse_args(argv)
    loads: list[str] = []
    try:
        with shared_cluster() as cluster, tempfile.TemporaryDirectory(prefix="bench-open-") as tmp:
            results = measure(cluster, args, Path(tmp), loads)
    except ClusterError as exc:
        print(f"bench: {exc.line()}", file=sys.stderr)
        return 1
    report(results, args, loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())

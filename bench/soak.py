"""``make soak``: a fleet under continuous faults for a while, and whether anything grows.

    .venv/bin/python -m bench.soak [--minutes 30] [--instances 3] [--every 10] [--cluster]

The fleet is the demo's (:class:`locotui.demo.stack.DemoStack`: real supervisors on the
test image, the real backend with local discovery), or with ``--cluster`` the chart on the
local Kubernetes (``bench/soak_cluster.py``). While it runs, one fault every ``--every``
seconds, instance after instance, from the fault suite's repertoire: a soft reset and a
restart through the backend (as an operator or the automatic recovery would), QEMU killed
(SIGKILL), QEMU hung (SIGSTOP for a few seconds, then SIGCONT), the guest's picture frozen
and thawed over its serial port. A console-like client follows
``/api/events?view=summary`` all along.

Once a minute it records the resident memory, open file descriptors and threads of every
process: each supervisor, its current QEMU, the backend (and on the cluster its control
plane and node daemons), and the load average. At the end it prints the minute-by-minute
figures and, per process, the change from the first minute (after the fleet settled) to
the last. A role whose process is replaced (QEMU after a kill, a pod after a restart)
counts a restart, and growth is read within one process only, never across two. A process
that died unexpectedly, or whose memory, descriptors or threads keep growing, is a finding.
With ``--doc`` the summary goes into ``docs/performance.md``. Not part of the tests (it
takes half an hour by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.report import Run, load, write_block
from localcluster.processes import cmdline
from locotui.demo.stack import DemoError, DemoStack

HANG_SECONDS = 3.0
GROWTH_MIB = 8.0
"""RSS growth from the first to the last minute worth calling growth (a process's heap
settles in steps; a few MiB is noise, a leak keeps going)."""
GROWTH_COUNT = 2
"""Descriptors or threads more than this many above the first minute's are growth."""
TREND_WINDOW = 3
"""Samples whose median stands for a process's first and for its last minute."""


@dataclass(frozen=True)
class Sample:
    pid: int
    rss_mib: float
    fds: int
    threads: int


def sample(pid: int) -> Sample | None:
    """The process's resident memory, descriptors and threads; None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    rss = threads = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return Sample(pid, rss / 1024, fds, threads)


def lives(column: list[Sample | None]) -> list[list[Sample]]:
    """A role's samples split by process: a new pid is a new process (a restart), and a
    minute without one (a pod being replaced) is no process at all."""
    out: list[list[Sample]] = []
    for s in column:
        if s is None:
            continue
        if out and out[-1][-1].pid == s.pid:
            out[-1].append(s)
        else:
            out.append([s])
    return out


_MEASURES: list[tuple[str, Callable[[Sample], float], float, str]] = [
    ("RSS", lambda s: s.rss_mib, GROWTH_MIB, " MiB"),
    ("descriptors", lambda s: s.fds, GROWTH_COUNT, ""),
    ("threads", lambda s: s.threads, GROWTH_COUNT, ""),
]


def growth(role: str, column: list[Sample | None]) -> list[str]:
    """What grew within one process of the role. A process's first sample is left out (it
    may be taken while the process starts, or while the fleet settles after minute 0), so
    a trend needs three samples of the same process. Its first and last minutes are each
    read as the median of up to ``TREND_WINDOW`` samples: one sample can catch a passing
    state (a supervisor holds three descriptors fewer while its QEMU is down after a kill)
    that is not where the process stands, while a leak moves every sample."""
    found = []
    for life in lives(column):
        settled = life[1:]
        if len(settled) < 2:
            continue
        k = max(1, min(TREND_WINDOW, len(settled) // 2))
        head, tail = settled[:k], settled[-k:]
        what = f"{role} (pid {settled[0].pid})"
        for label, value, limit, unit in _MEASURES:
            before, after = (statistics.median(value(s) for s in part) for part in (head, tail))
            if after - before > limit:
                found.append(f"{what}: {label} {before:.0f} -> {after:.0f}{unit}")
    return found


def serial_path(argv: list[str]) -> str | None:
    """The path of QEMU's ``-serial unix:PATH,server=on,...`` (QEMU doubles a comma inside
    an option's value), or None when its serial port is no such socket."""
    try:
        value = argv[argv.index("-serial") + 1]
    except (ValueError, IndexError):
        return None
    if not value.startswith("unix:"):
        return None
    value = value.removeprefix("unix:")
    i = 0
    while (i := value.find(",", i)) != -1:
        if value[i + 1 : i + 2] == ",":
            i += 2
            continue
        value = value[:i]
        break
    return value.replace(",,", ",")


def serial_socket(qemu_pid: int) -> str:
    """Where this process connects to QEMU's serial socket. QEMU in a container has a root
    of its own, reached through /proc/PID/root; the plain path when it shares ours (a unix
    socket's path must stay under 108 bytes, so no detour when there is none to make)."""
    path = serial_path(cmdline(qemu_pid))
    if path is None:
        raise RuntimeError(f"QEMU (pid {qemu_pid}) has no serial socket")
    theirs, ours = os.stat(f"/proc/{qemu_pid}/root"), os.stat("/")
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
        return path
    return f"/proc/{qemu_pid}/root{path}"


class Soak:
    """Faults, sampling and the report, whatever runs the fleet. A subclass says which
    instances there are, which processes to sample and where an instance's QEMU is."""

    title = "Soak (bench/soak.py)"
    block = "soak"

    def __init__(self, backend_url: str, token: str, every: float, minutes: float) -> None:
        self.backend_url = backend_url
        self.token = token
        self.every = every
        self.minutes = minutes
        self.names: list[str] = []
        self.samples: dict[str, list[Sample | None]] = {}
        self.loads: list[float] = []
        self.faults: dict[str, list[bool]] = {}
        self.errors: list[str] = []
        self.deaths: list[str] = []
        self.notes: list[str] = []
        self.events = 0
        self.reconnects = 0

    # ------------------------------------------------------------------ the fleet
    async def pids(self, http: httpx.AsyncClient) -> dict[str, int]:
        """Every process to sample, by role."""
        raise NotImplementedError

    async def qemu_pid(self, http: httpx.AsyncClient, name: str) -> int:
        """The pid (on this host) of the instance's current QEMU."""
        raise NotImplementedError

    async def watch_deaths(self) -> None:
        """Appends to ``deaths`` what exits unexpectedly, for as long as the soak runs."""

    def describe(self) -> str:
        return f"{len(self.names)} instances"

    # ------------------------------------------------------------------ processes
    async def record(self, http: httpx.AsyncClient, minute: int) -> None:
        pids = await self.pids(http)
        self.loads.append(os.getloadavg()[0])
        for role in sorted(set(self.samples) | set(pids)):
            column = self.samples.setdefault(role, [None] * minute)
            column.append(sample(pids[role]) if role in pids else None)
        line = "  ".join(
            f"{role} {s.rss_mib:.0f}M/{s.fds}fd/{s.threads}t"
            for role, col in sorted(self.samples.items())
            if (s := col[-1]) is not None
        )
        print(f"[minute {minute:3d}] load {self.loads[-1]:.2f}  {line}", flush=True)

    # ------------------------------------------------------------------ faults
    def _fault_kinds(self) -> list[tuple[str, Callable[[httpx.AsyncClient, str], Awaitable[None]]]]:
        return [
            ("reset", self._reset),
            ("kill QEMU", self._kill_qemu),
            ("freeze picture", self._freeze),
            ("restart", self._restart),
            ("hang QEMU", self._hang_qemu),
        ]

    async def _action(self, http: httpx.AsyncClient, name: str, verb: str) -> None:
        resp = await http.post(
            f"{self.backend_url}/api/instances/{name}/{verb}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        resp.raise_for_status()

    async def _reset(self, http: httpx.AsyncClient, name: str) -> None:
        await self._action(http, name, "reset")

    async def _restart(self, http: httpx.AsyncClient, name: str) -> None:
        await self._action(http, name, "restart")

    async def _kill_qemu(self, http: httpx.AsyncClient, name: str) -> None:
        os.kill(await self.qemu_pid(http, name), signal.SIGKILL)

    async def _hang_qemu(self, http: httpx.AsyncClient, name: str) -> None:
        pid = await self.qemu_pid(http, name)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(HANG_SECONDS)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    async def _freeze(self, http: httpx.AsyncClient, name: str) -> None:
        sock = serial_socket(await self.qemu_pid(http, name))
        for command, pause in ((b"f", HANG_SECONDS), (b"g", 0.0)):
            _, writer = await asyncio.open_unix_connection(sock)
            try:
                writer.write(command)
                await writer.drain()
            finally:
                writer.close()
                await writer.wait_closed()
            await asyncio.sleep(pause)

    async def inject(self, http: httpx.AsyncClient, stop: float) -> None:
        plan = itertools.cycle(
            (kind, fault, name) for kind, fault in self._fault_kinds() for name in self.names
        )
        while time.monotonic() + self.every < stop:
            await asyncio.sleep(self.every)
            kind, fault, name = next(plan)
            ok = True
            try:
                async with asyncio.timeout(30):
                    await fault(http, name)
            except (OSError, RuntimeError, TimeoutError, httpx.HTTPError, StopIteration) as exc:
                ok = False
                self.errors.append(f"{kind} {name}: {type(exc).__name__}: {exc}")
            self.faults.setdefault(kind, []).append(ok)

    # ------------------------------------------------------------------ observers
    async def follow_events(self) -> None:
        """A console's stream: counted, reconnected when it breaks."""
        timeout = httpx.Timeout(10, read=60)
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
            while True:
                try:
                    async with http.stream(
                        "GET", f"{self.backend_url}/api/events", params={"view": "summary"}
                    ) as stream:
                        async for line in stream.aiter_lines():
                            if line.startswith("data: "):
                                self.events += 1
                except httpx.HTTPError:
                    pass
                self.reconnects += 1
                await asyncio.sleep(1.0)

    # ------------------------------------------------------------------ run
    async def run(self) -> None:
        start = time.monotonic()
        stop = start + self.minutes * 60
        tasks = [
            asyncio.create_task(self.follow_events()),
            asyncio.create_task(self.watch_deaths()),
        ]
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            faults = asyncio.create_task(self.inject(http, stop))
            try:
                minute = 0
                while True:
                    await self.record(http, minute)
                    minute += 1
                    if start + minute * 60 > stop:
                        break
                    await asyncio.sleep(max(0.0, start + minute * 60 - time.monotonic()))
            finally:
                faults.cancel()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(faults, *tasks, return_exceptions=True)

    # ------------------------------------------------------------------ report
    def report(self) -> str:
        lines = []
        minutes = max((len(c) for c in self.samples.values()), default=0)
        lines.append(
            f"{self.describe()}, {minutes - 1} min, a fault every {self.every:g} s; "
            f"{self.events} events on the summary stream, "
            f"{max(0, self.reconnects)} stream reconnects"
        )
        done = ", ".join(
            f"{kind} {sum(oks)}/{len(oks)}" for kind, oks in sorted(self.faults.items())
        )
        lines.append(f"faults carried out (ok/tried): {done or 'none'}")
        for error in self.errors[:10]:
            lines.append(f"  fault error: {error}")
        lines += [f"  {note}" for note in self.notes]
        for death in self.deaths:
            lines.append(f"  UNEXPECTED EXIT: {death}")
        lines.append("")
        width = max((len(role) for role in self.samples), default=7)
        lines.append(
            f"{'process':{width}} restarts  RSS MiB first/last/max  fds first/last/max  "
            "threads first/last/max"
        )
        findings = []
        for role, column in sorted(self.samples.items()):
            # From minute 1: minute 0 is the fleet as it just settled.
            seen = [s for s in column[1:] if s is not None] or [s for s in column if s is not None]
            if not seen:
                continue
            first, last = seen[0], seen[-1]
            restarts = len(lives(column)) - 1
            lines.append(
                f"{role:{width}} {restarts:8d} "
                f"{first.rss_mib:7.1f} {last.rss_mib:7.1f} {max(s.rss_mib for s in seen):7.1f}   "
                f"{first.fds:5d} {last.fds:5d} {max(s.fds for s in seen):5d}   "
                f"{first.threads:5d} {last.threads:5d} {max(s.threads for s in seen):5d}"
            )
            findings += growth(role, column)
        backend = [s.rss_mib for s in self.samples.get("backend", []) if s is not None]
        if backend:
            lines.append("")
            lines.append("backend RSS by minute (MiB): " + " ".join(f"{x:.0f}" for x in backend))
            lines.append(f"backend RSS median {statistics.median(backend):.1f} MiB")
        if self.loads:
            lines.append(
                "load average (1 min) by minute: " + " ".join(f"{x:.1f}" for x in self.loads)
            )
        lines.append("")
        if findings or self.deaths:
            lines.append("FINDINGS: " + "; ".join(findings + self.deaths))
        else:
            lines.append(
                f"no growth: no process died, none grew by more than {GROWTH_MIB:g} MiB, "
                f"{GROWTH_COUNT} descriptors or {GROWTH_COUNT} threads from its first "
                f"settled minutes to its last (medians of up to {TREND_WINDOW})"
            )
        return "\n".join(lines)

    @property
    def clean(self) -> bool:
        return not self.deaths and not any(
            growth(role, column) for role, column in self.samples.items()
        )


class LocalSoak(Soak):
    """The demo's fleet: supervisors and the backend as children of this process."""

    def __init__(self, stack: DemoStack, every: float, minutes: float) -> None:
        super().__init__(stack.backend_url, stack.token, every, minutes)
        self.stack = stack
        self.names = [c.name for c in stack.emulators]

    async def pids(self, http: httpx.AsyncClient) -> dict[str, int]:
        out: dict[str, int] = {}
        for child in self.stack.children:
            if child.proc is not None and child.running:
                out[child.name] = child.proc.pid
        for child in self.stack.emulators:
            with contextlib.suppress(
                httpx.HTTPError, KeyError, TypeError, ValueError, RuntimeError
            ):
                out[f"qemu {child.name}"] = await self.qemu_pid(http, child.name)
        return out

    async def qemu_pid(self, http: httpx.AsyncClient, name: str) -> int:
        url = next(c.url for c in self.stack.emulators if c.name == name)
        pid = (await http.get(f"{url}/health")).json()["qemu"]["pid"]
        if not pid:
            raise RuntimeError("QEMU is not running")
        return int(pid)

    async def watch_deaths(self) -> None:
        async for line in self.stack.deaths():
            self.deaths.append(line)
            print(line, flush=True)


async def local_soak(args: argparse.Namespace) -> Soak:
    stack = DemoStack(instances=args.instances, prometheus=False)
    try:
        await stack.start(lambda line: print(line, flush=True))
        soak = LocalSoak(stack, args.every, args.minutes)
        await soak.run()
    finally:
        stack.stop()
        stack.cleanup()
    return soak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (30)")
    parser.add_argument("--instances", type=int, default=3, help="emulators (3)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between faults (10)")
    parser.add_argument(
        "--cluster", action="store_true", help="the chart on the local Kubernetes (root)"
    )
    parser.add_argument("--doc", action="store_true", help="write into docs/performance.md")
    args = parser.parse_args()
    if args.minutes <= 0 or args.every <= 0 or args.instances <= 0:
        parser.error("--minutes, --every and --instances must be positive")
    command = ".venv/bin/python -m bench.soak " + " ".join(sys.argv[1:])
    started, t0, before = datetime.now(UTC), time.monotonic(), load()
    if args.cluster:
        from bench import soak_cluster

        soak = soak_cluster.run(args)
    else:
        try:
            soak = asyncio.run(local_soak(args))
        except DemoError as exc:
            print(f"soak: {exc}", file=sys.stderr)
            return 2
    if soak is None:
        return 2
    text = soak.report()
    print("\n" + text)
    if args.doc:
        write_block(
            Run(
                soak.block,
                soak.title,
                command.strip(),
                started,
                time.monotonic() - t0,
                before,
                load(),
                "completed" if soak.clean else "completed, with findings",
                text,
            )
        )
        print(f"-> docs/performance.md: {soak.block}")
    return 0 if soak.clean else 1


if __name__ == "__main__":
    sys.exit(main())

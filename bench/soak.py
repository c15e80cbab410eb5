"""``make soak``: a local fleet under continuous faults for a while, and whether anything
grows.

    .venv/bin/python -m bench.soak [--minutes 30] [--instances 3] [--every 10]

The fleet is the demo's (:class:`locotui.demo.stack.DemoStack`: real supervisors on the
test image, the real backend with local discovery). While it runs, one fault every
``--every`` seconds, instance after instance, from the fault suite's repertoire: a soft
reset and a restart through the backend (as an operator or the automatic recovery would),
QEMU killed (SIGKILL), QEMU hung (SIGSTOP for a few seconds, then SIGCONT), the guest's
picture frozen and thawed over its serial port. A console-like client follows
``/api/events?view=summary`` all along.

Once a minute it records the resident memory, open file descriptors and threads of every
process: each supervisor, its current QEMU, the backend. At the end it prints the
minute-by-minute figures and, per process, the change from the first minute (after the
fleet settled) to the last; a process that died unexpectedly, or whose memory, descriptors
or threads keep growing, is a finding. With ``--doc`` the summary goes into
``docs/performance.md``. Not part of the tests (it takes half an hour by default).
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.report import Run, load, write_block
from locotui.demo.stack import DemoError, DemoStack

HANG_SECONDS = 3.0
GROWTH_MIB = 8.0
"""RSS growth from the first to the last minute worth calling growth (a process's heap
settles in steps; a few MiB is noise, a leak keeps going)."""


@dataclass(frozen=True)
class Sample:
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
    return Sample(rss / 1024, fds, threads)


@dataclass
class Soak:
    stack: DemoStack
    every: float
    minutes: float
    samples: dict[str, list[Sample | None]] = field(default_factory=dict)
    faults: dict[str, list[bool]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    deaths: list[str] = field(default_factory=list)
    events: int = 0
    reconnects: int = 0
    instances: int = 0

    # ------------------------------------------------------------------ processes
    async def pids(self, http: httpx.AsyncClient) -> dict[str, int]:
        """Every process of the fleet by role: supervisors, their current QEMU, backend."""
        out: dict[str, int] = {}
        for child in self.stack.children:
            if child.proc is not None and child.running:
                out[child.name] = child.proc.pid
        for child in self.stack.emulators:
            with contextlib.suppress(httpx.HTTPError, KeyError, TypeError):
                pid = (await http.get(f"{child.url}/health")).json()["qemu"]["pid"]
                if pid:
                    out[f"qemu {child.name}"] = int(pid)
        return out

    async def record(self, http: httpx.AsyncClient, minute: int) -> None:
        pids = await self.pids(http)
        for role in sorted(set(self.samples) | set(pids)):
            column = self.samples.setdefault(role, [None] * minute)
            column.append(sample(pids[role]) if role in pids else None)
        line = "  ".join(
            f"{role} {s.rss_mib:.0f}M/{s.fds}fd/{s.threads}t"
            for role, col in sorted(self.samples.items())
            if (s := col[-1]) is not None
        )
        print(f"[minute {minute:3d}] {line}", flush=True)

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
            f"{self.stack.backend_url}/api/instances/{name}/{verb}",
            headers={"Authorization": f"Bearer {self.stack.token}"},
        )
        resp.raise_for_status()

    async def _reset(self, http: httpx.AsyncClient, name: str) -> None:
        await self._action(http, name, "reset")

    async def _restart(self, http: httpx.AsyncClient, name: str) -> None:
        await self._action(http, name, "restart")

    async def _qemu_pid(self, http: httpx.AsyncClient, name: str) -> int:
        url = next(c.url for c in self.stack.emulators if c.name == name)
        pid = (await http.get(f"{url}/health")).json()["qemu"]["pid"]
        if not pid:
            raise RuntimeError("QEMU is not running")
        return int(pid)

    async def _kill_qemu(self, http: httpx.AsyncClient, name: str) -> None:
        os.kill(await self._qemu_pid(http, name), signal.SIGKILL)

    async def _hang_qemu(self, http: httpx.AsyncClient, name: str) -> None:
        pid = await self._qemu_pid(http, name)
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(HANG_SECONDS)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    async def _freeze(self, http: httpx.AsyncClient, name: str) -> None:
        assert self.stack.state_dir is not None
        sock = self.stack.state_dir / "emulators" / name / "serial.sock"
        for command, pause in ((b"f", HANG_SECONDS), (b"g", 0.0)):
            _, writer = await asyncio.open_unix_connection(str(sock))
            try:
                writer.write(command)
                await writer.drain()
            finally:
                writer.close()
                await writer.wait_closed()
            await asyncio.sleep(pause)

    async def inject(self, http: httpx.AsyncClient, stop: float) -> None:
        names = [c.name for c in self.stack.emulators]
        plan = itertools.cycle(
            (kind, fault, name) for kind, fault in self._fault_kinds() for name in names
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
                        "GET",
                        f"{self.stack.backend_url}/api/events",
                        params={"view": "summary"},
                    ) as stream:
                        async for line in stream.aiter_lines():
                            if line.startswith("data: "):
                                self.events += 1
                except httpx.HTTPError:
                    pass
                self.reconnects += 1
                await asyncio.sleep(1.0)

    async def watch_deaths(self) -> None:
        async for line in self.stack.deaths():
            self.deaths.append(line)
            print(line, flush=True)

    # ------------------------------------------------------------------ run
    async def run(self) -> None:
        self.instances = len(self.stack.emulators)
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
            f"{self.instances} instances, {minutes - 1} min, a fault every "
            f"{self.every:g} s; {self.events} events on the summary stream, "
            f"{max(0, self.reconnects)} stream reconnects"
        )
        done = ", ".join(
            f"{kind} {sum(oks)}/{len(oks)}" for kind, oks in sorted(self.faults.items())
        )
        lines.append(f"faults carried out (ok/tried): {done or 'none'}")
        for error in self.errors[:10]:
            lines.append(f"  fault error: {error}")
        for death in self.deaths:
            lines.append(f"  UNEXPECTED EXIT: {death}")
        lines.append("")
        lines.append(
            "process          RSS MiB first/last/max  fds first/last/max  threads first/last/max"
        )
        findings = []
        for role, column in sorted(self.samples.items()):
            # From minute 1: minute 0 is the fleet as it just settled.
            seen = [s for s in column[1:] if s is not None] or [s for s in column if s is not None]
            if not seen:
                continue
            first, last = seen[0], seen[-1]
            rss = [s.rss_mib for s in seen]
            fds = [s.fds for s in seen]
            threads = [s.threads for s in seen]
            lines.append(
                f"{role:16} {first.rss_mib:7.1f} {last.rss_mib:7.1f} {max(rss):7.1f}   "
                f"{first.fds:5d} {last.fds:5d} {max(fds):5d}   "
                f"{first.threads:5d} {last.threads:5d} {max(threads):5d}"
            )
            if role.startswith("qemu "):
                continue  # a new process after every kill or restart: no trend to read
            if last.rss_mib - first.rss_mib > GROWTH_MIB:
                findings.append(f"{role}: RSS {first.rss_mib:.0f} -> {last.rss_mib:.0f} MiB")
            if last.fds > first.fds + 2:
                findings.append(f"{role}: descriptors {first.fds} -> {last.fds}")
            if last.threads > first.threads + 2:
                findings.append(f"{role}: threads {first.threads} -> {last.threads}")
        backend = [s.rss_mib for s in self.samples.get("backend", []) if s is not None]
        if backend:
            lines.append("")
            lines.append("backend RSS by minute (MiB): " + " ".join(f"{x:.0f}" for x in backend))
            lines.append(f"backend RSS median {statistics.median(backend):.1f} MiB")
        lines.append("")
        if findings or self.deaths:
            lines.append("FINDINGS: " + "; ".join(findings + self.deaths))
        else:
            lines.append(
                f"no growth: no process died, none grew by more than {GROWTH_MIB:g} MiB, "
                "2 descriptors or 2 threads from the first minute to the last"
            )
        return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> tuple[str, bool]:
    stack = DemoStack(instances=args.instances, prometheus=False)
    try:
        await stack.start(lambda line: print(line, flush=True))
        soak = Soak(stack, args.every, args.minutes)
        await soak.run()
    finally:
        stack.stop()
        stack.cleanup()
    text = soak.report()
    return text, not soak.deaths and "FINDINGS" not in text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (30)")
    parser.add_argument("--instances", type=int, default=3, help="emulators (3)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between faults (10)")
    parser.add_argument("--doc", action="store_true", help="write into docs/performance.md")
    args = parser.parse_args()
    if args.minutes <= 0 or args.every <= 0:
        parser.error("--minutes and --every must be positive")
    command = ".venv/bin/python -m bench.soak " + " ".join(sys.argv[1:])
    started, t0, before = datetime.now(UTC), time.monotonic(), load()
    try:
        text, clean = asyncio.run(main_async(args))
    except DemoError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print("\n" + text)
    if args.doc:
        write_block(
            Run(
                "soak",
                "Soak (bench/soak.py)",
                command.strip(),
                started,
                time.monotonic() - t0,
                before,
                load(),
                "completed" if clean else "completed, with findings",
                text,
            )
        )
        print("-> docs/performance.md: soak")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())

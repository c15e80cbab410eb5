"""Benchmark of loco-backend: /api/instances latency and throughput at 10, 100 and 1000
instances, time from an emulator state change to the SSE event, and memory per instance.

    .venv/bin/python bench/bench_backend.py [--sizes 10 100 1000] [--duration 8]

Everything runs on loopback: one process serving N fake supervisors (tests/backend/
fake_emulator.py), the real ``loco-backend`` CLI with static discovery pointing at them,
and the load generator (``wrk -t2 -c32`` when installed, else an httpx client). Two
backend modes per size:

* ``idle``  — ``--no-probe``: the fleet does not change, so every answer is the cached
  bytes; this is the serving cost alone.
* ``live``  — probing every ``--probe-interval`` seconds, so the fleet changes all the
  time and the list is re-assembled after each change, as in production.

Prints medians (of ``--repeat`` runs) and never asserts anything: numbers depend on the
machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def fake_supervisors(count: int, workdir: Path) -> Iterator[int]:
    port_file = workdir / f"fake-{count}.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "tests.support.fake_emulator",
            "--instances",
            str(count),
            "--port-file",
            str(port_file),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake supervisors did not start")
            time.sleep(0.05)
        yield int(port_file.read_text())
    finally:
        proc.terminate()
        proc.wait(10)


def write_fleet(path: Path, count: int, port: int) -> None:
    items = []
    for n in range(count):
        base = f"http://127.0.0.1:{port}" if n == 0 else f"http://127.0.0.1:{port}/i/loco-{n}"
        items.append({"name": f"loco-{n}", "health_url": base, "vnc": "127.0.0.1:5900"})
    path.write_text(yaml.safe_dump({"instances": items}))


@contextlib.contextmanager
def backend(
    static: Path | None,
    probe: bool,
    interval: float,
    discovery: list[str] | None = None,
    env_extra: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[tuple[str, int]]:
    """The real backend on loopback: static discovery of ``static``, or ``discovery``
    flags (e.g. ``--discovery kubernetes ...``). Yields (URL, pid) once it answers."""
    port = free_port()
    where = discovery or ["--discovery", "static", "--static-config", str(static)]
    argv = [
        PY,
        "-m",
        "backend.cli",
        *where,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--probe-interval",
        str(interval),
    ]
    if not probe:
        argv.append("--no-probe")
    env = {**os.environ, "LOG_LEVEL": "warning", **(env_extra or {})}
    env.pop("LOCO_CONTROL_TOKEN", None)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = started + timeout
        with httpx.Client(base_url=url, timeout=5) as client:
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("backend exited or did not answer")
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/api/instances").status_code == 200:
                        break
                time.sleep(0.02)
        first_answer = time.monotonic() - started
        print(f"    launch -> first /api/instances answer: {first_answer * 1000:.0f} ms")
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_probed(url: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            items = client.get("/api/instances").json()["items"]
            if len(items) == count and all(i["status"] == "healthy" for i in items):
                return
            time.sleep(0.2)
    raise RuntimeError(f"not all {count} instances became healthy")


def sequential_latency(url: str, n: int) -> tuple[float, float, int]:
    """Median and p99 (ms) of ``n`` sequential GETs on one keep-alive connection."""
    samples = []
    size = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get("/api/instances")
            samples.append((time.perf_counter() - t0) * 1000)
            size = len(r.content)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1], size


_WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_PCT = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(url: str, duration: float) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) from wrk -t2 -c32."""
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{duration:g}s", "--latency", f"{url}/api/instances"],
        capture_output=True,
        text=True,
        timeout=duration + 30,
    ).stdout
    rps = float(_WRK_RPS.search(out).group(1))  # type: ignore[union-attr]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    pct = {int(p): float(v) * scale[u] for p, v, u in _WRK_PCT.findall(out)}
    return rps, pct.get(50, float("nan")), pct.get(99, float("nan"))


async def _httpx_load(url: str, duration: float, conns: int = 32) -> tuple[float, float, float]:
    lat: list[float] = []
    stop = time.monotonic() + duration
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:

        async def worker() -> None:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                await client.get("/api/instances")
                lat.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(worker() for _ in range(conns)))
    lat.sort()
    return len(lat) / duration, statistics.median(lat), lat[int(len(lat) * 0.99) - 1]


def load(url: str, duration: float) -> tuple[str, float, float, float]:
    if shutil.which("wrk"):
        return ("wrk -t2 -c32", *wrk(url, duration))
    return ("httpx c32", *asyncio.run(_httpx_load(url, duration)))


async def sse_latency(
    url: str, fake_port: int, name: str, rounds: int, interval: float
) -> list[float]:
    """Seconds from telling a fake supervisor to change state until the SSE event."""
    results = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10, read=120)) as client,
        client.stream("GET", "/api/events") as stream,
    ):
        lines = stream.aiter_lines()
        admin = httpx.AsyncClient(base_url=f"http://127.0.0.1:{fake_port}", timeout=10)
        try:
            states = ["degraded", "healthy"]
            for r in range(rounds):
                want = states[r % 2]
                # change at a random phase of the probe cycle, not right after a probe
                await asyncio.sleep(random.uniform(0, interval))
                t0 = time.perf_counter()
                await admin.post(f"/_admin/{name}/status/{want}")
                async with asyncio.timeout(30):
                    async for line in lines:
                        if not line.startswith("data: "):
                            continue
                        event = json.loads(line[6:])
                        inst = event.get("instance")
                        if inst and inst["name"] == name and inst["status"] == want:
                            results.append(time.perf_counter() - t0)
                            break
        finally:
            await admin.aclose()
    return results


@dataclass
class Row:
    size: int
    mode: str
    body_kib: float
    seq_p50: list[float] = field(default_factory=list)
    seq_p99: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    load_p50: list[float] = field(default_factory=list)
    load_p99: list[float] = field(default_factory=list)
    rss_idle_mib: float = 0.0
    rss_after_mib: float = 0.0
    tool: str = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load run")
    parser.add_argument("--repeat", type=int, default=3, help="load runs per setting")
    parser.add_argument("--probe-interval", type=float, default=1.0)
    parser.add_argument("--sse-rounds", type=int, default=10)
    parser.add_argument("--modes", nargs="+", default=["idle", "live"])
    args = parser.parse_args()

    rows: list[Row] = []
    sse: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-backend-") as tmp:
        work = Path(tmp)
        for size in args.sizes:
            with fake_supervisors(size, work) as fake_port:
                static = work / f"fleet-{size}.yaml"
                write_fleet(static, size, fake_port)
                for mode in args.modes:
                    live = mode == "live"
                    # at 1000 instances a 1 s interval would be 1000 probes/s competing
                    # with the load generator for two cores; probe them less often.
                    interval = args.probe_interval * (5 if size >= 1000 else 1)
                    print(
                        f"== {size} instances, {mode}"
                        + (f" (probe every {interval:g}s)" if live else "")
                    )
                    with backend(static, live, interval) as (url, pid):
                        if live:
                            wait_probed(url, size)
                        else:
                            time.sleep(0.5)
                        p50, p99, size_bytes = sequential_latency(url, 2000)
                        row = Row(size, mode, size_bytes / 1024)
                        row.rss_idle_mib = rss_kib(pid) / 1024
                        for _ in range(args.repeat):
                            s50, s99, _ = sequential_latency(url, 1000)
                            row.seq_p50.append(s50)
                            row.seq_p99.append(s99)
                            tool, rps, l50, l99 = load(url, args.duration)
                            row.tool = tool
                            row.rps.append(rps)
                            row.load_p50.append(l50)
                            row.load_p99.append(l99)
                        row.rss_after_mib = rss_kib(pid) / 1024
                        rows.append(row)
                        del p50, p99
                        if live and args.sse_rounds:
                            sse[size] = asyncio.run(
                                sse_latency(url, fake_port, "loco-0", args.sse_rounds, interval)
                            )
    med = statistics.median
    print()
    print(
        "| instances | mode | body KiB | seq p50 ms | seq p99 ms | load | req/s | load p50 ms "
        "| load p99 ms | RSS idle MiB | RSS after load MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.size} | {r.mode} | {r.body_kib:.1f} | {med(r.seq_p50):.2f} | "
            f"{med(r.seq_p99):.2f} | {r.tool} | {med(r.rps):,.0f} | {med(r.load_p50):.2f} | "
            f"{med(r.load_p99):.2f} | {r.rss_idle_mib:.1f} | {r.rss_after_mib:.1f} |"
        )
    idle = {r.size: r.rss_idle_mib for r in rows if r.mode == "idle"}
    live_rss = {r.size: r.rss_idle_mib for r in rows if r.mode == "live"}
    for label, table in (("idle", idle), ("live", live_rss)):
        if len(table) >= 2:
            lo, hi = min(table), max(table)
            per = (table[hi] - table[lo]) * 1024 / (hi - lo)
            print(
                f"memory per instance ({label}): {per:.1f} KiB "
                f"(RSS {table[lo]:.1f} MiB at {lo}, {table[hi]:.1f} MiB at {hi})"
            )
    for size, samples in sse.items():
        if samples:
            print(
                f"state change -> SSE event, {size} instances: median "
                f"{med(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms over "
                f"{len(samples)} changes (probe interval "
                f"{args.probe_interval * (5 if size >= 1000 else 1):g}s)"
            )


if __name__ == "__main__":
    main()

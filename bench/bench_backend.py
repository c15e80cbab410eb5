"""Benchmark of loco-backend, in two parts.

    .venv/bin/python -m bench.bench_backend [--parts links serving] [--sizes 10 100 1000]

Everything runs on loopback: one process serving N stand-in supervisors (tests/backend/
fake_emulator.py, which serves the supervisor's own status-stream code), the real
``loco-backend`` CLI with static discovery pointing at them, and the measuring client.

``links`` — how the backend learns about the emulators, side by side in the same run:
``poll`` (``--no-stream``: every supervisor's /health every ``--probe-interval`` seconds,
as before) and ``stream`` (one status stream held open per supervisor, 5 s heartbeats),
each with an ``idle`` fleet (nothing changes) and a ``churn`` fleet (``--churn`` of the
instances report another frame rate every second). For each: the backend's CPU over
``--window`` seconds (utime + stime from /proc, in % of one core), the time from a
stand-in supervisor changing state to the event on ``/api/events`` (median of
``--fault-rounds``, at a random moment), and ``GET /api/instances?view=summary``: p50 /
p99 of sequential requests on one keep-alive connection, and its size beside the full
list's.

``real`` — one real supervisor on the test image (QEMU 7.2, TCG), polled and streamed:
seconds from killing its QEMU (SIGKILL) and from stopping it (SIGSTOP, a hang) to the
instance's unhealthy event on ``/api/events``. A kill is seen by the supervisor when the
kernel reports the exit; a hang only when its once-a-second QMP probe times out (1 s).

``fanout`` — ``--fanout-clients`` (100) consumers of ``/api/events`` on one backend
watching ``--fanout-size`` (100) stand-ins of which ``--churn`` change every second, in
the full and the summary form: the backend's CPU, and from a state change to its event
at every client the median client and the last one.

``serving`` — ``/api/instances`` throughput and latency under load (``wrk -t2 -c32`` when
installed, else an httpx client) with the fleet still (``--no-probe``) and live (polled),
and memory per instance.

Prints medians and never asserts anything: numbers depend on the machine and on what else
runs on it.
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
from collections.abc import AsyncIterator, Iterator
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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def fake_supervisors(count: int, workdir: Path, heartbeat: float = 5.0) -> Iterator[int]:
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
            "--heartbeat",
            str(heartbeat),
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
    extra: tuple[str, ...] = (),
    discovery: list[str] | None = None,
    env_extra: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[tuple[str, int]]:
    """The real backend on loopback: static discovery of ``static``, or ``discovery``
    flags (e.g. ``--discovery kubernetes ...``), plus ``extra`` flags. Yields (URL, pid)
    once it answers."""
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
    argv.extend(extra)
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


def wait_probed(url: str, count: int, timeout: float = 60, link: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            items = client.get("/api/instances").json()["items"]
            if len(items) == count and all(
                i["status"] == "healthy" and (link is None or i.get("link") == link) for i in items
            ):
                return
            time.sleep(0.2)
    raise RuntimeError(f"not all {count} instances became healthy" + (f" ({link})" * bool(link)))


def sequential_latency(url: str, n: int, path: str = "/api/instances") -> tuple[float, float, int]:
    """Median and p99 (ms) of ``n`` sequential GETs on one keep-alive connection."""
    samples = []
    size = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get(path)
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


_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})? ([0-9.eE+-]+)$", re.M)


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of one metric's samples (with these labels) on the backend's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    want = {f'{k}="{v}"' for k, v in labels.items()}
    for sample, label_text, value in _SAMPLE.findall(text):
        if sample == name and want <= set((label_text or "").split(",")):
            total += float(value)
    return total


@dataclass
class LinkRow:
    size: int
    link: str
    load: str
    cpu: float = 0.0
    probes_per_s: float = 0.0
    events_per_s: float = 0.0
    fault_ms: list[float] = field(default_factory=list)
    summary: tuple[float, float, int] = (0.0, 0.0, 0)
    full_kib: float = 0.0
    rss_mib: float = 0.0


def measure_link(
    args: argparse.Namespace, url: str, pid: int, fake_port: int, row: LinkRow
) -> None:
    admin = f"http://127.0.0.1:{fake_port}"
    if row.load == "churn":
        httpx.post(f"{admin}/_admin/churn", params={"fraction": args.churn}, timeout=10)
        time.sleep(2)  # the first changes have gone through
    probes0 = metric(url, "loco_backend_probe_duration_seconds_count")
    events0 = metric(url, "loco_backend_fleet_events_total", type="instance")
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(args.window)
    cpu1, t1 = cpu_seconds(pid), time.monotonic()
    row.cpu = (cpu1 - cpu0) / (t1 - t0) * 100
    row.probes_per_s = (metric(url, "loco_backend_probe_duration_seconds_count") - probes0) / (
        t1 - t0
    )
    row.events_per_s = (
        metric(url, "loco_backend_fleet_events_total", type="instance") - events0
    ) / (t1 - t0)
    row.rss_mib = rss_kib(pid) / 1024
    if args.fault_rounds:
        samples = asyncio.run(
            sse_latency(url, fake_port, "loco-0", args.fault_rounds, args.probe_interval)
        )
        row.fault_ms = [x * 1000 for x in samples]
    row.summary = sequential_latency(url, args.list_requests, "/api/instances?view=summary")
    row.full_kib = len(httpx.get(f"{url}/api/instances", timeout=10).content) / 1024


def links(args: argparse.Namespace, work: Path) -> list[LinkRow]:
    rows = []
    for size in args.sizes:
        for link in args.links:
            for load_kind in args.loads:
                row = LinkRow(size, link, load_kind)
                print(f"== {size} instances, {link}, {load_kind}", flush=True)
                # A fresh stand-in fleet each time, so churn from one run is not in the next.
                with fake_supervisors(size, work) as fake_port:
                    static = work / f"fleet-{size}.yaml"
                    write_fleet(static, size, fake_port)
                    extra = ("--no-stream",) if link == "poll" else ()
                    with backend(static, True, args.probe_interval, extra) as (url, pid):
                        wait_probed(url, size, 120, link="stream" if link == "stream" else None)
                        measure_link(args, url, pid, fake_port, row)
                rows.append(row)
                print(
                    f"   cpu {row.cpu:.1f} %, {row.probes_per_s:.0f} probes/s, "
                    f"{row.events_per_s:.1f} events/s, fault -> event median "
                    f"{statistics.median(row.fault_ms or [0]):.0f} ms, summary p50/p99 "
                    f"{row.summary[0]:.2f}/{row.summary[1]:.2f} ms",
                    flush=True,
                )
    return rows


def print_links(rows: list[LinkRow], args: argparse.Namespace) -> None:
    med = statistics.median
    print()
    print(
        f"links: probe interval {args.probe_interval:g} s, status heartbeat 5 s, churn "
        f"{args.churn:.0%} of the instances per second, CPU over {args.window:g} s"
    )
    print(
        "| instances | fleet | link | backend CPU | probes/s | events/s | fault -> event "
        "median (max) | summary p50 / p99 | summary | full list | RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fault = f"{med(r.fault_ms):.0f} ms ({max(r.fault_ms):.0f})" if r.fault_ms else "-"
        print(
            f"| {r.size} | {r.load} | {r.link} | {r.cpu:.1f} % | {r.probes_per_s:,.0f} | "
            f"{r.events_per_s:,.1f} | {fault} | {r.summary[0]:.2f} / {r.summary[1]:.2f} ms | "
            f"{r.summary[2] / 1024:.1f} KiB | {r.full_kib:.0f} KiB | {r.rss_mib:.0f} MiB |"
        )
    by = {(r.size, r.load, r.link): r for r in rows}
    for (size, load_kind, link), r in by.items():
        poll = by.get((size, load_kind, "poll"))
        if link == "stream" and poll is not None and r.cpu > 0 and r.fault_ms and poll.fault_ms:
            print(
                f"{size} {load_kind}: streaming uses {poll.cpu / r.cpu:.1f}x less CPU "
                f"than polling; a fault shows {med(poll.fault_ms) / med(r.fault_ms):.0f}x sooner"
            )


async def _until_unhealthy(
    lines: AsyncIterator[str], name: str, started: float, words: str
) -> float:
    async with asyncio.timeout(60):
        async for line in lines:
            if line.startswith("data: "):
                inst = json.loads(line[6:]).get("instance")
                if (
                    inst
                    and inst["name"] == name
                    and inst["status"] == "unhealthy"
                    and words in (inst.get("status_reason") or "")
                ):
                    return time.perf_counter() - started
    raise RuntimeError("event stream ended")


async def _faults(url: str, sup: object, rounds: int) -> dict[str, list[float]]:
    from tests.support.supervisor import SupervisorProcess

    assert isinstance(sup, SupervisorProcess)
    out: dict[str, list[float]] = {"kill": [], "hang": []}
    for _ in range(rounds):
        for fault, sig, words in (
            ("kill", signal.SIGKILL, "QEMU is not running"),
            ("hang", signal.SIGSTOP, "QMP does not answer"),
        ):
            health = await sup.wait_ready(60)
            # A new stream each time: its snapshot first, then only what happens next.
            async with (
                httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10, read=120)) as client,
                client.stream("GET", "/api/events") as stream,
            ):
                lines = stream.aiter_lines()
                async for line in lines:
                    if line.startswith("data: "):
                        break  # the snapshot
                await asyncio.sleep(random.uniform(1.0, 2.0))  # any phase of the probes
                pid = health["qemu"]["pid"]
                started = time.perf_counter()
                os.kill(pid, sig)
                try:
                    out[fault].append(await _until_unhealthy(lines, sup.name, started, words))
                finally:
                    if sig == signal.SIGSTOP:
                        os.kill(pid, signal.SIGCONT)
    return out


def real(args: argparse.Namespace, work: Path) -> dict[str, dict[str, list[float]]]:
    from tests.support.supervisor import start_supervisor

    results = {}
    for link in args.links:
        print(f"== real supervisor, {link}", flush=True)
        sup = start_supervisor(
            work, f"real-{link}", args=["--status-heartbeat", "5", "--max-restarts", "50"]
        )
        try:
            static = work / f"real-{link}.yaml"
            static.write_text(
                yaml.safe_dump({"instances": [{"name": sup.name, "health_url": sup.url}]})
            )
            extra = ("--no-stream",) if link == "poll" else ()
            with backend(static, True, args.probe_interval, extra) as (url, _):
                results[link] = asyncio.run(_faults(url, sup, args.real_rounds))
        finally:
            sup.stop()
    return results


def print_real(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    med = statistics.median
    print()
    print(f"real supervisor: fault -> unhealthy event, {args.real_rounds} rounds each")
    print("| link | QEMU killed: median (max) | QEMU hung: median (max) |")
    print("|---|---|---|")
    for link, faults in results.items():
        cells = [
            f"{med(v) * 1000:.0f} ms ({max(v) * 1000:.0f})" if v else "-"
            for v in (faults["kill"], faults["hang"])
        ]
        print(f"| {link} | {cells[0]} | {cells[1]} |")


def serving(args: argparse.Namespace, work: Path) -> None:
    rows: list[Row] = []
    sse: dict[int, list[float]] = {}
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
                    + (f" (probe every {interval:g}s)" if live else ""),
                    flush=True,
                )
                extra = ("--no-stream",) if live else ()
                with backend(static, live, interval, extra) as (url, pid):
                    if live:
                        wait_probed(url, size, 180)
                    else:
                        time.sleep(0.5)
                    _, _, size_bytes = sequential_latency(url, 2000)
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
                f"state change -> SSE event, {size} instances (polled): median "
                f"{med(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms over "
                f"{len(samples)} changes (probe interval "
                f"{args.probe_interval * (5 if size >= 1000 else 1):g}s)"
            )


async def _fanout_round(
    url: str, fake_port: int, view: str, clients: int, rounds: int
) -> tuple[list[float], list[float], float]:
    """(median client's latency per round, last client's latency per round, seconds the
    clients took to connect). Every client reads its own stream; a round is a state
    change of loco-0 and ends when every client has seen it."""
    want: list[str] = [""]
    seen: list[dict[int, float]] = [{}]
    done = asyncio.Event()
    ready = 0
    all_ready = asyncio.Event()
    timeout = httpx.Timeout(10, read=120)
    limits = httpx.Limits(max_connections=clients + 1)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as http:

        async def client(n: int) -> None:
            nonlocal ready
            async with http.stream("GET", "/api/events", params={"view": view}) as stream:
                lines = stream.aiter_lines()
                async for line in lines:
                    if line.startswith("data: "):
                        break  # the snapshot
                ready += 1
                if ready == clients:
                    all_ready.set()
                async for line in lines:
                    if not line.startswith("data: ") or not want[0]:
                        continue
                    inst = json.loads(line[6:]).get("instance") or {}
                    if inst.get("name") == "loco-0" and inst.get("status") == want[0]:
                        seen[0].setdefault(n, time.perf_counter())
                        if len(seen[0]) == clients:
                            done.set()

        t0 = time.perf_counter()
        tasks = [asyncio.create_task(client(n)) for n in range(clients)]
        medians, lasts = [], []
        try:
            async with asyncio.timeout(120):
                await all_ready.wait()
            connect = time.perf_counter() - t0
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{fake_port}", timeout=10
            ) as admin:
                for r in range(rounds):
                    await asyncio.sleep(random.uniform(0.5, 1.5))
                    seen[0], done = {}, asyncio.Event()
                    want[0] = ("degraded", "healthy")[r % 2]
                    started = time.perf_counter()
                    await admin.post(f"/_admin/loco-0/status/{want[0]}")
                    async with asyncio.timeout(60):
                        await done.wait()
                    lags = sorted(t - started for t in seen[0].values())
                    medians.append(statistics.median(lags))
                    lasts.append(lags[-1])
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return medians, lasts, connect


def fanout(args: argparse.Namespace, work: Path) -> None:
    size, clients = args.fanout_size, args.fanout_clients
    rows = []
    for view in ("full", "summary"):
        print(f"== fan-out: {clients} clients, {view} form, {size} instances", flush=True)
        with fake_supervisors(size, work) as fake_port:
            static = work / f"fanout-{size}.yaml"
            write_fleet(static, size, fake_port)
            with backend(static, True, args.probe_interval) as (url, pid):
                wait_probed(url, size, 120, link="stream")
                httpx.post(
                    f"http://127.0.0.1:{fake_port}/_admin/churn",
                    params={"fraction": args.churn},
                    timeout=10,
                )
                cpu0, t0 = cpu_seconds(pid), time.monotonic()
                medians, lasts, connect = asyncio.run(
                    _fanout_round(url, fake_port, view, clients, args.fault_rounds)
                )
                cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
                rows.append((view, cpu, medians, lasts, connect, rss_kib(pid) / 1024))
    med = statistics.median
    print()
    print(
        f"SSE fan-out: {clients} clients, {size} instances, {args.churn:.0%} changing every "
        f"second, {args.fault_rounds} state changes"
    )
    print(
        "| form | all clients connected | backend CPU | change -> event, median client "
        "| last client | RSS |"
    )
    print("|---|---|---|---|---|---|")
    for view, cpu, medians, lasts, connect, rss in rows:
        print(
            f"| {view} | {connect:.2f} s | {cpu:.1f} % | {med(medians) * 1000:.0f} ms | "
            f"{med(lasts) * 1000:.0f} ms (max {max(lasts) * 1000:.0f}) | {rss:.0f} MiB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["links", "real", "fanout", "serving"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--probe-interval", type=float, default=1.0)
    links_args = parser.add_argument_group("links")
    links_args.add_argument("--links", nargs="+", default=["poll", "stream"])
    links_args.add_argument("--loads", nargs="+", default=["idle", "churn"])
    links_args.add_argument("--churn", type=float, default=0.1, help="share changing each s")
    links_args.add_argument("--window", type=float, default=10.0, help="CPU sample, seconds")
    links_args.add_argument("--fault-rounds", type=int, default=10)
    links_args.add_argument("--list-requests", type=int, default=1000)
    parser.add_argument("--real-rounds", type=int, default=5)
    fanout_args = parser.add_argument_group("fanout")
    fanout_args.add_argument("--fanout-clients", type=int, default=100)
    fanout_args.add_argument("--fanout-size", type=int, default=100)
    serving_args = parser.add_argument_group("serving")
    serving_args.add_argument("--duration", type=float, default=8.0, help="s per load run")
    serving_args.add_argument("--repeat", type=int, default=3, help="load runs per setting")
    serving_args.add_argument("--sse-rounds", type=int, default=10)
    serving_args.add_argument("--modes", nargs="+", default=["idle", "live"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-backend-") as tmp:
        work = Path(tmp)
        # Each part prints its table when it is done (a later part may fail on a busy host).
        if "links" in args.parts:
            print_links(links(args, work), args)
        if "real" in args.parts:
            print_real(real(args, work), args)
        if "fanout" in args.parts:
            fanout(args, work)
        if "serving" in args.parts:
            serving(args, work)


if __name__ == "__main__":
    main()

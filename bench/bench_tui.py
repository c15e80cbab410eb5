"""Benchmark of the locotui console: CPU, memory and bytes written to the terminal, key
press to repaint latency, and start to first full paint.

    .venv/bin/python bench/bench_tui.py [--repeat 3] [--window 10] [--keys 20]

Everything is real and on loopback: a subprocess serving N fake supervisors whose
pictures change every second (a desktop with a moving window and a clock, not a flat
colour: flat pictures would flatter the byte counts), the real ``loco-backend`` with
static discovery over them, and the real ``locotui`` binary on a pseudo-terminal of
160x50 (COLORTERM=truecolor) whose output this script reads and counts.

Scenarios:

* ``tiles``   — 9 instances, tiles with thumbnails refreshed at 1 Hz;
* ``table``   — 200 and 1000 instances in the table view (``--rows``), nobody at the
  keyboard; the stand-ins are the backend tests' (they offer the status stream), and at
  the end ``--faults`` state changes of one of them are timed until the console shows
  them (fault -> event -> console).

Per scenario: start to first full paint (every tile or row of the first screen drawn),
then ``--repeat`` windows of ``--window`` seconds: CPU (% of one core, user+system of the
console process), RSS, bytes/s written to the terminal. Then key press → repaint latency:
``s`` cycles the sort key and the header names it; the time until that text has been
written. Prints medians; asserts nothing (numbers depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import json
import os
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(sys.executable).parent
SIZE = (160, 50)
# CSI/OSC/other escape sequences, to read the text a terminal would show.
ANSI = re.compile(
    rb"\x1b\[[0-9;?<>=!]*[ -/]*[@-~]"  # CSI
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    rb"|\x1b[()][0-9A-Za-z]|\x1b[=>NOMDE78c]"  # charsets, keypad modes, misc
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------- fake fleet


def serve_fakes(count: int, port_file: str) -> None:
    """(Subprocess) N supervisors: /i/NAME/health and /i/NAME/thumbnail.png."""
    import asyncio
    from datetime import UTC, datetime

    import numpy as np
    import uvicorn
    from fastapi import FastAPI, Query
    from fastapi.responses import Response
    from PIL import Image, ImageDraw

    from emulator.models import EmulatorStatus, OverallStatus, QemuFacts, VideoFacts

    app = FastAPI()
    desk = np.zeros((480, 640, 3), np.uint8)
    desk[:] = (0, 128, 128)  # Windows 98 teal
    desk[452:] = (192, 192, 192)  # taskbar
    desk[455:477, 3:60] = (210, 210, 210)  # start button
    for i in range(6):  # desktop icons
        desk[20 + i * 70 : 52 + i * 70, 20:52] = (255, 255, 160 - i * 20)
    cache: dict[tuple[str, int, int], bytes] = {}

    def frame(name: str, second: int, width: int) -> bytes:
        key = (name, second, width)
        if key in cache:
            return cache[key]
        if len(cache) > 4096:
            cache.clear()
        img = Image.fromarray(desk)
        draw = ImageDraw.Draw(img)
        x = 120 + (second * 23 + hash(name) % 200) % 300
        draw.rectangle((x, 90, x + 260, 330), fill=(192, 192, 192), outline=(0, 0, 0))
        draw.rectangle((x + 3, 93, x + 257, 112), fill=(0, 0, 128))  # title bar
        draw.text((x + 8, 96), f"Lego Loco - {name}", fill=(255, 255, 255))
        for row in range(8):  # the track: something with detail
            draw.line((x + 10, 130 + row * 22, x + 250, 140 + row * 20), fill=(90, 60, 20), width=3)
        draw.text((580, 458), f"{second % 86400 // 60:02d}:{second % 60:02d}", fill=(0, 0, 0))
        height = max(1, round(width * 480 / 640))
        buf = io.BytesIO()
        img.resize((width, height), Image.Resampling.BOX).save(buf, format="PNG")
        cache[key] = buf.getvalue()
        return cache[key]

    def health(name: str) -> EmulatorStatus:
        return EmulatorStatus(
            instance=name,
            overall_status=OverallStatus.HEALTHY,
            qemu_healthy=True,
            timestamp=datetime.now(UTC),
            supervisor_uptime_seconds=3600.0,
            qemu=QemuFacts(
                pid=4242, running=True, qmp_status="running", booted=True, uptime_seconds=3500.0
            ),
            video=VideoFacts(
                display_active=True,
                estimated_frame_rate=24.0 + hash(name) % 5,
                width=640,
                height=480,
                vnc_connected=True,
            ),
        )

    @app.get("/i/{name}/health")
    async def h(name: str) -> Response:
        return Response(health(name).model_dump_json(), media_type="application/json")

    @app.get("/i/{name}/thumbnail.png")
    async def t(name: str, width: int = Query(320, ge=16, le=1920)) -> Response:
        return Response(frame(name, int(time.time()), width), media_type="image/png")

    async def run() -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
            await asyncio.sleep(0.01)
        Path(port_file).write_text(str(sock.getsockname()[1]))
        await task

    asyncio.run(run())


@contextlib.contextmanager
def stack(count: int, workdir: Path, pictures: bool) -> Iterator[tuple[str, str]]:
    """Stand-in supervisors + the real backend; yields the backend's URL and the stand-ins'.

    With ``pictures``, this file's stand-ins (pictures that change every second, for the
    tiles); else the backend tests' (``tests/support/fake_emulator.py``: the supervisor's
    own status stream, and an admin call that changes an instance's state)."""
    port_file = workdir / f"fakes-{count}.port"
    port_file.unlink(missing_ok=True)
    argv = (
        [PY, __file__, "--serve-fakes", str(count), str(port_file)]
        if pictures
        else [
            PY, "-m", "tests.support.fake_emulator", "--instances", str(count),
            "--port-file", str(port_file),
            # Started two hours ago: ages that move once a minute, as in a fleet that runs.
            "--started-ago", "7200",
        ]
    )  # fmt: skip
    fakes = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backend: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if fakes.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake supervisors did not start")
            time.sleep(0.05)
        fport = int(port_file.read_text())
        static = workdir / f"static-{count}.json"
        static.write_text(
            json.dumps(
                {
                    "instances": [
                        {
                            "name": f"loco-{i}",
                            # The backend tests' stand-ins serve their first at the root.
                            "health_url": f"http://127.0.0.1:{fport}"
                            + (f"/i/loco-{i}" if pictures or i else ""),
                        }
                        for i in range(count)
                    ]
                }
            )
        )
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOCO_")}
        env["LOG_LEVEL"] = "warning"
        backend = subprocess.Popen(
            [
                str(BIN / "loco-backend"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--discovery",
                "static",
                "--static-config",
                str(static),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{url}/api/instances", timeout=2, trust_env=False)
                if r.status_code == 200 and all(i["last_probe_at"] for i in r.json()["items"]):
                    break
            if backend.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("backend did not come up")
            time.sleep(0.1)
        yield url, f"http://127.0.0.1:{fport}"
    finally:
        for proc in (backend, fakes):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)


# --------------------------------------------------------------------------- console on a pty


class Console:
    """The real ``locotui`` on a pseudo-terminal; counts and keeps what it writes."""

    def __init__(self, argv: list[str], workdir: Path) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("COLUMNS", "LINES") and not k.startswith(("LOCOTUI_", "KUBE"))
        }
        env.update(
            COLORTERM="truecolor",
            TERM="xterm-256color",
            HOME=str(workdir),
            XDG_CONFIG_HOME=str(workdir / "config"),
            XDG_STATE_HOME=str(workdir / "state"),
        )
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True
        )
        os.close(slave)
        self.fd = master
        self.total = 0
        self.tail = b""

    def pump(self, timeout: float) -> int:
        """Reads for up to ``timeout`` seconds; returns the bytes read."""
        end = time.monotonic() + timeout
        got = 0
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return got
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return got
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return got
            if not chunk:
                return got
            got += len(chunk)
            self.total += len(chunk)
            self.tail = (self.tail + chunk)[-200_000:]

    def text(self) -> str:
        return ANSI.sub(b"", self.tail).decode("utf-8", errors="replace")

    def wait_text(self, check: object, timeout: float) -> float:
        """Seconds until ``check(text)`` holds."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            self.pump(0.02)
            if check(self.text()):  # type: ignore[operator]
                return time.monotonic() - start
        raise TimeoutError(
            f"the console did not show what was expected; last output: {self.text()[-400:]!r}"
        )

    def key(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.key(b"q")
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def fault_to_console(console: Console, fakes: str, rounds: int) -> list[float]:
    """Seconds from a stand-in supervisor changing its state to the console showing it
    (loco-0, on the first screen of the table sorted by name)."""
    console.key(b"\x1b[H")
    out = []
    with httpx.Client(base_url=fakes, timeout=10, trust_env=False) as admin:
        for i in range(rounds):
            want = ("degraded", "healthy")[i % 2]
            symbol = {"degraded": "◐", "healthy": "●"}[want]
            shown = re.compile(rf"loco-0 +{symbol} {want}")
            console.pump(0.5)
            console.tail = b""
            sent = time.monotonic()
            admin.post(f"/_admin/loco-0/status/{want}").raise_for_status()
            console.wait_text(lambda text, w=shown: w.search(text) is not None, 15)
            out.append(time.monotonic() - sent)
    return out


def scenario(
    name: str,
    count: int,
    extra: list[str],
    first_paint: object,
    cursor_key: tuple[tuple[bytes, bytes], str],
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, object]:
    print(f"\n== {name}: {count} instances, locotui {' '.join(extra)}")
    out: dict[str, object] = {}
    with stack(count, workdir, pictures="--no-thumbnails" not in extra) as (url, fakes):
        paints = []
        for _ in range(args.starts):
            console = Console([str(BIN / "locotui"), "--backend", url, *extra], workdir)
            try:
                console.wait_text(first_paint, 60)
                paints.append(time.monotonic() - console.started)
            finally:
                console.close()
        out["first_paint_s"] = statistics.median(paints)
        print(
            f"  start -> first full paint: median {out['first_paint_s'] * 1000:.0f} ms "
            f"(of {len(paints)}: {', '.join(f'{p * 1000:.0f}' for p in paints)})"
        )

        console = Console([str(BIN / "locotui"), "--backend", url, *extra], workdir)
        try:
            console.wait_text(first_paint, 60)
            console.pump(args.warmup)
            pid = console.proc.pid
            cpus, rates, rss = [], [], []
            rss_start = rss_mib(pid)
            for _ in range(args.repeat):
                c0, b0, t0 = cpu_seconds(pid), console.total, time.monotonic()
                console.pump(args.window)
                dt = time.monotonic() - t0
                cpus.append(100 * (cpu_seconds(pid) - c0) / dt)
                rates.append((console.total - b0) / dt)
                rss.append(rss_mib(pid))
            out.update(
                cpu_pct=statistics.median(cpus),
                bytes_per_s=statistics.median(rates),
                rss_mib=statistics.median(rss),
                rss_growth_mib=rss[-1] - rss_start,
            )
            print(
                f"  CPU: median {out['cpu_pct']:.1f} % of a core "
                f"({', '.join(f'{c:.1f}' for c in cpus)})"
            )
            print(
                f"  written to the terminal: median {out['bytes_per_s'] / 1000:.1f} kB/s "
                f"({', '.join(f'{r / 1000:.1f}' for r in rates)})"
            )
            print(
                f"  RSS: median {out['rss_mib']:.0f} MiB "
                f"(growth over the windows {out['rss_growth_mib']:+.1f} MiB)"
            )

            latencies = []
            order = ["status", "fps", "restarts", "age", "name"]
            for i in range(args.keys):
                want = f"sort {order[i % len(order)]}"
                console.pump(0.3)  # let background repaints pass, then start clean
                console.tail = b""
                sent = time.monotonic()
                console.key(b"s")
                console.wait_text(lambda text, w=want: w in text, 10)
                latencies.append(time.monotonic() - sent)
            out.update(
                key_median_ms=statistics.median(latencies) * 1000, key_p95_ms=p95(latencies) * 1000
            )
            print(
                f"  key press -> repaint, 's' (re-sort, everything moves; the header names "
                f"the new sort): median {out['key_median_ms']:.0f} ms, p95 "
                f"{out['key_p95_ms']:.0f} ms ({len(latencies)} presses)"
            )

            # The everyday key: move the cursor (sorted by name again now: back and forth
            # between loco-0 and loco-1). The line of the newly focused one is repainted.
            moves = []
            (forward, back), look = cursor_key
            console.key(b"\x1b[H")  # Home: loco-0
            console.pump(0.5)
            for i in range(1, args.keys + 1):
                console.pump(0.3)
                console.tail = b""
                sent = time.monotonic()
                console.key(forward if i % 2 else back)
                want = re.compile(look.format(i % 2))
                console.wait_text(lambda text, w=want: w.search(text) is not None, 10)
                moves.append(time.monotonic() - sent)
            out.update(
                move_median_ms=statistics.median(moves) * 1000, move_p95_ms=p95(moves) * 1000
            )
            print(
                f"  key press -> repaint, cursor move: median {out['move_median_ms']:.0f} ms, "
                f"p95 {out['move_p95_ms']:.0f} ms ({len(moves)} presses)"
            )
            if "--no-thumbnails" in extra and args.faults:
                faults = fault_to_console(console, fakes, args.faults)
                out.update(fault_median_ms=statistics.median(faults) * 1000)
                print(
                    f"  emulator state change -> on the console (stand-in's status stream, "
                    f"the backend, its summary stream, the table): median "
                    f"{out['fault_median_ms']:.0f} ms, max {max(faults) * 1000:.0f} ms "
                    f"({len(faults)} changes)"
                )
        finally:
            console.close()
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-fakes":
        serve_fakes(int(sys.argv[2]), sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="measurement windows (3)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per window (10)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring (5)")
    parser.add_argument("--keys", type=int, default=20, help="key presses timed (20)")
    parser.add_argument("--starts", type=int, default=3, help="cold starts timed (3)")
    parser.add_argument(
        "--faults", type=int, default=10, help="state changes timed to the console (10)"
    )
    parser.add_argument("--only", choices=["tiles", "table"], help="run one scenario")
    parser.add_argument(
        "--rows", default="200,1000", help="fleet sizes of the table scenario (200,1000)"
    )
    args = parser.parse_args()
    print(
        f"locotui benchmark — {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, terminal {SIZE[0]}x{SIZE[1]}"
    )
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "tiles"):
            results["tiles"] = scenario(
                "tiles",
                9,
                ["--thumbnail-interval", "1"],
                lambda t: all(f"loco-{i}" in t for i in range(9)) and t.count(" fps") >= 9,
                ((b"\x1b[C", b"\x1b[D"), r"┏━ loco-{} "),
                args,
                workdir,
            )
        for rows in [int(n) for n in args.rows.split(",") if n] if args.only != "tiles" else []:
            results[f"table{rows}"] = scenario(
                f"table{rows}",
                rows,
                ["--view", "table", "--no-thumbnails"],
                lambda t: "loco-0" in t and "loco-40" in t and "STATUS" in t,
                ((b"j", b"k"), r"loco-{} "),
                args,
                workdir,
            )
    print("\nsummary (medians):")
    for name, r in results.items():
        print(
            f"  {name:9} first paint {r['first_paint_s'] * 1000:5.0f} ms "
            f"| CPU {r['cpu_pct']:5.1f} % "
            f"| {r['bytes_per_s'] / 1000:6.1f} kB/s | RSS {r['rss_mib']:4.0f} MiB "
            f"| re-sort {r['key_median_ms']:3.0f} ms (p95 {r['key_p95_ms']:.0f}) "
            f"| move {r['move_median_ms']:3.0f} ms (p95 {r['move_p95_ms']:.0f})"
            + (
                f" | change -> console {r['fault_median_ms']:.0f} ms"
                if "fault_median_ms" in r
                else ""
            )
        )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())

"""``make bench``: every benchmark under ``bench/``, one after the other, each bounded in
time, its output shown as it comes and written into ``docs/performance.md``.

    .venv/bin/python -m bench.run [--only bench_tui bench_backend] [--limit 900]

The arguments below keep each benchmark to a few minutes on two cores; run one by hand
(the command is in its block) for more rounds. Everything runs on loopback and stops by
itself; a benchmark that fails or runs over its limit is stopped (its whole process
group), and its block says so with the output it had produced.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

from bench.report import ROOT, Run, load, write_block

_BACKEND = [
    "--window",
    "5",
    "--fault-rounds",
    "5",
    "--list-requests",
    "500",
    "--real-rounds",
    "3",
    "--repeat",
    "1",
    "--duration",
    "5",
    "--sse-rounds",
    "5",
]
# (module, title, arguments): the order goes from the smallest stack to the largest.
BENCHES: list[tuple[str, str, list[str]]] = [
    ("bench_emulator", "Emulator supervisor (bench_emulator)", ["--runs", "5"]),
    (
        "bench_backend",
        "Backend: watch vs poll, faults, SSE fan-out, serving (bench_backend)",
        _BACKEND,
    ),
    (
        "bench_tui",
        "Console (bench_tui)",
        ["--repeat", "2", "--window", "8", "--keys", "20", "--starts", "3"],
    ),
    ("bench_remediation", "Automatic recovery (bench_remediation)", ["--runs", "2"]),
    ("bench_stream", "Video stream (bench_stream)", ["--seconds", "15"]),
]


def run_one(module: str, title: str, args: list[str], limit: float) -> Run:
    argv = [sys.executable, "-m", f"bench.{module}", *args]
    command = " ".join([".venv/bin/python", "-m", f"bench.{module}", *args])
    print(f"\n### {title}\n$ {command}", flush=True)
    started, t0, before = datetime.now(UTC), time.monotonic(), load()
    output: list[str] = []
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its stand-ins and consoles go with it on a time-out
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    outcome = "completed"
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = limit - (time.monotonic() - t0)
            if left <= 0:
                outcome = f"stopped after its {limit:g} s limit"
                break
            if not sel.select(timeout=min(left, 5.0)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            text = decoder.decode(chunk)
            output.append(text)
            print(text, end="", flush=True)
    if outcome == "completed":
        try:
            proc.wait(max(1.0, limit - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            outcome = f"stopped after its {limit:g} s limit"
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # Whatever it started and left behind (it failed half-way) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.stdout.close()
    if outcome == "completed" and proc.returncode != 0:
        outcome = f"failed (exit status {proc.returncode})"
    return Run(
        module,
        title,
        command,
        started,
        time.monotonic() - t0,
        before,
        load(),
        outcome,
        "".join(output),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    names = [m for m, _, _ in BENCHES]
    parser.add_argument("--only", nargs="+", choices=names, help="run only these")
    parser.add_argument(
        "--limit", type=float, default=900.0, help="seconds at most per benchmark (900)"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/performance.md")
    args = parser.parse_args()
    failed = 0
    for module, title, bench_args in BENCHES:
        if args.only and module not in args.only:
            continue
        run = run_one(module, title, bench_args, args.limit)
        failed += run.outcome != "completed"
        if not args.no_doc:
            write_block(run)
            print(f"-> docs/performance.md: {title} ({run.outcome})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

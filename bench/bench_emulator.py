"""Emulator supervisor figures: cold start, /health latency, CPU, frame-rate accuracy.

Run: .venv/bin/python -m bench.bench_emulator [--runs 5] [--rates 10,15,20,25,30]
Prints medians; nothing here is asserted (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from emulator.testimage import decode_frame_counter
from tests.support.supervisor import make_image, start_supervisor

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def cold_start(runs: int) -> list[float]:
    times = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            sup = start_supervisor(Path(tmp), f"cold{i}")
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    while True:
                        try:
                            if (await client.get(f"{sup.url}/ready")).status_code == 200:
                                break
                        except httpx.HTTPError:
                            pass
                        if time.monotonic() - started > 60:
                            raise RuntimeError("not ready within 60 s")
                        await asyncio.sleep(0.02)
                times.append(time.monotonic() - started)
            finally:
                sup.stop()
    return times


async def steady_state(seconds: float, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        sup = start_supervisor(Path(tmp), "steady")
        try:
            await sup.wait_ready(60)
            await asyncio.sleep(3)
            qemu = sup.qemu_pid()
            assert qemu is not None
            s0, q0, t0 = cpu_seconds(sup.proc.pid), cpu_seconds(qemu), time.monotonic()
            await asyncio.sleep(seconds)
            s1, q1, t1 = cpu_seconds(sup.proc.pid), cpu_seconds(qemu), time.monotonic()
            latencies = []
            async with httpx.AsyncClient(base_url=sup.url, timeout=5) as client:
                for _ in range(requests):
                    begin = time.perf_counter()
                    (await client.get("/health")).raise_for_status()
                    latencies.append((time.perf_counter() - begin) * 1000)
            latencies.sort()
            return {
                "supervisor_cpu_pct": 100 * (s1 - s0) / (t1 - t0),
                "qemu_cpu_pct": 100 * (q1 - q0) / (t1 - t0),
                "health_median_ms": statistics.median(latencies),
                "health_p99_ms": latencies[int(len(latencies) * 0.99) - 1],
            }
        finally:
            sup.stop()


async def counter(url: str) -> tuple[int, float]:
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(50):
            r = await client.get(f"{url}/thumbnail.png", params={"width": 1920})
            taken = time.monotonic()
            value = decode_frame_counter(np.asarray(Image.open(io.BytesIO(r.content))))
            if value is not None:
                return value, taken
            await asyncio.sleep(0.05)
    raise RuntimeError("no counter decoded")


async def fps_accuracy(rate: int, span: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        sup = start_supervisor(Path(tmp), f"fps{rate}", image=make_image(Path(tmp), fps=rate))
        try:
            await sup.wait_ready(60)
            await sup.wait_status(lambda h: h["video"]["frames_total"] >= 2 * rate, 60)
            c1, t1 = await counter(sup.url)
            await asyncio.sleep(span)
            c2, t2 = await counter(sup.url)
            truth = ((c2 - c1) % 65536) / (t2 - t1)
            estimate = (await sup.health())["video"]["estimated_frame_rate"]
            return truth, estimate
        finally:
            sup.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rates", default="10,15,20,25,30")
    parser.add_argument("--cpu-seconds", type=float, default=15.0)
    args = parser.parse_args()
    make_image(Path(tempfile.gettempdir()))

    starts = await cold_start(args.runs)
    print(
        f"cold start to /ready: median {statistics.median(starts):.2f} s "
        f"(min {min(starts):.2f}, max {max(starts):.2f}, n={len(starts)})"
    )
    steady = await steady_state(args.cpu_seconds, 500)
    print(
        f"/health latency: median {steady['health_median_ms']:.2f} ms, "
        f"p99 {steady['health_p99_ms']:.2f} ms (n=500, keep-alive)"
    )
    print(
        f"CPU over {args.cpu_seconds:.0f} s at 30 frames/s: supervisor "
        f"{steady['supervisor_cpu_pct']:.1f} % of a core, QEMU {steady['qemu_cpu_pct']:.1f} %"
    )
    errors = []
    for rate in (int(r) for r in args.rates.split(",")):
        truth, estimate = await fps_accuracy(rate, 8.0)
        error = 100 * (estimate - truth) / truth
        errors.append(abs(error))
        print(
            f"guest {rate:>2} frames/s: counter says {truth:6.2f}, estimate {estimate:6.2f} "
            f"({error:+.1f} %)"
        )
    print(
        f"frame-rate error: median |error| {statistics.median(errors):.1f} %, "
        f"max {max(errors):.1f} %"
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Automatic recovery figures on real emulators: detection and recovery time per rung.

Run: .venv/bin/python -m bench.bench_remediation [--runs 3] [--thresholds DEFAULTS]

Each run starts one real supervisor (the test guest) and a backend with the policy on and
the ``testimage`` profile's thresholds (the defaults unless ``--thresholds`` says
otherwise), freezes the guest's picture over its serial port and times, from the freeze:

* the backend reading 0 frames/s,
* the soft reset, and the guest drawing again after it (rung 1),
* then, frozen again once it draws: the restart, and the new QEMU drawing (rung 2).

Prints medians; nothing here is asserted (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.chaos.harness import EventLog, local_fleet


def _drawing(inst: dict[str, Any]) -> bool:
    return (inst.get("fps") or 0) > 0


def _qemu(inst: dict[str, Any]) -> int | None:
    return ((inst.get("health") or {}).get("qemu") or {}).get("pid")


async def one_run(tmp: Path, thresholds: str | None) -> dict[str, float]:
    args = ["--remediation"]
    if thresholds:
        args += ["--remediation-thresholds", thresholds]
    async with local_fleet(tmp, ["bench"], backend_args=args) as fleet:
        sup, watch = fleet.sup("bench"), fleet.watch
        events = EventLog(fleet.backend).start()
        try:
            first_qemu = sup.qemu_pid()
            t0 = time.monotonic()
            await sup.freeze_picture()
            _, still = await watch.until("bench", lambda i: i.get("fps") == 0, 60, "0 frames/s")
            await events.until("bench", "reset", "acted", 120)
            reset_at = time.monotonic() - t0
            _, drawing = await watch.until("bench", _drawing, 60, "drawing after the reset")
            after_reset = reset_at + drawing
            await sup.freeze_picture()
            t1 = time.monotonic()
            await events.until("bench", "restart", "acted", 180)
            restart_at = time.monotonic() - t1
            _, back = await watch.until(
                "bench",
                lambda i: _qemu(i) not in (None, first_qemu) and _drawing(i),
                60,
                "a new QEMU drawing",
            )
            return {
                "detected": still,
                "reset": reset_at,
                "drawing after reset": after_reset,
                "restart (after the refreeze)": restart_at,
                "drawing after restart": restart_at + back,
            }
        finally:
            await events.stop()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument(
        "--thresholds",
        help="PROFILE.KEY=SECONDS,... as --remediation-thresholds (default: the built-ins)",
    )
    args = p.parse_args()
    results: list[dict[str, float]] = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="loco-bench-rem-") as tmp:
            results.append(await one_run(Path(tmp), args.thresholds))
        print(f"run {i + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in results[-1].items()))
    print(f"\nmedians of {len(results)} runs, seconds from the freeze (restart: from the refreeze)")
    for key in results[0]:
        values = [r[key] for r in results]
        print(
            f"  {key:30} {statistics.median(values):6.1f}  "
            f"(min {min(values):.1f}, max {max(values):.1f})"
        )


if __name__ == "__main__":
    asyncio.run(main())

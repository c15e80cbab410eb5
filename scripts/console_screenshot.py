"""Writes docs/images/console.svg: the console on a live local demo fleet, as Textual saves it.

Run: .venv/bin/python scripts/console_screenshot.py [--instances 3] [--out docs/images/console.svg]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from locotui import config  # noqa: E402
from locotui.data.backend_client import BackendClient  # noqa: E402
from locotui.demo.stack import DemoStack  # noqa: E402
from locotui.ui.app import LocoApp  # noqa: E402


async def shoot(instances: int, out: Path, settle: float) -> None:
    stack = DemoStack(instances=instances, prometheus=False)
    await stack.start(lambda m: print(m, file=sys.stderr))
    try:
        settings = config.load_settings({"backend_url": stack.backend_url}, env={})
        with tempfile.TemporaryDirectory() as tmp:
            app = LocoApp(
                settings,
                backend=BackendClient(stack.backend_url, token=stack.token),
                kube=None,
                kube_note="Kubernetes not used: local fleet",
                context=None,
                audit_path=Path(tmp) / "audit.jsonl",
            )
            async with app.run_test(size=(160, 48)) as pilot:
                # Long enough for fps history, a few sparkline points and the thumbnails.
                end = time.monotonic() + settle
                while time.monotonic() < end:
                    await pilot.pause(0.5)
                out.parent.mkdir(parents=True, exist_ok=True)
                app.save_screenshot(filename=out.name, path=str(out.parent))
    finally:
        stack.stop()
        stack.cleanup()
    print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "console.svg")
    parser.add_argument("--settle", type=float, default=15.0)
    args = parser.parse_args()
    asyncio.run(shoot(args.instances, args.out, args.settle))


if __name__ == "__main__":
    main()

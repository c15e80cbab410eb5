"""python -m tests.kubesim --port P --kubeconfig-out FILE [--namespace NS] [--emulators N]

Runs the simulator in the foreground until SIGINT/SIGTERM. The kubeconfig is written once
the port is listening, so a parent process may wait for the file to appear.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from tests.kubesim.sim import KubeSim
from tests.kubesim.timing import Timing

DEMO_BOOT_LOG = [
    '{{"level":"info","msg":"loco-emulator supervisor starting","pod":"{pod}"}}',
    '{{"level":"info","msg":"disk image verified","pod":"{pod}"}}',
    '{{"level":"info","msg":"qemu started","pod":"{pod}"}}',
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.kubesim", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--kubeconfig-out", required=True, help="where to write the kubeconfig")
    parser.add_argument(
        "--namespace", default="default", help="namespace of the kubeconfig context"
    )
    parser.add_argument("--emulators", type=int, default=0, help="seed a StatefulSet with N pods")
    parser.add_argument(
        "--statefulset", default="loco-emulator", help="name of the seeded StatefulSet"
    )
    parser.add_argument("--realistic", action="store_true", help="human-scale phase timings")
    parser.add_argument(
        "--demo-logs", action="store_true", help="write a few log lines per pod start"
    )
    parser.add_argument(
        "--no-tls", action="store_true", help="plain http (kubectl will not send tokens)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    sim = KubeSim(
        namespace=args.namespace,
        emulators=args.emulators,
        statefulset=args.statefulset,
        timing=Timing.realistic() if args.realistic else Timing(),
        port=args.port,
        kubeconfig=args.kubeconfig_out,
        boot_log=DEMO_BOOT_LOG if args.demo_logs else None,
        tls=not args.no_tls,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim.start()
    print(
        f"kubesim listening on {sim.url} (namespace {args.namespace}, "
        f"kubeconfig {args.kubeconfig_out}, admin token {sim.admin.token}, "
        f"read-only token {sim.readonly.token})",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Progress of long steps: what is happening and for how long, on stderr.

On a terminal one line is redrawn every second; otherwise (CI logs, pipes) a line is
printed every 30 s, so a slow build is visibly alive without flooding the log.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


class Progress:
    def __init__(self, stream: TextIO | None = None, prefix: str = "cluster") -> None:
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self.tty = self.stream.isatty()

    def say(self, message: str) -> None:
        print(f"{self.prefix}: {message}", file=self.stream, flush=True)

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Shows ``what`` with a running clock until the block ends, then how long it took."""
        start = time.monotonic()
        done = threading.Event()
        self.say(f"{what} ...")

        def tick() -> None:
            interval = 1.0 if self.tty else 30.0
            while not done.wait(interval):
                spent = elapsed(time.monotonic() - start)
                if self.tty:
                    print(f"\r{self.prefix}: {what} ... {spent}", end="", file=self.stream)
                    self.stream.flush()
                else:
                    self.say(f"{what} ... {spent}")

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            done.set()
            ticker.join()
            if self.tty:
                print("\r\033[K", end="", file=self.stream)
            spent = elapsed(time.monotonic() - start)
            self.say(f"{what}: {'done' if ok else 'failed'} in {spent}")

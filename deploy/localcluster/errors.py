"""The one error type the command line turns into a single line (no traceback)."""

from __future__ import annotations

from pathlib import Path


class ClusterError(Exception):
    """A step failed: what failed, where its log is, and what to do about it."""

    def __init__(self, what: str, log: Path | None = None, hint: str = "") -> None:
        self.what = what
        self.log = log
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        parts = [self.what]
        if self.log is not None:
            parts.append(f"log: {self.log}")
        if self.hint:
            parts.append(self.hint)
        return "; ".join(parts)

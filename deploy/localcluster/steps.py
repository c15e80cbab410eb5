"""Running one external command as a step: output to a log file, failure as one clear line."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from localcluster.errors import ClusterError


def run_logged(
    argv: Sequence[str | os.PathLike[str]],
    log: Path,
    what: str,
    hint: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    append: bool = True,
) -> None:
    """Runs ``argv`` with stdout and stderr appended to ``log``; raises ClusterError on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:
        out.write(f"$ {' '.join(map(str, argv))}\n".encode())
        out.flush()
        try:
            result = subprocess.run(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ClusterError(f"{what}: {argv[0]} is not installed", log, hint) from None
        except subprocess.TimeoutExpired:
            raise ClusterError(f"{what}: still running after {timeout:.0f} s", log, hint) from None
    if result.returncode != 0:
        raise ClusterError(f"{what} failed (exit {result.returncode})", log, hint)


def output(
    argv: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs a short command and returns what it printed (never raises on exit status)."""
    return subprocess.run(
        [str(a) for a in argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        timeout=timeout,
        cwd=cwd,
        check=False,
    )

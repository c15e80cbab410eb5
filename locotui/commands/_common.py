"""Shared plumbing of the scriptable commands: clients, errors, exit codes, output."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from locotui.data.backend_client import BackendClient
from locotui.data.errors import (
    EXIT_FAILED,
    EXIT_FORBIDDEN,
    EXIT_NEEDS_PERSON,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    DataError,
    exit_code_for,
)

if TYPE_CHECKING:
    from locotui.config import Settings
    from locotui.data.kube_client import KubeClient

__all__ = [
    "EXIT_FAILED",
    "EXIT_FORBIDDEN",
    "EXIT_INTERRUPTED",
    "EXIT_NEEDS_PERSON",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "confirmed",
    "error",
    "exit_code_for",
    "kube_configured",
    "open_backend",
    "open_kube",
    "run_main",
]

EXIT_INTERRUPTED = 130


def error(message: str, stream: TextIO | None = None) -> None:
    """One line on stderr, no traceback."""
    print(f"locotui: error: {message}", file=stream or sys.stderr, flush=True)


def note(message: str, stream: TextIO | None = None) -> None:
    print(f"locotui: {message}", file=stream or sys.stderr, flush=True)


async def confirmed(text: str, yes: bool, stdin: TextIO) -> bool:
    """Whether to go ahead with what ``text`` describes: ``--yes``, or "y" typed on a
    terminal after seeing it. Without a terminal and ``--yes`` the answer is no, and the
    line says how to confirm."""
    if yes:
        return True
    if not stdin.isatty():
        error(
            "refusing to act without confirmation: stdin is not a terminal; "
            f"pass --yes to confirm ({text})"
        )
        return False
    print(text, file=sys.stderr)
    print("Proceed? [y/N] ", end="", file=sys.stderr, flush=True)
    # input() blocks; keep the loop free (Ctrl-C still works).
    answer = await asyncio.to_thread(stdin.readline)
    if answer.strip().lower() in ("y", "yes"):
        return True
    note("cancelled")
    return False


def open_backend(settings: Settings, timeout: float = 5.0) -> BackendClient:
    return BackendClient(settings.backend_url, token=settings.control_token, timeout=timeout)


def kube_configured(settings: Settings, env: Mapping[str, str] | None = None) -> bool:
    """Whether there is any way to reach Kubernetes (so a failure is worth reporting)."""
    env = os.environ if env is None else env
    if settings.kubeconfig or settings.kube_context:
        return True
    if env.get("KUBECONFIG", "").strip() or env.get("KUBERNETES_SERVICE_HOST"):
        return True
    return (Path.home() / ".kube" / "config").is_file()


async def open_kube(settings: Settings) -> KubeClient:
    # Imported here: the Kubernetes client costs a second or more to import, which
    # commands that never touch Kubernetes should not pay.
    from locotui.data.kube_client import KubeClient

    return await KubeClient.from_settings(settings)


def run_main(main: Callable[[], Awaitable[int]]) -> int:
    """Runs a command's coroutine; Ctrl-C ends it quietly (exit 130); a DataError that
    escaped becomes its one line and exit code."""
    try:
        return asyncio.run(_guard(main))
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return EXIT_INTERRUPTED


async def _guard(main: Callable[[], Awaitable[int]]) -> int:
    try:
        return await main()
    except DataError as exc:
        error(str(exc))
        return exit_code_for(exc)
    except BrokenPipeError:
        # Output piped into head/less that quit: not an error of ours.
        _silence_stdout()
        return EXIT_OK


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def safe_print(*args: Any, **kwargs: Any) -> None:
    kwargs.setdefault("flush", True)
    print(*args, **kwargs)

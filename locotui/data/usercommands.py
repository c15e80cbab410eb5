"""User commands: the config's ``[commands]`` table, argv lists run for one instance.

    [commands]
    describe = ["kubectl", "-n", "$NAMESPACE", "describe", "pod", "$NAME"]
    node-top = { argv = ["kubectl", "top", "node", "$NODE"], description = "the node's load" }

``$NAME``, ``$NAMESPACE`` and ``$NODE`` (also ``${NAME}``) are replaced inside each
argument separately, and the list is run as it is: never through a shell, so a value
cannot become a second command or a redirection, whatever it contains. ``$$`` is a
literal ``$``; any other ``$VARIABLE`` is refused when the config is read (a typo is not
silently passed on). A command whose variable has no value for the instance (``$NODE``
of a local instance) is refused with the reason before anything runs.

Running: no standard input, output and errors captured together (the last
:data:`OUTPUT_LIMIT` bytes kept), a timeout after which the command and everything it
started are killed. Pure parsing and expanding; :func:`run` is the only I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "VARIABLES",
    "CommandError",
    "CommandResult",
    "UserCommand",
    "expand",
    "launch",
    "parse_commands",
    "parse_viewer",
    "run",
    "run_audited",
]

VARIABLES = ("NAME", "NAMESPACE", "NODE")
OUTPUT_LIMIT = 64 * 1024
DEFAULT_TIMEOUT = 60.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class CommandError(ValueError):
    """A command that cannot be used or run; ``str()`` says why in one line; ``command``
    names the config entry at fault."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True)
class UserCommand:
    name: str
    argv: tuple[str, ...]
    description: str = ""
    timeout: float = DEFAULT_TIMEOUT

    @property
    def variables(self) -> frozenset[str]:
        """The variables its arguments use."""
        found = set()
        for arg in self.argv:
            for m in _VAR.finditer(arg):
                if m.group(1) or m.group(2):
                    found.add(m.group(1) or m.group(2))
        return frozenset(found)


def _check_argv(name: str, argv: Any, variables: Sequence[str] = VARIABLES) -> tuple[str, ...]:
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise CommandError(
            f"{name} must be a list of strings (the program, then its arguments), e.g. "
            f'{name} = ["kubectl", "describe", "pod", "$NAME"]',
            name,
        )
    if not argv[0].strip():
        raise CommandError(f"{name}: the program (the first item) is empty", name)
    for arg in argv:
        for m in _VAR.finditer(arg):
            var = m.group(1) or m.group(2)
            if var and var not in variables:
                known = ", ".join(f"${v}" for v in variables)
                raise CommandError(
                    f"{name}: unknown variable ${var} in {arg!r} (known: {known}; "
                    "write $$ for a literal $)",
                    name,
                )
    return tuple(argv)


def parse_commands(table: Mapping[str, Any]) -> dict[str, UserCommand]:
    """The ``[commands]`` table: name → argv list, or name → ``{argv, description,
    timeout}``. Raises :class:`CommandError` naming the entry."""
    out: dict[str, UserCommand] = {}
    for name, value in table.items():
        if not _NAME.match(name):
            raise CommandError(
                f"command name {name!r} must be letters, digits, '-', '_' or '.'", name
            )
        if isinstance(value, dict):
            unknown = set(value) - {"argv", "description", "timeout"}
            if unknown:
                raise CommandError(
                    f"{name}: unknown key {sorted(unknown)[0]!r} (use argv, description, timeout)",
                    name,
                )
            argv = _check_argv(name, value.get("argv"))
            description = value.get("description", "")
            if not isinstance(description, str):
                raise CommandError(f"{name}: description must be a string", name)
            timeout = value.get("timeout", DEFAULT_TIMEOUT)
            if (
                not isinstance(timeout, int | float)
                or isinstance(timeout, bool)
                or not 1 <= timeout <= 3600
            ):
                raise CommandError(f"{name}: timeout must be 1 to 3600 seconds", name)
            out[name] = UserCommand(name, argv, description, float(timeout))
        else:
            out[name] = UserCommand(name, _check_argv(name, value))
    return out


VIEWER_VARIABLES = ("HOST", "PORT", "NAME")


def parse_viewer(value: Any) -> UserCommand:
    """The ``vnc_viewer`` setting: an argv list with ``$HOST``, ``$PORT`` and ``$NAME``
    (e.g. ``["vncviewer", "$HOST::$PORT"]``). Raises :class:`CommandError`."""
    return UserCommand("vnc_viewer", _check_argv("vnc_viewer", value, VIEWER_VARIABLES))


async def launch(argv: Sequence[str]) -> int:
    """Starts ``argv`` (no shell, no terminal: its own session, standard streams closed)
    and leaves it running — a viewer window is the operator's, not the console's; it
    ends by itself when the forward it shows closes with the console. Returns its pid;
    raises :class:`CommandError` when it cannot start."""
    program = shutil.which(argv[0])
    if program is None:
        raise CommandError(f"{argv[0]}: program not found (is it on PATH?)")
    try:
        proc = await asyncio.create_subprocess_exec(
            program,
            *argv[1:],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # not in the console's terminal: its keys stay ours
        )
    except OSError as exc:
        raise CommandError(f"{argv[0]}: cannot run it: {exc.strerror or exc}") from None
    return proc.pid


def expand(command: UserCommand, values: Mapping[str, str | None]) -> list[str]:
    """The argv with each variable replaced inside its own argument. Raises
    :class:`CommandError` when a variable the command uses has no value."""
    missing = sorted(v for v in command.variables if not values.get(v))
    if missing:
        who = values.get("NAME") or "this instance"
        raise CommandError(
            f"{command.name} needs ${missing[0]}, which is not known for {who}", command.name
        )

    def one(m: re.Match[str]) -> str:
        var = m.group(1) or m.group(2)
        return "$" if var is None else str(values[var])

    return [_VAR.sub(one, arg) for arg in command.argv]


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int | None
    """None when it was killed at the timeout."""
    output: str
    """Standard output and error together, the last :data:`OUTPUT_LIMIT` bytes."""
    seconds: float
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def summary(self) -> str:
        if self.exit_code is None:
            return f"killed after {self.seconds:.0f} s (timeout)"
        return f"exit {self.exit_code} after {self.seconds:.1f} s"


async def run(argv: Sequence[str], seconds: float = DEFAULT_TIMEOUT) -> CommandResult:
    """Runs ``argv`` (no shell, no standard input) and collects what it writes; after
    ``seconds`` it and everything it started are killed.

    Raises :class:`CommandError` when the program cannot be started (not found, not
    executable)."""
    program = shutil.which(argv[0])
    if program is None:
        raise CommandError(f"{argv[0]}: program not found (is it on PATH?)")
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            program,
            *argv[1:],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group: a timeout kills what it started too.
            start_new_session=True,
        )
    except OSError as exc:
        raise CommandError(f"{argv[0]}: cannot run it: {exc.strerror or exc}") from None
    assert proc.stdout is not None
    kept = bytearray()
    truncated = False

    async def collect() -> None:
        nonlocal truncated
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            kept.extend(chunk)
            if len(kept) > OUTPUT_LIMIT:
                del kept[: len(kept) - OUTPUT_LIMIT]
                truncated = True

    exit_code: int | None
    try:
        await asyncio.wait_for(asyncio.gather(collect(), proc.wait()), seconds)
        exit_code = proc.returncode
    except (TimeoutError, asyncio.CancelledError) as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise  # the console is closing: nothing of it is left running
        exit_code = None
    return CommandResult(
        tuple(argv),
        exit_code,
        kept.decode("utf-8", errors="replace"),
        time.monotonic() - started,
        truncated,
    )


async def run_audited(
    command: UserCommand,
    argv: Sequence[str],
    target: str,
    audit: Any,
    *,
    read_only: bool,
) -> CommandResult:
    """Runs a user command for ``target`` and records it in ``audit`` (an
    :class:`~locotui.data.actions.AuditLog`): the exact argv, how it ended, the last
    line of its output. In read-only mode nothing runs; the refusal is recorded and
    :class:`CommandError` raised. A command that cannot start is recorded as failed."""
    from datetime import UTC, datetime

    from locotui.data.actions import ActionKind, AuditEntry

    shown = shlex.join(argv)  # quoted for reading: where each argument ends
    if read_only:
        await audit.append(
            AuditEntry(
                datetime.now(UTC),
                ActionKind.USER_COMMAND,
                (target,),
                "refused",
                "read-only mode",
                (f"{command.name}: {shown}",),
            )
        )
        raise CommandError(f"read-only mode: {command.name} is not run", command.name)
    try:
        result = await run(argv, command.timeout)
    except CommandError as exc:
        await audit.append(
            AuditEntry(
                datetime.now(UTC),
                ActionKind.USER_COMMAND,
                (target,),
                "failed",
                str(exc),
                (f"{command.name}: {shown}",),
            )
        )
        raise
    last = next((ln for ln in reversed(result.output.splitlines()) if ln.strip()), "")
    await audit.append(
        AuditEntry(
            datetime.now(UTC),
            ActionKind.USER_COMMAND,
            (target,),
            "ok" if result.ok else "failed",
            None if result.ok else result.summary(),
            (f"{command.name}: {shown}", f"{result.summary()}: {last[:200]}"),
        )
    )
    return result

"""The log model (Toolong-style, apart from widgets): lines, parsing, filtering, merging.

* :func:`parse_line` turns one raw line into a :class:`LogLine`: JSON log records (the
  project's own :mod:`emulator.jsonlog` format, and common variants: ``msg``, ``severity``,
  ``time``/``ts``) get timestamp, level, logger, message and context; a ``kubectl logs
  --timestamps`` prefix is split off; anything else is kept as-is.
* :class:`LogBuffer` is a bounded ring buffer (by lines *and* bytes) with a ``version``
  counter so a view can tell what is new.
* :class:`LogFilter` matches lines (substring or regex, levels, instances) and returns
  the match spans to highlight.
* :class:`LogTail` merges several sources (kube pod logs, backend logs) into one buffer,
  each line tagged with its instance; a source's failure becomes a marked line plus an
  entry in ``errors``, never an exception in the UI.
* :func:`save_lines` writes lines to a file atomically and refuses to overwrite unless told.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from emulator.atomicfile import write_atomic
from locotui.data.errors import DataError

__all__ = [
    "LEVELS",
    "LogBuffer",
    "LogFilter",
    "LogLine",
    "LogTail",
    "SaveRefused",
    "backend_source",
    "format_line",
    "kube_source",
    "parse_line",
    "save_lines",
]

# Canonical level names, lowest first; aliases map onto them.
LEVELS = ("debug", "info", "warning", "error", "critical")
_LEVEL_ALIASES = {
    "trace": "debug",
    "dbg": "debug",
    "information": "info",
    "notice": "info",
    "warn": "warning",
    "err": "error",
    "fatal": "critical",
    "crit": "critical",
    "panic": "critical",
    "alert": "critical",
    "emergency": "critical",
}
_TS_KEYS = ("timestamp", "time", "ts", "@timestamp", "asctime")
_LEVEL_KEYS = ("level", "levelname", "severity", "lvl")
_MSG_KEYS = ("message", "msg", "event")
_LOGGER_KEYS = ("logger", "name", "logger_name")
# kubectl logs --timestamps: RFC 3339 with nanoseconds, then one space.
_K8S_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")


def normalise_level(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        # Python's numeric levels (10, 20, ...), as some JSON loggers emit them.
        return LEVELS[max(0, min(4, value // 10 - 1))]
    if not isinstance(value, str) or not value:
        return None
    v = value.strip().lower()
    return v if v in LEVELS else _LEVEL_ALIASES.get(v)


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            from datetime import UTC

            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    # Python < 3.12 parses at most 6 fractional digits; Kubernetes sends 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class LogLine:
    raw: str
    """The line as received (without the --timestamps prefix)."""
    message: str
    """The message (JSON records) or the raw line (plain text)."""
    instance: str | None = None
    timestamp: datetime | None = None
    level: str | None = None
    """One of :data:`LEVELS` or None when unknown."""
    logger: str | None = None
    context: Mapping[str, Any] | None = None
    """Every other field of a JSON record (``context``, ``request_id``, ``error``...)."""
    is_json: bool = False
    seq: int = 0
    """Position in the buffer it was appended to (monotonic, for views)."""
    marker: bool = False
    """A line the console itself inserted (source ended, error, reconnect)."""

    @property
    def size(self) -> int:
        return len(self.raw) + len(self.instance or "") + 64


def parse_line(raw: str, instance: str | None = None) -> LogLine:
    """Parses one line (never raises; unparseable input stays a plain line)."""
    raw = raw.rstrip("\r\n")
    prefix_ts: datetime | None = None
    m = _K8S_TS.match(raw)
    if m:
        prefix_ts = _parse_time(m.group(1))
        if prefix_ts is not None:
            raw = raw[m.end() :]
    stripped = raw.lstrip()
    if stripped.startswith("{") and stripped.rstrip().endswith("}"):
        try:
            record = json.loads(stripped)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return _from_record(raw, record, instance, prefix_ts)
    return LogLine(raw=raw, message=raw, instance=instance, timestamp=prefix_ts)


def _pick(record: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for k in keys:
        if k in record:
            return k, record[k]
    return None, None


def _from_record(
    raw: str, record: dict[str, Any], instance: str | None, prefix_ts: datetime | None
) -> LogLine:
    used: set[str] = set()
    k, ts = _pick(record, _TS_KEYS)
    timestamp = _parse_time(ts)
    if k and timestamp is not None:
        used.add(k)
    k, lvl = _pick(record, _LEVEL_KEYS)
    level = normalise_level(lvl)
    if k and level is not None:
        used.add(k)
    k, msg = _pick(record, _MSG_KEYS)
    if k:
        used.add(k)
    k, lg = _pick(record, _LOGGER_KEYS)
    logger = lg if isinstance(lg, str) else None
    if k and logger is not None:
        used.add(k)
    context: dict[str, Any] = {}
    nested = record.get("context")
    if isinstance(nested, dict):
        used.add("context")
        context.update(nested)
    for key, value in record.items():
        if key not in used:
            context[key] = value
    if msg is None:
        message = raw
    elif isinstance(msg, str):
        message = msg
    else:
        message = json.dumps(msg, default=str)
    return LogLine(
        raw=raw,
        message=message,
        instance=instance,
        timestamp=timestamp or prefix_ts,
        level=level,
        logger=logger,
        context=context or None,
        is_json=True,
    )


def format_line(
    line: LogLine,
    *,
    show_instance: bool = True,
    show_time: bool = True,
    show_context: bool = True,
    pretty: bool = True,
) -> str:
    """One display line: ``[instance] HH:MM:SS.mmm LEVEL logger: message key=value ...``.

    With ``pretty=False`` the raw line (prefixed with the instance tag when shown).
    The UI may style the parts itself; this is the plain-text form (saving, commands).
    """
    tag = f"[{line.instance}] " if show_instance and line.instance else ""
    if not pretty or not line.is_json:
        ts = ""
        if pretty and show_time and line.timestamp is not None:
            ts = line.timestamp.strftime("%H:%M:%S.%f")[:-3] + " "
        return f"{tag}{ts}{line.raw}"
    parts = [tag.rstrip()] if tag else []
    if show_time and line.timestamp is not None:
        parts.append(line.timestamp.strftime("%H:%M:%S.%f")[:-3])
    parts.append(f"{(line.level or '-').upper():<7}")
    parts.append(f"{line.logger}: {line.message}" if line.logger else line.message)
    if show_context and line.context:
        parts.append(
            " ".join(
                f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}"
                for k, v in line.context.items()
            )
        )
    return " ".join(p for p in parts if p)


class LogBuffer:
    """A ring buffer of :class:`LogLine` bounded by ``max_lines`` and ``max_bytes``.

    ``version`` increases with every append; ``dropped`` counts lines evicted to stay in
    bounds (shown as "N earlier lines dropped"). ``subscribe`` gets called after appends
    (synchronously; views should coalesce, e.g. with Textual's ``call_later``).
    """

    def __init__(self, max_lines: int = 10_000, max_bytes: int = 8 * 1024 * 1024) -> None:
        if max_lines < 1 or max_bytes < 1:
            raise ValueError("max_lines and max_bytes must be positive")
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self._lines: deque[LogLine] = deque()
        self._bytes = 0
        self._seq = 0
        self.dropped = 0
        self.byte_cap_hit = False
        """Whether the last eviction was for the byte cap rather than the line cap."""
        self.version = 0
        self._subscribers: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def bytes(self) -> int:
        return self._bytes

    def append(self, line: LogLine | str, instance: str | None = None) -> LogLine:
        if isinstance(line, str):
            line = parse_line(line, instance)
        self._seq += 1
        line = _with_seq(line, self._seq)
        self._lines.append(line)
        self._bytes += line.size
        while self._lines and (
            len(self._lines) > self.max_lines
            or (self._bytes > self.max_bytes and len(self._lines) > 1)
        ):
            self.byte_cap_hit = len(self._lines) <= self.max_lines
            old = self._lines.popleft()
            self._bytes -= old.size
            self.dropped += 1
        self.version += 1
        for cb in list(self._subscribers):
            with contextlib.suppress(Exception):
                cb()
        return line

    def extend(self, lines: Iterable[LogLine | str], instance: str | None = None) -> None:
        for line in lines:
            self.append(line, instance)

    def lines(self) -> list[LogLine]:
        return list(self._lines)

    def since(self, seq: int) -> list[LogLine]:
        """Lines appended after ``seq`` (a :attr:`LogLine.seq` seen before)."""
        out: list[LogLine] = []
        for line in reversed(self._lines):
            if line.seq <= seq:
                break
            out.append(line)
        out.reverse()
        return out

    def oldest_seq(self) -> int | None:
        """The :attr:`LogLine.seq` of the oldest line held (None when empty)."""
        return self._lines[0].seq if self._lines else None

    def cap_text(self) -> str:
        """The cap that evicted lines, in words: ``10000-line`` or ``8 MiB``."""
        if self.byte_cap_hit:
            return f"{self.max_bytes / (1024 * 1024):g} MiB"
        return f"{self.max_lines}-line"

    def clear(self) -> None:
        """Empties the buffer (a new set of sources); the dropped count starts again."""
        self._lines.clear()
        self._bytes = 0
        self.dropped = 0
        self.byte_cap_hit = False
        self.version += 1

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None


def _with_seq(line: LogLine, seq: int) -> LogLine:
    from dataclasses import replace

    return replace(line, seq=seq)


class LogFilter:
    """Which lines to show and what to highlight.

    ``pattern``: case-insensitive substring (unless it has upper case letters: then
    case-sensitive, like ``less``/``vim`` smartcase), or a regex with ``regex=True``.
    ``min_level`` hides JSON lines below it (plain lines always pass: their level is
    unknown). ``instances`` keeps only those instances' lines.
    """

    def __init__(
        self,
        pattern: str = "",
        *,
        regex: bool = False,
        min_level: str | None = None,
        instances: Iterable[str] | None = None,
    ) -> None:
        self.pattern = pattern
        self.regex = regex
        flags = 0 if any(c.isupper() for c in pattern) else re.IGNORECASE
        try:
            self._re = (
                re.compile(pattern if regex else re.escape(pattern), flags) if pattern else None
            )
        except re.error as exc:
            raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None
        if min_level is not None and normalise_level(min_level) is None:
            raise ValueError(f"unknown level {min_level!r} (use one of {', '.join(LEVELS)})")
        self.min_level = normalise_level(min_level) if min_level else None
        self.instances = frozenset(instances) if instances is not None else None

    @property
    def active(self) -> bool:
        return bool(self._re or self.min_level or self.instances is not None)

    def text_of(self, line: LogLine) -> str:
        """What the pattern is matched against (the formatted display text)."""
        return format_line(line)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every match in ``text``, for highlighting."""
        if self._re is None:
            return []
        return [(m.start(), m.end()) for m in self._re.finditer(text) if m.end() > m.start()]

    def matches(self, line: LogLine) -> bool:
        if self.instances is not None and line.instance not in self.instances:
            return False
        if (
            self.min_level
            and line.level
            and LEVELS.index(line.level) < LEVELS.index(self.min_level)
        ):
            return False
        if self._re is None:
            return True
        return self._re.search(self.text_of(line)) is not None

    def apply(self, lines: Iterable[LogLine]) -> list[tuple[LogLine, str, list[tuple[int, int]]]]:
        """(line, display text, spans) of each matching line."""
        out = []
        for line in lines:
            if not self.matches(line):
                continue
            text = self.text_of(line)
            out.append((line, text, self.spans(text)))
        return out


class SaveRefused(DataError):
    """The target file exists and overwriting was not asked for."""

    def __init__(self, message: str) -> None:
        super().__init__(message, source="locotui")


def _write_atomic(path: Path, data: str, overwrite: bool) -> Path:
    path = path.expanduser()
    if path.exists() and not overwrite:
        raise SaveRefused(f"{path} exists; choose another name or allow overwriting")
    if path.is_dir():
        raise SaveRefused(f"{path} is a directory")
    try:
        # 0600: log lines can say more than the operator means to share with other users.
        return write_atomic(path, data.encode("utf-8"), mode=0o600, replace=overwrite)
    except FileExistsError:
        raise SaveRefused(f"{path} exists; choose another name or allow overwriting") from None


async def save_lines(
    lines: Iterable[LogLine],
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    mode: Literal["raw", "pretty"] = "raw",
    show_instance: bool | None = None,
) -> Path:
    """Writes ``lines`` to ``path`` (in a thread; atomic: a temp file then rename).

    ``raw`` writes each line as received (JSON stays JSON), prefixed with ``[instance]``
    when lines come from more than one instance; ``pretty`` writes :func:`format_line`.
    Raises :class:`SaveRefused` when the file exists and ``overwrite`` is false, or
    :class:`~locotui.data.errors.DataError` for an I/O error.
    """
    items = list(lines)
    if show_instance is None:
        show_instance = len({ln.instance for ln in items}) > 1
    if mode == "pretty":
        text = "".join(format_line(ln, show_instance=show_instance) + "\n" for ln in items)
    else:
        text = "".join(
            (f"[{ln.instance}] " if show_instance and ln.instance else "") + ln.raw + "\n"
            for ln in items
        )
    try:
        return await asyncio.to_thread(_write_atomic, Path(path), text, overwrite)
    except SaveRefused:
        raise
    except OSError as exc:
        raise DataError(f"cannot save to {path}: {exc.strerror or exc}", source="locotui") from None


# --------------------------------------------------------------------------- sources

LineSource = AsyncIterator[str]


def kube_source(
    kube: Any,
    name: str,
    *,
    tail: int | None = 200,
    follow: bool = True,
    previous: bool = False,
    timestamps: bool = True,
    since_seconds: int | None = None,
    container: str | None = None,
) -> LineSource:
    """Lines of pod ``name`` through :meth:`KubeClient.pod_logs` (timestamps on by default
    so merged tails of several pods can be read in time order)."""
    return kube.pod_logs(
        name,
        container=container,
        tail=tail,
        follow=follow,
        previous=previous,
        timestamps=timestamps,
        since_seconds=since_seconds,
    )


async def backend_source(
    backend: Any, name: str, *, tail: int = 200, follow: bool = True
) -> LineSource:
    """Lines of instance ``name`` through the backend's ``/api/instances/{name}/logs``
    (local/static mode; the backend does not follow Kubernetes pods)."""
    if follow:
        async for line in backend.follow_logs(name, tail=tail):
            yield line
    else:
        for line in await backend.logs(name, tail=tail):
            yield line


@dataclass
class _Running:
    task: asyncio.Task[None]
    lines: int = 0
    error: str | None = None
    done: bool = False


@dataclass
class LogTail:
    """Several sources merged into one :class:`LogBuffer`, each line tagged.

    >>> tail = LogTail(LogBuffer())
    >>> tail.add("loco-0", kube_source(kube, "loco-0"))
    >>> tail.add("loco-1", kube_source(kube, "loco-1"))
    ... # tail.buffer fills as lines arrive; await tail.stop() when the view closes
    """

    buffer: LogBuffer = field(default_factory=LogBuffer)
    errors: dict[str, str] = field(default_factory=dict)
    sources: dict[str, _Running] = field(default_factory=dict)

    def add(self, instance: str, source: LineSource) -> None:
        """Starts consuming ``source`` (must be called on the loop); replaces a running
        source of the same instance."""
        old = self.sources.pop(instance, None)
        if old is not None:
            old.task.cancel()
        running = _Running(asyncio.get_running_loop().create_task(self._pump(instance, source)))
        self.sources[instance] = running

    async def _pump(self, instance: str, source: LineSource) -> None:
        running = None
        try:
            async for raw in source:
                running = running or self.sources.get(instance)
                self.buffer.append(parse_line(raw, instance))
                if running is not None:
                    running.lines += 1
        except asyncio.CancelledError:
            raise
        except DataError as exc:
            self._fail(instance, str(exc))
        except Exception as exc:  # a source must never take the view down
            self._fail(instance, f"{type(exc).__name__}: {exc}")
        else:
            self.buffer.append(
                LogLine(
                    raw="-- end of log --",
                    message="-- end of log --",
                    instance=instance,
                    marker=True,
                )
            )
        finally:
            r = self.sources.get(instance)
            if r is not None:
                r.done = True
            with contextlib.suppress(Exception):
                await source.aclose()  # type: ignore[attr-defined]

    def _fail(self, instance: str, message: str) -> None:
        self.errors[instance] = message
        r = self.sources.get(instance)
        if r is not None:
            r.error = message
        self.buffer.append(
            LogLine(
                raw=f"-- {message} --",
                message=message,
                instance=instance,
                level="error",
                marker=True,
            )
        )

    @property
    def running(self) -> list[str]:
        return [name for name, r in self.sources.items() if not r.done]

    async def stop(self) -> None:
        tasks = [r.task for r in self.sources.values()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

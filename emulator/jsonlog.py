"""Structured JSON log lines, shared by every process of the project.

One line per record on stdout: timestamp, level, logger, message, plus whatever context the
call site passes with ``extra={"ctx": {...}}``. The backend adds a request id through a
context variable, which lives here so both services format records the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import logging.handlers
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; context goes under ``context``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        ctx = getattr(record, "ctx", None)
        if ctx:
            entry["context"] = ctx
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


class _FileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file that survives a full or vanished disk without a traceback per line.

    logging's default reaction to a failed write is a traceback on stderr for every record;
    on a full disk that buries everything else. Here the first failure is said once, in one
    line, the records still reach stdout (the other handler), and recovery is said too.
    """

    failing = False
    _failed_now = False

    def emit(self, record: logging.LogRecord) -> None:
        self._failed_now = False
        super().emit(record)  # calls handleError on failure
        if self.failing and not self._failed_now:
            self.failing = False
            sys.stderr.write(f"log file {self.baseFilename}: writing again\n")

    def handleError(self, record: logging.LogRecord) -> None:
        self._failed_now = True
        if not self.failing:
            self.failing = True
            exc = sys.exc_info()[1]
            why = getattr(exc, "strerror", None) or exc
            sys.stderr.write(
                f"log file {self.baseFilename}: cannot write ({why}); log lines go to "
                "stdout only until it can\n"
            )
        # The stream may hold a half-written line; reopen on the next record.
        if self.stream is not None:
            with contextlib.suppress(OSError):
                self.stream.close()
            self.stream = None  # type: ignore[assignment]


def parse_level(value: str | None, where: str = "LOG_LEVEL") -> int:
    """Turns a LOG_LEVEL value into a logging level, rejecting unknown names clearly.

    ``where`` starts the message (the settings models leave it empty and put the flag or
    variable the value came from in front of it).
    """
    name = (value or "INFO").strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in _LEVELS:
        raise ValueError(
            f"{where}={value!r} is not a log level; use one of {', '.join(_LEVELS).lower()}"
        )
    return getattr(logging, name)


def configure(
    level: str | None = None,
    log_file: Path | None = None,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
) -> None:
    """Sends every logger's records to stdout as JSON lines.

    With ``log_file``, records also go to that file and errors to ``<stem>.error<suffix>``
    beside it, both rotated by size so a long-running pod never fills its disk.
    """
    formatter = JsonFormatter()
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(parse_level(level if level is not None else os.environ.get("LOG_LEVEL")))
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(formatter)
    root.addHandler(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        combined = _FileHandler(log_file, maxBytes=max_bytes, backupCount=backups)
        combined.setFormatter(formatter)
        errors = _FileHandler(
            log_file.with_name(f"{log_file.stem}.error{log_file.suffix or '.log'}"),
            maxBytes=max_bytes,
            backupCount=backups,
        )
        errors.setLevel(logging.ERROR)
        errors.setFormatter(formatter)
        root.addHandler(combined)
        root.addHandler(errors)
    # Third-party loggers are chatty at INFO (uvicorn's access log duplicates our own).
    for noisy in ("uvicorn.access", "httpx", "httpcore", "kubernetes"):
        logging.getLogger(noisy).setLevel(max(root.level, logging.WARNING))
    # qemu.qmp logs every failed connection attempt at ERROR while QEMU is still starting;
    # the supervisor reports the failures that matter itself.
    logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


def log(logger: logging.Logger, level: int, message: str, **context: Any) -> None:
    """Logs ``message`` with structured context (kept apart from the message text)."""
    logger.log(level, message, extra={"ctx": context} if context else None)

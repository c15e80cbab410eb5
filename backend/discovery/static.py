"""Static discovery: a YAML or JSON file that lists the instances.

Format (YAML shown; the same shape in JSON; a bare top-level list is accepted too)::

    instances:
      - name: loco-0
        health_url: http://127.0.0.1:8080   # base URL of the supervisor
        vnc: 127.0.0.1:5900                 # optional
        log_file: /var/log/loco-0.log       # optional, served by /api/instances/{name}/logs

A malformed file is rejected with the file, the position and the reason: line and column
for a syntax error, the item index and field (plus its line, when it can be found) for a
schema error. The file is re-read when its modification time changes; a broken edit keeps
the last good list (marked stale) and reports the error as discovery's state.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.discovery.base import Discovery, DiscoverySink, Target
from backend.models import DiscoveryState, InstanceSource
from emulator.jsonlog import log

logger = logging.getLogger("backend.discovery.static")

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,252})$")


class StaticConfigError(ValueError):
    """A static file that cannot be used; ``str()`` is the one line to show."""

    def __init__(self, path: Path, position: str | None, reason: str) -> None:
        self.path = path
        self.position = position
        self.reason = reason
        where = f"{path}:{position}" if position else str(path)
        super().__init__(f"{where}: {reason}")


class StaticInstance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Unique instance name")
    health_url: str = Field(description="Base URL of the supervisor, http(s)://host:port")
    vnc: str | None = Field(None, description="host:port of the VNC server")
    log_file: str | None = Field(None, description="Path of the supervisor's log file")

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                "must start with a letter or digit and contain only letters, digits, '.', '_' "
                "or '-' (at most 253 characters)"
            )
        return v

    @field_validator("health_url")
    @classmethod
    def _url_ok(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return v.rstrip("/")

    @field_validator("vnc")
    @classmethod
    def _vnc_ok(cls, v: str | None) -> str | None:
        if v is None:
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("must be host:port with a port between 1 and 65535")
        return v


def _node_at(root: yaml.Node | None, path: list[str | int]) -> yaml.Node | None:
    """The YAML node at ``path`` (keys and indexes), or the deepest one found."""
    node = root
    for step in path:
        if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return node
            node = node.value[step]
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if getattr(key, "value", None) == step:
                    node = value
                    break
            else:
                return node
        else:
            return node
    return node


def _line_col(node: yaml.Node | None) -> str | None:
    if node is None:
        return None
    return f"{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise StaticConfigError(path, f"{exc.lineno}:{exc.colno}", exc.msg) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = f"{mark.line + 1}:{mark.column + 1}" if mark else None
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise StaticConfigError(path, pos, reason) from None
    except yaml.YAMLError as exc:
        raise StaticConfigError(path, None, f"invalid YAML: {exc}") from None


def load_static_file(path: Path) -> list[StaticInstance]:
    """Reads and validates the file; raises :class:`StaticConfigError` on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StaticConfigError(path, None, "file not found") from None
    except IsADirectoryError:
        raise StaticConfigError(path, None, "is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StaticConfigError(path, None, f"cannot read: {exc}") from None
    data = _parse(path, text)
    prefix: list[str | int] = []
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"instances"})
        if unknown:
            raise StaticConfigError(path, None, f"unknown top-level key(s): {', '.join(unknown)}")
        data = data.get("instances")
        prefix = ["instances"]
    if data is None:
        data = []
    if not isinstance(data, list):
        raise StaticConfigError(
            path, None, "expected a list of instances (or a mapping with an 'instances' list)"
        )

    def position(steps: list[str | int]) -> str | None:
        try:
            root = yaml.compose(text)
        except yaml.YAMLError:
            return None
        return _line_col(_node_at(root, prefix + steps))

    items: list[StaticInstance] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data):
        label = f"{'instances' if prefix else ''}[{index}]"
        if not isinstance(raw, dict):
            raise StaticConfigError(
                path, _join(label, None, position([index])), "each instance must be a mapping"
            )
        try:
            item = StaticInstance.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = [str(p) for p in err["loc"]]
            field = ".".join(loc) or None
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required field is missing"
            elif err["type"] == "extra_forbidden":
                msg = "unknown field (allowed: name, health_url, vnc, log_file)"
            steps: list[str | int] = [index, *loc] if err["type"] != "missing" else [index]
            raise StaticConfigError(path, _join(label, field, position(steps)), msg) from None
        if item.name in seen:
            raise StaticConfigError(
                path,
                _join(label, "name", position([index, "name"])),
                f"duplicate name {item.name!r} (also item {seen[item.name]})",
            )
        seen[item.name] = index
        items.append(item)
    return items


def _join(label: str, field: str | None, line_col: str | None) -> str:
    where = f"{label}.{field}" if field else label
    return f"{line_col}: {where}" if line_col else where


class StaticDiscovery(Discovery):
    source = InstanceSource.STATIC

    def __init__(self, path: Path, reload_interval: float = 2.0) -> None:
        self.path = path
        self.reload_interval = reload_interval
        # Read now so a bad file stops the CLI before the server starts.
        self._items = load_static_file(path)
        self._mtime = self._stat()

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def targets(self) -> list[Target]:
        return [
            Target(
                name=i.name,
                source=InstanceSource.STATIC,
                health_url=i.health_url,
                vnc=i.vnc,
                log_file=i.log_file,
            )
            for i in self._items
        ]

    def initial_state(self) -> DiscoveryState:
        return DiscoveryState(source=self.source, ok=True, detail=str(self.path))

    async def run(self, sink: DiscoverySink) -> None:
        sink.sync(self.targets())
        sink.discovery_state(self._state(ok=True, error=None))
        # Re-read on change. A stat every few seconds is the portable way without an
        # inotify dependency, and it costs nothing measurable.
        last_error: str | None = None
        while True:
            await asyncio.sleep(self.reload_interval)
            mtime = await asyncio.to_thread(self._stat)
            if mtime == self._mtime:
                continue
            self._mtime = mtime
            try:
                self._items = await asyncio.to_thread(load_static_file, self.path)
            except StaticConfigError as exc:
                if str(exc) != last_error:
                    log(
                        logger,
                        logging.ERROR,
                        "static file rejected; keeping the last good list",
                        error=str(exc),
                    )
                last_error = str(exc)
                sink.discovery_state(self._state(ok=False, error=str(exc)))
                continue
            last_error = None
            log(
                logger,
                logging.INFO,
                "static file reloaded",
                path=str(self.path),
                instances=len(self._items),
            )
            sink.sync(self.targets())
            sink.discovery_state(self._state(ok=True, error=None))

    def _state(self, ok: bool, error: str | None) -> DiscoveryState:
        return DiscoveryState(
            source=self.source,
            ok=ok,
            synced=True,
            last_sync=datetime.now(UTC),
            error=error,
            detail=str(self.path),
        )

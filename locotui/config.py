"""locotui settings: flags > ``LOCOTUI_*`` environment > config file > defaults.

Read the way all three programs read theirs (``emulator.layered_settings``): the model
below has a typed, validated field for each setting; the flags argparse parsed, the
``LOCOTUI_*`` variables and the config file are its layers, highest first.

The config file is TOML, by default ``$XDG_CONFIG_HOME/locotui/config.toml`` (``~/.config``
when XDG_CONFIG_HOME is unset); ``--config FILE`` or ``LOCOTUI_CONFIG`` name another one
(which must then exist). Every setting is documented in ``docs/locotui-config.md``.

The control token (for the backend's reset/restart) is never a flag, so it does not show
in the process list or shell history: it comes from the file named by
``LOCOTUI_CONTROL_TOKEN_FILE``, or from ``LOCOTUI_CONTROL_TOKEN``, or from the file named by
``control_token_file`` in the config (the rule of all three programs,
``emulator.layered_settings.read_control_token``).

Bad input raises :class:`ConfigError` whose ``str()`` is one line naming the file (with
line and column for TOML syntax errors), the key, and the fix.

For the entry point (``locotui/cli.py``)::

    parser = argparse.ArgumentParser(prog="locotui")
    config.add_arguments(parser)          # --config, --backend-url, --namespace, ...
    args = parser.parse_args()
    try:
        settings = config.load_settings(args)
    except config.ConfigError as exc:
        print(f"locotui: error: {exc}", file=sys.stderr); return 2

The flags themselves, and where the config file is, are in ``locotui.options``, which
``--help`` can load without the model.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, InstanceOf
from pydantic_settings import SettingsConfigDict

from emulator.errors import SettingsError
from emulator.layered_settings import (
    Env,
    Layer,
    LayeredSettings,
    between,
    boolean,
    env_layer,
    flag_layer,
    read_control_token,
)
from locotui.data.query import FilterError, validate_views
from locotui.data.usercommands import CommandError, UserCommand, parse_commands, parse_viewer
from locotui.keymap import Keymap, KeymapError
from locotui.options import DEFAULT_BACKEND_URL, ENV_PREFIX, add_arguments, default_config_path

__all__ = [
    "DEFAULT_BACKEND_URL",
    "ENV_PREFIX",
    "ConfigError",
    "Settings",
    "add_arguments",
    "default_config_path",
    "load_settings",
]

View = Literal["tiles", "table"]

ConfigError = SettingsError
"""Unusable configuration; ``str()`` is the one line to print."""


def _builtin_themes() -> tuple[str, ...]:
    # Textual is a dependency anyway; importing only its theme table is cheap.
    try:
        from textual.theme import BUILTIN_THEMES
    except ImportError:  # pragma: no cover - textual is a hard dependency
        return ("textual-dark", "textual-light")
    return tuple(sorted(BUILTIN_THEMES))


# ------------------------------------------------------------------------- validators
# Each message continues the name of the flag, variable or file key the value came from.


def _url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a URL string, got {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"must be an http:// or https:// URL with a host, e.g. {DEFAULT_BACKEND_URL}; "
            f"got {value!r}"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"has a bad port: {value!r}") from None
    return value.strip().rstrip("/")


def _optional_url(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _url(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {value!r}")
    return value.strip() or None


def _namespace(value: Any) -> str | None:
    ns = _text(value)
    if ns is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", ns):
        raise ValueError(
            f"={ns!r} is not a Kubernetes namespace name (lower-case letters, digits "
            "and '-', at most 63 characters)"
        )
    return ns


def _path(value: Any) -> Path | None:
    if isinstance(value, Path):
        return value.expanduser()
    text = _text(value)
    return Path(text).expanduser() if text else None


def _theme(value: Any) -> str:
    themes = _builtin_themes()
    if not isinstance(value, str) or value.strip() not in themes:
        close = difflib.get_close_matches(str(value), themes, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"={value!r} is not a theme{hint} (one of {', '.join(themes)})")
    return value.strip()


def _view(value: Any) -> str:
    if value not in ("tiles", "table"):
        raise ValueError(f"must be 'tiles' or 'table', got {value!r}")
    return str(value)


def _read_only_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


class Settings(LayeredSettings):
    """Effective settings. ``sources`` says where each came from (flag/env/file/default).

    The fields marked ``Env()`` are the settings a user gives (``LOCOTUI_<NAME>``, a flag
    of the same name, a key of the config file); the rest are what loading found.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX)

    backend_url: Annotated[str, Env(), BeforeValidator(_url)] = DEFAULT_BACKEND_URL
    kubeconfig: Annotated[Path | None, Env(), BeforeValidator(_path)] = None
    kube_context: Annotated[str | None, Env(f"{ENV_PREFIX}CONTEXT"), BeforeValidator(_text)] = None
    namespace: Annotated[str | None, Env(), BeforeValidator(_namespace)] = None
    prometheus_url: Annotated[str | None, Env(), BeforeValidator(_optional_url)] = None
    read_only: Annotated[bool, Env(), BeforeValidator(boolean)] = False
    thumbnails: Annotated[bool, Env(), BeforeValidator(boolean)] = True
    thumbnail_interval: Annotated[float, Env(), BeforeValidator(between(0.2, 3600, "seconds"))] = (
        1.0
    )
    theme: Annotated[str, Env(), BeforeValidator(_theme)] = "textual-dark"
    default_view: Annotated[View, Env(), BeforeValidator(_view)] = "tiles"
    log_tail_lines: Annotated[
        int, Env(), BeforeValidator(between(0, 100_000, "lines", whole=True))
    ] = 200
    log_buffer_lines: Annotated[
        int, Env(), BeforeValidator(between(100, 1_000_000, "lines", whole=True))
    ] = 10_000
    history_points: Annotated[
        int, Env(), BeforeValidator(between(10, 100_000, "points", whole=True))
    ] = 300
    slo_target_fps: Annotated[float, Env(), BeforeValidator(between(1, 240, "frames/s"))] = 10.0
    slo_objective: Annotated[
        float, Env(), BeforeValidator(between(0.5, 0.9999, "(a share, e.g. 0.95)"))
    ] = 0.95
    restart_batch: Annotated[
        int, Env(), BeforeValidator(between(1, 50, "instances", whole=True))
    ] = 1
    restart_settle: Annotated[float, Env(), BeforeValidator(between(0, 600, "seconds"))] = 10.0
    restart_timeout: Annotated[float, Env(), BeforeValidator(between(5, 3600, "seconds"))] = 300.0
    keys: InstanceOf[Keymap] = Field(default_factory=Keymap, repr=False)
    views: Annotated[Mapping[str, str], AfterValidator(_read_only_mapping)] = Field(
        default_factory=dict
    )
    """Saved filters by name (the config's ``[views]`` table), typed as ``@name``."""
    commands: Annotated[
        Mapping[str, InstanceOf[UserCommand]], AfterValidator(_read_only_mapping)
    ] = Field(default_factory=dict)
    """User commands by name (the config's ``[commands]`` table)."""
    vnc_viewer: InstanceOf[UserCommand] | None = None
    """The VNC viewer V launches (``$HOST``, ``$PORT``, ``$NAME``); None: V prints the
    command instead."""
    control_token: str | None = Field(default=None, repr=False)
    config_path: Path | None = None
    """The config file that was read (None when there was none)."""
    sources: Annotated[Mapping[str, str], AfterValidator(_read_only_mapping)] = Field(
        default_factory=dict
    )
    warnings: tuple[str, ...] = ()
    """Non-fatal problems worth showing once (e.g. a world-readable token file)."""

    def describe(self) -> dict[str, Any]:
        """Every setting with its value and source, for ``locotui config`` / debugging.

        The token is never shown, only whether one is set.
        """
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            if name in (
                "sources",
                "warnings",
                "keys",
                "views",
                "commands",
                "vnc_viewer",
                "control_token",
                "config_path",
            ):
                continue
            value = getattr(self, name)
            out[name] = {
                "value": str(value) if isinstance(value, Path) else value,
                "source": self.sources.get(name, "default"),
            }
        out["control_token"] = {
            "value": "(set)" if self.control_token else None,
            "source": self.sources.get("control_token", "default"),
        }
        out["keys"] = {
            "value": {k: list(v) for k, v in self.keys.bindings.items()},
            "source": "file" if self.keys.overridden else "default",
        }
        out["views"] = {"value": dict(self.views), "source": "file" if self.views else "default"}
        out["commands"] = {
            "value": {n: list(c.argv) for n, c in self.commands.items()},
            "source": "file" if self.commands else "default",
        }
        out["vnc_viewer"] = {
            "value": list(self.vnc_viewer.argv) if self.vnc_viewer else None,
            "source": "file" if self.vnc_viewer else "default",
        }
        out["config_path"] = str(self.config_path) if self.config_path else None
        return out


_FILE_ONLY = ("control_token_file", "keys", "views", "commands", "vnc_viewer")


_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_EOF = re.compile(r"\s*\(at end of document\)\s*$")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found; create it or fix --config/LOCOTUI_CONFIG"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _TOML_POS.search(msg)
        if m:
            reason = msg[: m.start()]
            where = f"{path}:{m.group(1)}:{m.group(2)}"
        else:
            reason = _TOML_EOF.sub("", msg)
            where = f"{path}:end of file" if _TOML_EOF.search(msg) else str(path)
        raise ConfigError(
            f"{where}: invalid TOML: {reason}; fix the syntax there "
            '(strings need quotes, e.g. theme = "nord")'
        ) from None


def _key_line(path: Path, key: str) -> str:
    """``path:LINE`` where ``key = ...`` is written, for errors tomllib cannot place."""
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
                return f"{path}:{number}"
    except OSError:
        pass
    return str(path)


def _table_key_line(path: Path, table: str, key: str) -> str:
    """``path:LINE`` of ``key = ...`` inside ``[table]`` (a key of the same name elsewhere
    in the file is not it)."""
    try:
        inside = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            header = re.match(r"\s*\[\s*([^\]]+?)\s*\]", line)
            if header:
                inside = header.group(1) == table
            elif inside and re.match(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
                return f"{path}:{number}"
    except OSError:
        pass
    return f"{path}: [{table}]"


def _views(path: Path, table: Mapping[str, Any]) -> dict[str, str]:
    if "views" not in table:
        return {}
    if not isinstance(table["views"], dict):
        raise ConfigError(
            f"{_key_line(path, 'views')}: 'views' must be a table: [views] followed by "
            'lines such as sick = "!status:healthy"'
        )
    try:
        return validate_views(table["views"])
    except FilterError as exc:
        where = _table_key_line(path, "views", exc.view) if exc.view else f"{path}: [views]"
        raise ConfigError(f"{where}: [views] {exc}") from None


def _commands(path: Path, table: Mapping[str, Any]) -> dict[str, UserCommand]:
    if "commands" not in table:
        return {}
    if not isinstance(table["commands"], dict):
        raise ConfigError(
            f"{_key_line(path, 'commands')}: 'commands' must be a table: [commands] followed "
            'by lines such as describe = ["kubectl", "describe", "pod", "$NAME"]'
        )
    try:
        return parse_commands(table["commands"])
    except CommandError as exc:
        where = (
            _table_key_line(path, "commands", exc.command) if exc.command else f"{path}: [commands]"
        )
        raise ConfigError(f"{where}: [commands] {exc}") from None


def load_settings(
    args: argparse.Namespace | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merges flags (``args``), environment and config file into :class:`Settings`.

    ``args`` may be an argparse namespace (only attributes that were given count) or a
    plain mapping of setting name → value (for tests and programmatic use).
    """
    env = os.environ if env is None else env
    if args is None:
        args = argparse.Namespace()
    elif not isinstance(args, argparse.Namespace):
        args = argparse.Namespace(**args)
    names = argparse.ArgumentParser(add_help=False)
    add_arguments(names)  # the flags as errors name them, whichever spelling was typed
    flags = flag_layer(Settings, names, args)

    # Which config file: --config > LOCOTUI_CONFIG > the XDG default (optional).
    explicit: Path | None = None
    if getattr(args, "config", None) is not None:
        explicit = Path(str(args.config)).expanduser()
    elif env.get(f"{ENV_PREFIX}CONFIG", "").strip():
        explicit = Path(env[f"{ENV_PREFIX}CONFIG"].strip()).expanduser()
    path = explicit or default_config_path(env)
    table: dict[str, Any] = {}
    config_path: Path | None = None
    if explicit is not None or path.is_file():
        table = _read_file(path)
        config_path = path
    file = _file_layer(path, table)

    token_file: tuple[str, Path] | None = None
    if "control_token_file" in table:
        where = _key_line(path, "control_token_file")
        raw_path = table["control_token_file"]
        if not isinstance(raw_path, str) or not raw_path.strip():
            raise ConfigError(f"{where}: control_token_file must be a file path string")
        token_path = Path(raw_path.strip()).expanduser()
        # Relative to the config file, so a config directory can be moved as a whole.
        token_file = (f"{where}: control_token_file", path.parent / token_path)
    token = read_control_token(
        env, f"{ENV_PREFIX}CONTROL_TOKEN", f"{ENV_PREFIX}CONTROL_TOKEN_FILE", token_file
    )

    keys = Keymap()
    if "keys" in table:
        if not isinstance(table["keys"], dict):
            raise ConfigError(
                f"{_key_line(path, 'keys')}: 'keys' must be a table: [keys] followed by "
                'lines such as quit = ["q"]'
            )
        try:
            keys = Keymap.from_config(table["keys"], where=f"{path}: [keys]")
        except KeymapError as exc:
            raise ConfigError(str(exc)) from None

    views = _views(path, table)
    commands = _commands(path, table)
    viewer: UserCommand | None = None
    if "vnc_viewer" in table:
        try:
            viewer = parse_viewer(table["vnc_viewer"])
        except CommandError as exc:
            raise ConfigError(f"{_key_line(path, 'vnc_viewer')}: {exc}") from None

    layers = (flags, env_layer(Settings, env), file)
    sources = Settings.origins(*layers)
    warnings: list[str] = []
    if token is not None:
        sources["control_token"] = token.source
        if token.shared_with_others:
            warnings.append(f"{token.path} is readable by other users; chmod 600 it")
    return Settings.load(
        *layers,
        keys=keys,
        views=views,
        commands=commands,
        vnc_viewer=viewer,
        control_token=token.value if token else None,
        config_path=config_path,
        sources=sources,
        warnings=tuple(warnings),
    )


def _file_layer(path: Path, table: Mapping[str, Any]) -> Layer:
    """The config file's settings; an unknown key is an error naming its line."""
    settable = Settings.env_names()
    for key in table:
        if key in settable or key in _FILE_ONLY:
            continue
        if key == "control_token":
            raise ConfigError(
                f"{_key_line(path, key)}: control_token is not read from the config "
                "file (it would sit in plain text next to settings); put the token in "
                'a file of its own and set control_token_file = "/path/to/token"'
            )
        # A table can only have meant a table ([keys], [views]), a value only a value.
        tables = ("keys", "views", "commands")
        choices = [*settable, "control_token_file", "vnc_viewer"]
        choices = [*tables] if isinstance(table[key], dict) else choices
        close = difflib.get_close_matches(key, choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{_key_line(path, key)}: unknown setting {key!r}{hint} (see docs/locotui-config.md)"
        )
    values = {k: v for k, v in table.items() if k in settable}
    where = {k: f"{_key_line(path, k)}: {k}" for k in values}
    return Layer(Settings, "file", values, where)

"""locotui settings: flags > ``LOCOTUI_*`` environment > config file > defaults.

The config file is TOML, by default ``$XDG_CONFIG_HOME/locotui/config.toml`` (``~/.config``
when XDG_CONFIG_HOME is unset); ``--config FILE`` or ``LOCOTUI_CONFIG`` name another one
(which must then exist). Every setting is documented in ``docs/locotui-config.md``.

The control token (for the backend's reset/restart) is never a flag, so it does not show
in the process list or shell history: it comes from ``LOCOTUI_CONTROL_TOKEN``, or from the
file named by ``LOCOTUI_CONTROL_TOKEN_FILE`` or by ``control_token_file`` in the config.

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

``add_arguments`` uses ``argparse.SUPPRESS`` defaults, so it may be added to the main
parser *and* to each subcommand's parser without one overwriting the other.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from locotui.keymap import Keymap, KeymapError

__all__ = [
    "DEFAULT_BACKEND_URL",
    "ENV_PREFIX",
    "ConfigError",
    "Settings",
    "add_arguments",
    "default_config_path",
    "load_settings",
]

DEFAULT_BACKEND_URL = "http://127.0.0.1:8081"
ENV_PREFIX = "LOCOTUI_"
View = Literal["tiles", "table"]


class ConfigError(ValueError):
    """Unusable configuration; ``str()`` is the one line to print."""


def _builtin_themes() -> tuple[str, ...]:
    # Textual is a dependency anyway; importing only its theme table is cheap.
    try:
        from textual.theme import BUILTIN_THEMES
    except ImportError:  # pragma: no cover - textual is a hard dependency
        return ("textual-dark", "textual-light")
    return tuple(sorted(BUILTIN_THEMES))


@dataclass(frozen=True)
class Settings:
    """Effective settings. ``sources`` says where each came from (flag/env/file/default)."""

    backend_url: str = DEFAULT_BACKEND_URL
    kubeconfig: Path | None = None
    kube_context: str | None = None
    namespace: str | None = None
    prometheus_url: str | None = None
    read_only: bool = False
    thumbnails: bool = True
    thumbnail_interval: float = 1.0
    theme: str = "textual-dark"
    default_view: View = "tiles"
    log_tail_lines: int = 200
    log_buffer_lines: int = 10_000
    history_points: int = 300
    keys: Keymap = field(default_factory=Keymap, repr=False)
    control_token: str | None = field(default=None, repr=False)
    config_path: Path | None = None
    """The config file that was read (None when there was none)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """Non-fatal problems worth showing once (e.g. a world-readable token file)."""

    def describe(self) -> dict[str, Any]:
        """Every setting with its value and source, for ``locotui config`` / debugging.

        The token is never shown, only whether one is set.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in ("sources", "warnings", "keys", "control_token", "config_path"):
                continue
            value = getattr(self, f.name)
            out[f.name] = {
                "value": str(value) if isinstance(value, Path) else value,
                "source": self.sources.get(f.name, "default"),
            }
        out["control_token"] = {
            "value": "(set)" if self.control_token else None,
            "source": self.sources.get("control_token", "default"),
        }
        out["keys"] = {
            "value": {k: list(v) for k, v in self.keys.bindings.items()},
            "source": "file" if self.keys.overridden else "default",
        }
        out["config_path"] = str(self.config_path) if self.config_path else None
        return out


# --------------------------------------------------------------------------- parsing


def _parse_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("1", "true", "yes", "on"):
            return True
        if v in ("0", "false", "no", "off"):
            return False
    raise ConfigError(f"{where} must be true or false, got {value!r}")


def _parse_url(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a URL string, got {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{where} must be an http:// or https:// URL with a host, e.g. "
            f"{DEFAULT_BACKEND_URL}; got {value!r}"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{where} has a bad port: {value!r}") from None
    return value.strip().rstrip("/")


def _parse_optional_url(value: Any, where: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _parse_url(value, where)


def _number(lo: float, hi: float, unit: str) -> Callable[[Any, str], float]:
    def parse(value: Any, where: str) -> float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number of {unit}, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number of {unit}, got {value!r}") from None
        if not lo <= number <= hi:
            raise ConfigError(f"{where} must be between {lo:g} and {hi:g} {unit}, got {value!r}")
        return number

    return parse


def _integer(lo: int, hi: int, unit: str) -> Callable[[Any, str], int]:
    def parse(value: Any, where: str) -> int:
        if isinstance(value, bool | float):
            raise ConfigError(f"{where} must be a whole number of {unit}, got {value!r}")
        try:
            number = int(str(value).strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a whole number of {unit}, got {value!r}") from None
        if not lo <= number <= hi:
            raise ConfigError(f"{where} must be between {lo} and {hi} {unit}, got {value!r}")
        return number

    return parse


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value.strip() or None


def _namespace(value: Any, where: str) -> str | None:
    ns = _text(value, where)
    if ns is not None and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", ns):
        raise ConfigError(
            f"{where}={ns!r} is not a Kubernetes namespace name (lower-case letters, digits "
            "and '-', at most 63 characters)"
        )
    return ns


def _path(value: Any, where: str) -> Path | None:
    text = _text(value, where)
    return Path(text).expanduser() if text else None


def _theme(value: Any, where: str) -> str:
    themes = _builtin_themes()
    if not isinstance(value, str) or value.strip() not in themes:
        close = difflib.get_close_matches(str(value), themes, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}={value!r} is not a theme{hint} (one of {', '.join(themes)})")
    return value.strip()


def _view(value: Any, where: str) -> str:
    if value not in ("tiles", "table"):
        raise ConfigError(f"{where} must be 'tiles' or 'table', got {value!r}")
    return str(value)


@dataclass(frozen=True)
class _Option:
    name: str
    parse: Callable[[Any, str], Any]
    env: str | None
    flag: str | None
    help: str


_OPTIONS: tuple[_Option, ...] = (
    _Option(
        "backend_url",
        _parse_url,
        "BACKEND_URL",
        "--backend-url",
        f"loco-backend base URL ({DEFAULT_BACKEND_URL})",
    ),
    _Option(
        "kubeconfig",
        _path,
        "KUBECONFIG",
        "--kubeconfig",
        "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, like kubectl)",
    ),
    _Option(
        "kube_context",
        _text,
        "CONTEXT",
        "--context",
        "kubeconfig context (default: the current context)",
    ),
    _Option(
        "namespace",
        _namespace,
        "NAMESPACE",
        "--namespace",
        "Kubernetes namespace (default: the context's namespace, then 'default')",
    ),
    _Option(
        "prometheus_url",
        _parse_optional_url,
        "PROMETHEUS_URL",
        "--prometheus-url",
        "Prometheus base URL for fps/status history (default: none, session history)",
    ),
    _Option(
        "read_only",
        _parse_bool,
        "READ_ONLY",
        "--read-only",
        "disable every action (reset, restart)",
    ),
    _Option(
        "thumbnails",
        _parse_bool,
        "THUMBNAILS",
        "--thumbnails",
        "show live thumbnails in tiles (default: on)",
    ),
    _Option(
        "thumbnail_interval",
        _number(0.2, 3600, "seconds"),
        "THUMBNAIL_INTERVAL",
        "--thumbnail-interval",
        "seconds between thumbnail refreshes (1)",
    ),
    _Option("theme", _theme, "THEME", "--theme", "Textual theme (textual-dark)"),
    _Option("default_view", _view, "DEFAULT_VIEW", "--view", "start in 'tiles' or 'table'"),
    _Option(
        "log_tail_lines",
        _integer(0, 100_000, "lines"),
        "LOG_TAIL_LINES",
        "--tail-lines",
        "log lines fetched when a log view opens (200)",
    ),
    _Option(
        "log_buffer_lines",
        _integer(100, 1_000_000, "lines"),
        "LOG_BUFFER_LINES",
        None,
        "log lines kept in memory per log view (10000)",
    ),
    _Option(
        "history_points",
        _integer(10, 100_000, "points"),
        "HISTORY_POINTS",
        None,
        "fps samples kept per instance for sparklines (300)",
    ),
)
_BY_NAME = {o.name: o for o in _OPTIONS}
_FILE_ONLY = ("control_token_file",)
_KNOWN_FILE_KEYS = (*_BY_NAME, *_FILE_ONLY, "keys")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the global options (all with SUPPRESS defaults: absent means "not given")."""
    g = parser.add_argument_group("console settings (flags > LOCOTUI_* env > config file)")
    g.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="config file (LOCOTUI_CONFIG; default $XDG_CONFIG_HOME/locotui/config.toml)",
    )
    for opt in _OPTIONS:
        if opt.flag is None:
            continue
        env = f" ({ENV_PREFIX}{opt.env})" if opt.env else ""
        if opt.parse is _parse_bool:
            g.add_argument(
                opt.flag,
                dest=opt.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=opt.help + env,
            )
        else:
            g.add_argument(opt.flag, dest=opt.name, default=argparse.SUPPRESS, help=opt.help + env)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME", "").strip()
    # XDG says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "locotui" / "config.toml"


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


def _read_token_file(path: Path, where: str, warnings: list[str]) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ConfigError(f"{where}: {path} is empty; put the backend's control token in it")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(f"{path} is readable by other users; chmod 600 it")
    return value


def load_settings(
    args: argparse.Namespace | Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merges flags (``args``), environment and config file into :class:`Settings`.

    ``args`` may be an argparse namespace (only attributes that were given count) or a
    plain mapping of setting name → value (for tests and programmatic use).
    """
    env = os.environ if env is None else env
    given: dict[str, Any] = {}
    if isinstance(args, argparse.Namespace):
        given = {k: v for k, v in vars(args).items() if v is not None}
    elif args is not None:
        given = {k: v for k, v in args.items() if v is not None}

    # Which config file: --config > LOCOTUI_CONFIG > the XDG default (optional).
    explicit: Path | None = None
    if "config" in given:
        explicit = Path(str(given["config"])).expanduser()
    elif env.get(f"{ENV_PREFIX}CONFIG", "").strip():
        explicit = Path(env[f"{ENV_PREFIX}CONFIG"].strip()).expanduser()
    path = explicit or default_config_path(env)
    table: dict[str, Any] = {}
    config_path: Path | None = None
    if explicit is not None or path.is_file():
        table = _read_file(path)
        config_path = path

    for key in table:
        if key not in _KNOWN_FILE_KEYS:
            if key == "control_token":
                raise ConfigError(
                    f"{_key_line(path, key)}: control_token is not read from the config "
                    "file (it would sit in plain text next to settings); put the token in "
                    'a file of its own and set control_token_file = "/path/to/token"'
                )
            close = difflib.get_close_matches(key, _KNOWN_FILE_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"{_key_line(path, key)}: unknown setting {key!r}{hint} "
                "(see docs/locotui-config.md)"
            )

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in _OPTIONS:
        raw: Any = None
        if opt.name in given:
            raw, src, where = given[opt.name], "flag", opt.flag or opt.name
        elif opt.env and env.get(ENV_PREFIX + opt.env, "").strip():
            raw, src, where = env[ENV_PREFIX + opt.env], "env", ENV_PREFIX + opt.env
        elif opt.name in table:
            raw, src, where = table[opt.name], "file", f"{_key_line(path, opt.name)}: {opt.name}"
        else:
            continue
        values[opt.name] = opt.parse(raw, where)
        sources[opt.name] = src

    warnings: list[str] = []
    token: str | None = None
    if (value := env.get(f"{ENV_PREFIX}CONTROL_TOKEN")) is not None:
        if not value.strip():
            raise ConfigError("LOCOTUI_CONTROL_TOKEN is set but empty; unset it or give a token")
        token, sources["control_token"] = value.strip(), "env"
    elif value := env.get(f"{ENV_PREFIX}CONTROL_TOKEN_FILE", "").strip():
        token = _read_token_file(Path(value).expanduser(), "LOCOTUI_CONTROL_TOKEN_FILE", warnings)
        sources["control_token"] = "env"  # noqa: S105 - a source name, not a secret
    elif "control_token_file" in table:
        where = _key_line(path, "control_token_file")
        raw_path = table["control_token_file"]
        if not isinstance(raw_path, str) or not raw_path.strip():
            raise ConfigError(f"{where}: control_token_file must be a file path string")
        token_path = Path(raw_path.strip()).expanduser()
        if not token_path.is_absolute():
            # Relative to the config file, so a config directory can be moved as a whole.
            token_path = path.parent / token_path
        token = _read_token_file(token_path, f"{where}: control_token_file", warnings)
        sources["control_token"] = "file"  # noqa: S105 - a source name, not a secret

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

    return Settings(
        **values,
        keys=keys,
        control_token=token,
        config_path=config_path,
        sources=MappingProxyType(sources),
        warnings=tuple(warnings),
    )

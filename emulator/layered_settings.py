"""Settings read in layers: command-line flags, then the environment, then a config file,
then the built-in defaults. The first layer that gives a value wins.

All three programs (``loco-emulator``, ``loco-backend``, ``locotui``) read their settings
this one way. Each has a pydantic-settings model, a subclass of :class:`LayeredSettings`,
with typed fields and validators; a field that may come from the environment carries an
:class:`Env` marker naming its variable. argparse keeps the command lines (help texts,
subcommands); what it parsed is the highest layer::

    args = parser.parse_args(argv)
    settings = Settings.load(flag_layer(Settings, parser, args), env_layer(Settings, env))

A model made directly, ``Settings(port=0, ...)``, takes the values given and the defaults
and reads nothing else, so code and tests get exactly what they ask for.

Whatever is wrong ends in :class:`~emulator.errors.SettingsError`: one line and an exit
code, never pydantic's multi-line report. A validator raises ``ValueError`` with text that
continues the setting's name (``"must be a number of seconds, got 'x'"``, ``"='x' is not a port
number"``) and :meth:`LayeredSettings.load` puts in front where the value was written:
``--port``, ``LOCO_BACKEND_PORT`` or ``config.toml:3: theme``. A validator whose message
is whole already raises :class:`SettingsError` itself, which pydantic lets through.

The control token is the one setting that is never a flag; :func:`read_control_token` is
the rule all three programs follow.
"""

from __future__ import annotations

import argparse
import stat
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from emulator.errors import SettingsError

__all__ = [
    "ControlToken",
    "Env",
    "Layer",
    "LayeredSettings",
    "SettingsError",
    "between",
    "boolean",
    "env_layer",
    "flag_layer",
    "option_names",
    "read_control_token",
    "real_number",
    "whole_number",
]


@dataclass(frozen=True)
class Env:
    """Marks a field that the environment may set: ``Annotated[int, Env("LOCO_HEALTH_PORT")]``.

    Without a name the variable is the model's ``env_prefix`` followed by the field's name
    in capitals. Fields without the marker come from flags (or code) only.
    """

    name: str | None = None


def _is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


# ------------------------------------------------------------------------------- layers


class Layer(PydanticBaseSettingsSource):
    """The values one source gives, by field name, and where each one was written."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        label: str,
        values: Mapping[str, Any],
        where: Mapping[str, str],
    ) -> None:
        super().__init__(settings_cls)
        self.label = label
        """``flag``, ``env`` or ``file``: what ``locotui config`` shows as the source."""
        self.values = dict(values)
        self.where = dict(where)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


def option_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each destination's flag (its first long spelling), subcommands included: the name
    an error message gives for a value that came from a flag."""
    names: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                for dest, name in option_names(sub).items():
                    names.setdefault(dest, name)
        elif action.option_strings:
            long = [o for o in action.option_strings if o.startswith("--")]
            names.setdefault(action.dest, (long or action.option_strings)[0])
    return names


def flag_layer(
    settings_cls: type[LayeredSettings],
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
) -> Layer:
    """The flags that were given. A flag's ``dest`` is the field it sets; a flag that was
    not given is ``None`` (or absent, with ``argparse.SUPPRESS``) and leaves the field to
    the layers below."""
    fields = settings_cls.model_fields
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    names = option_names(parser)
    return Layer(settings_cls, "flag", given, {k: names.get(k, k) for k in given})


def env_layer(settings_cls: type[LayeredSettings], env: Mapping[str, str]) -> Layer:
    """The fields marked :class:`Env` whose variable is set and not blank."""
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for name, variable in settings_cls.env_names().items():
        value = env.get(variable)
        if not _is_blank(value):
            values[name], where[name] = value, variable
    return Layer(settings_cls, "env", values, where)


# Set by LayeredSettings.load for the one model it is building (a context variable rather
# than an argument: pydantic-settings asks the class, not the call, for its sources).
_LAYERS: ContextVar[tuple[Layer, ...]] = ContextVar("settings_layers", default=())


class LayeredSettings(BaseSettings):
    """Base of each program's settings: frozen, typed, validated; see the module docstring."""

    # Defaults are ours and known to be good: only given values are validated (a field
    # whose default comes from outside, like the host name, asks for it with
    # ``Field(validate_default=True)``). defer_build: this base is never instantiated, so
    # its schema is never built; each program's model builds its own on first use.
    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", validate_default=False, defer_build=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Values handed to the constructor first (load's fixed values, or a test's), then
        # the layers load() was given, highest first. Never os.environ behind our back.
        return (init_settings, *_LAYERS.get())

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name → the environment variable that may set it."""
        prefix = str(cls.model_config.get("env_prefix") or "")
        names: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            for marker in field.metadata:
                if isinstance(marker, Env):
                    names[name] = marker.name or f"{prefix}{name.upper()}"
        return names

    @classmethod
    def load(cls, *layers: Layer, **values: Any) -> Self:
        """The settings from ``layers`` (highest first) over the defaults; ``values`` are
        final already and win over every layer (e.g. the control token).

        Raises :class:`SettingsError` naming the flag, variable or file key at fault.
        """
        token = _LAYERS.set(layers)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError(_one_line(exc, layers)) from None
        finally:
            _LAYERS.reset(token)

    @staticmethod
    def origins(*layers: Layer) -> dict[str, str]:
        """Field name → the label of the layer its value came from (absent: default)."""
        return {name: layer.label for layer in reversed(layers) for name in layer.values}


def _one_line(exc: ValidationError, layers: tuple[Layer, ...]) -> str:
    """Pydantic's report of the first error as our one line."""
    error = exc.errors(include_url=False)[0]
    loc = error["loc"]
    ctx = error.get("ctx") or {}
    message = str(ctx["error"]) if error["type"] == "value_error" else error["msg"]
    if not loc:  # a model validator: its message is a whole sentence
        return message
    field = str(loc[0])
    where = field  # a default, or a value handed to load() directly
    for layer in layers:
        if field in layer.values:
            where = layer.where.get(field, field)
            break
    if error["type"] == "missing":
        return f"{where} is not set"
    if error["type"] != "value_error":  # pydantic's own words, after the value
        message = f"={error['input']!r}: {message[:1].lower()}{message[1:]}"
    return where + (message if message[:1] in ("=", ":") else f" {message}")


# --------------------------------------------------------------------- common validators


def boolean(value: Any) -> bool:
    """``true/false`` in a file; ``1/true/yes/on`` and ``0/false/no/off`` as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
    raise ValueError(f"must be true or false, got {value!r}")


def whole_number(value: Any, unit: str = "") -> int:
    """An int from a flag, variable or file (not a bool, not 1.5)."""
    return int(_number(value, int, "a whole number", unit))


def real_number(value: Any, unit: str = "") -> float:
    """A float from a flag, variable or file (not a bool)."""
    return float(_number(value, float, "a number", unit))


def _number(value: Any, kind: type[int] | type[float], what: str, unit: str) -> int | float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, kind) or kind is float:
            return kind(value)
    elif isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    raise ValueError(f"must be {what}{f' of {unit}' if unit else ''}, got {value!r}")


def between(lo: float, hi: float, unit: str, whole: bool = False) -> Callable[[Any], Any]:
    """A validator for a number in ``[lo, hi]`` (``whole``: an int)."""

    def check(value: Any) -> float | int:
        number = whole_number(value, unit) if whole else real_number(value, unit)
        if not lo <= number <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g} {unit}, got {value!r}")
        return number

    return check


# ------------------------------------------------------------------------ control token


@dataclass(frozen=True)
class ControlToken:
    value: str
    source: str
    """``env`` (the variable or the file it names) or ``file`` (named in a config file)."""
    path: Path | None = None
    """The file it was read from, if any."""

    @property
    def shared_with_others(self) -> bool:
        """Whether the token file may be read by other users (worth a warning)."""
        try:
            mode = self.path.stat().st_mode if self.path else 0
        except OSError:
            return False
        return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def read_control_token(
    env: Mapping[str, str],
    variable: str,
    file_variable: str,
    config_file: tuple[str, Path] | None = None,
) -> ControlToken | None:
    """The control token, by the one rule of all three programs.

    1. ``file_variable`` (``LOCO_CONTROL_TOKEN_FILE``) names a file holding it (a mounted
       secret): the file wins;
    2. else ``variable`` (``LOCO_CONTROL_TOKEN``) holds the token itself;
    3. else ``config_file``, (where it is written, path): a token file named in a config
       file, the lowest layer;
    4. else there is none.

    It is never a flag: the process list would show it. A variable that is set but blank,
    or a file that cannot be read or holds nothing, is an error naming it, never a silent
    "no token". Surrounding whitespace (a file's newline) is not part of the token.
    """
    if not _is_blank(path := env.get(file_variable)):
        return _token_file(Path(str(path).strip()).expanduser(), file_variable, "env")
    if (value := env.get(variable)) is not None:
        if not value.strip():
            raise SettingsError(f"{variable} is set but empty; unset it or give a token")
        return ControlToken(value.strip(), "env")
    if config_file is not None:
        where, token_path = config_file
        return _token_file(token_path, where, "file")
    return None


def _token_file(path: Path, where: str, source: str) -> ControlToken:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise SettingsError(
            f"{where}: cannot read {path}: {reason}; check the path and its permissions"
        ) from None
    if not value:
        raise SettingsError(f"{where}: {path} is empty; write the control token into it")
    return ControlToken(value, source, path)

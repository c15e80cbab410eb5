"""The console's named actions and their keys, remappable from the ``[keys]`` config table.

Every key binding of the UI has a stable *action name* (the Textual ``Binding`` id). The
config file may map an action to a list of keys::

    [keys]
    restart_pod = ["ctrl+r", "R"]
    quit = ["q"]

Names are validated against :data:`ACTIONS` (a typo is an error naming the key, not a
silently dead binding), key strings against Textual's key syntax (``ctrl+shift+x``,
``f5``, ``question_mark`` or one printable character), and one key may not end up bound
to two actions.

For the UI: declare ``Binding(key, action, description, id=<action name>)`` with the
default keys from :data:`ACTIONS`, then ``app.set_keymap(settings.keys.textual_keymap())``
applies the user's remapping (Textual replaces the keys of bindings whose id is listed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["ACTIONS", "MUTATING", "Action", "Keymap", "KeymapError"]


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    default_keys: tuple[str, ...]


def _a(name: str, description: str, *keys: str) -> tuple[str, Action]:
    return name, Action(name, description, tuple(keys))


ACTIONS: Mapping[str, Action] = MappingProxyType(
    dict(
        [
            _a("quit", "Quit the console", "q", "ctrl+c"),
            _a("help", "Show the keys", "question_mark", "f1"),
            _a("command_palette", "Open the command palette", "ctrl+p"),
            _a("toggle_view", "Switch between tiles and table", "v"),
            _a("filter", "Filter instances (substring or /regex/)", "slash"),
            _a("clear_filter", "Clear the filter", "escape"),
            _a("sort_next", "Cycle the sort key", "s"),
            _a("sort_reverse", "Reverse the sort order", "S"),
            _a("unhealthy_only", "Show only instances that are not healthy", "u"),
            _a("select", "Select or deselect the focused instance", "space"),
            _a("select_all", "Select every visible instance", "a"),
            _a("clear_selection", "Clear the selection", "A"),
            _a("open_detail", "Open the focused instance's detail", "enter"),
            _a("logs", "Tail the logs of the focused or selected instances", "L"),
            _a("follow_logs", "Toggle follow in the log view", "f"),
            _a("save_logs", "Save the log view to a file", "ctrl+s"),
            _a("history", "Show fps/status history", "H"),
            _a("soft_reset", "Soft reset (QMP system_reset) the target instances", "r"),
            _a("restart_pod", "Restart (delete) the target pods", "R"),
            _a("rolling_restart", "Rolling restart of the StatefulSet", "ctrl+r"),
            _a("forget", "Forget lost instances (their supervisor died; local fleets)", "X"),
            _a("pause_remediation", "Pause or resume the automatic recovery", "P"),
            _a("audit_log", "Show the audit log of actions (what this session did)", "e"),
            _a("toggle_thumbnails", "Turn thumbnails on or off", "t"),
            _a("zoom", "Zoom the focused tile", "z"),
            _a("refresh", "Reconnect and refresh everything now", "ctrl+l"),
        ]
    )
)

MUTATING = frozenset(
    {"soft_reset", "restart_pod", "rolling_restart", "forget", "pause_remediation"}
)
"""Actions that change the fleet or how it is looked after: disabled (and shown disabled)
in read-only mode."""

_MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
# Textual names keys with lowercase words (f5, page_up, question_mark); a single printable
# character is also accepted as-is (upper case means shift).
_KEY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class KeymapError(ValueError):
    """A bad ``[keys]`` entry; ``str()`` names the key and the fix."""


def validate_key(key: str) -> str:
    """Returns ``key`` normalised (modifiers lower case) or raises :class:`KeymapError`."""
    if not isinstance(key, str) or not key.strip():
        raise KeymapError("a key must be a non-empty string such as 'r', 'ctrl+r' or 'f5'")
    key = key.strip()
    if len(key) == 1:
        if not key.isprintable() or key == " ":
            raise KeymapError(f"key {key!r} is not printable; use a name such as 'space'")
        return key
    *mods, last = key.split("+")
    if key.endswith("+"):  # "ctrl++" means ctrl and the plus key
        mods, last = key[:-2].split("+") if len(key) > 2 else [], "plus"
    lowered = [m.lower() for m in mods]
    if len(last) > 1:
        last = last.lower()  # key names are lower case in Textual (F9 -> f9)
    for m in lowered:
        if m not in _MODIFIERS:
            raise KeymapError(f"key {key!r}: unknown modifier {m!r} (use {', '.join(_MODIFIERS)})")
    if len(set(lowered)) != len(lowered):
        raise KeymapError(f"key {key!r} repeats a modifier")
    if not (len(last) == 1 and last.isprintable() and last != " ") and not _KEY_NAME.match(last):
        raise KeymapError(
            f"key {key!r}: {last!r} is not a key name (one character, or a name such as "
            "'f5', 'enter', 'page_down', 'question_mark')"
        )
    return "+".join([*lowered, last])


@dataclass(frozen=True)
class Keymap:
    """Action name → keys (defaults merged with the user's overrides)."""

    bindings: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({a.name: a.default_keys for a in ACTIONS.values()})
    )
    overridden: frozenset[str] = frozenset()
    """Actions whose keys came from the config file."""

    @classmethod
    def from_config(cls, table: Mapping[str, Any], where: str = "[keys]") -> Keymap:
        """Builds the keymap from a ``[keys]`` table; raises :class:`KeymapError`.

        ``where`` prefixes messages (e.g. ``/home/op/.config/locotui/config.toml: [keys]``).
        """
        merged = {a.name: a.default_keys for a in ACTIONS.values()}
        for name, value in table.items():
            if name not in ACTIONS:
                close = _closest(name, ACTIONS)
                hint = f"; did you mean {close!r}?" if close else ""
                raise KeymapError(
                    f"{where}: unknown action {name!r}{hint} (known: {', '.join(ACTIONS)})"
                )
            keys = [value] if isinstance(value, str) else value
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise KeymapError(
                    f"{where}: {name} must be a key or a list of keys, e.g. "
                    f'{name} = ["{ACTIONS[name].default_keys[0]}"]'
                )
            try:
                merged[name] = tuple(dict.fromkeys(validate_key(k) for k in keys))
            except KeymapError as exc:
                raise KeymapError(f"{where}: {name}: {exc}") from None
        owner: dict[str, str] = {}
        for name, keys in merged.items():
            for key in keys:
                if key in owner:
                    # Whichever side the user changed is the one they need to fix.
                    raise KeymapError(
                        f"{where}: key {key!r} is bound to both {owner[key]!r} and {name!r}; "
                        "give one of them another key"
                    )
                owner[key] = name
        return cls(MappingProxyType(merged), frozenset(table))

    def keys_for(self, action: str) -> tuple[str, ...]:
        return self.bindings[action]

    def key_string(self, action: str) -> str:
        """The comma-separated form Textual's ``Binding(key=...)`` takes."""
        return ",".join(self.bindings[action])

    def action_for(self, key: str) -> str | None:
        for name, keys in self.bindings.items():
            if key in keys:
                return name
        return None

    def textual_keymap(self) -> dict[str, str]:
        """For ``App.set_keymap``: binding id (= action name) → comma-separated keys."""
        return {name: ",".join(keys) for name, keys in self.bindings.items() if keys}


def _closest(name: str, choices: Mapping[str, object]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None

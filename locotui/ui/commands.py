"""Command palette (ctrl+p): every action of the console, and jump-to-instance.

Both providers list everything on an empty query (``discover``) and fuzzy-match as the
operator types (``search``), so the palette doubles as a searchable key reference.

Textual makes the providers itself and hands them the app; what they use of it is the
:class:`PaletteHost` protocol below, so this module does not depend on the app's module.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Protocol, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from locotui.data.fleet import FleetModel
from locotui.keymap import MUTATING
from locotui.ui import fmt

__all__ = ["FleetCommands", "JumpCommands", "PaletteHost", "ViewCommands"]


class PaletteHost(Protocol):
    """What the palette asks of the app it runs in."""

    model: FleetModel
    read_only: bool

    def palette_actions(self) -> Iterable[tuple[str, str, str]]: ...

    async def run_action(self, action: str) -> None: ...

    def notify_read_only(self, action: str) -> None: ...

    def jump_to(self, name: str) -> None: ...

    def apply_view(self, name: str | None) -> None: ...


def _app(provider: Provider) -> PaletteHost:
    return cast(PaletteHost, provider.app)


class FleetCommands(Provider):
    """Every console action, with its key as help text."""

    async def _run(self, action: str) -> None:
        app = _app(self)
        if action in MUTATING and app.read_only:
            app.notify_read_only(action)
            return
        await app.run_action(action)

    def _items(self) -> list[tuple[str, str, str]]:
        return list(_app(self).palette_actions())

    async def discover(self) -> Hits:
        for action, label, help_text in self._items():
            yield DiscoveryHit(label, partial(self._run, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action, label, help_text in self._items():
            score = max(matcher.match(label), matcher.match(action.replace("_", " ")))
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(label),
                    partial(self._run, action),
                    text=label,
                    help=help_text,
                )


class JumpCommands(Provider):
    """``jump: <instance>`` for every instance, with its status as help."""

    def _items(self) -> list[tuple[str, str]]:
        app = _app(self)
        out = []
        for name in app.model.names():
            entry = app.model.get(name)
            if entry is None:
                continue
            status = f"{fmt.STATUS_SYMBOL[entry.status]} {entry.status.value}"
            reason = fmt.reason_of(entry.summary)
            out.append((name, status + (f" — {reason}" if reason else "")))
        return out

    def _jump(self, name: str) -> None:
        _app(self).jump_to(name)

    async def discover(self) -> Hits:
        for name, help_text in self._items():
            yield DiscoveryHit(f"jump: {name}", partial(self._jump, name), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text in self._items():
            label = f"jump: {name}"
            score = max(matcher.match(label), matcher.match(name))
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(label),
                    partial(self._jump, name),
                    text=label,
                    help=help_text,
                )


class ViewCommands(Provider):
    """``view: <name>`` for every saved filter (the config's ``[views]``), with its query
    as help."""

    def _items(self) -> list[tuple[str, str]]:
        return list(_app(self).model.views.items())

    def _apply(self, name: str) -> None:
        _app(self).apply_view(name)

    async def discover(self) -> Hits:
        for name, query in self._items():
            yield DiscoveryHit(f"view: {name}", partial(self._apply, name), help=query)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, text in self._items():
            label = f"view: {name}"
            score = max(matcher.match(label), matcher.match(text))
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(label),
                    partial(self._apply, name),
                    text=label,
                    help=text,
                )

"""The operator console: a live fleet of emulators as tiles or a table.

Data flows one way: :class:`~locotui.data.feeds.FleetFeeds` writes into the
:class:`~locotui.data.fleet.FleetModel`; the model coalesces changes (at most
``max_rate`` notifications a second); one render worker (``group="render"``,
``exclusive=True``) waits for the next notification and repaints. A burst of 200 changes
is one repaint, and two repaints never overlap (Dolphie's single refresh worker). Time
moves on once a second (ages, countdowns) through a 1 Hz tick that only repaints what
changed. Thumbnails have a worker of their own that fetches the tiles on screen at most
once per ``thumbnail_interval``.

Malformed data never reaches a widget as an exception: the model turns it into
``Entry.error`` (shown on that tile in red) or a link error (shown in the header).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input

from backend.models import BreakerState, InstanceSource
from locotui.config import Settings
from locotui.data.actions import ActionKind, ActionRunner, AuditLog
from locotui.data.backend_client import BackendClient
from locotui.data.feeds import FleetFeeds
from locotui.data.fleet import FilterError, FleetModel, Origin, Source
from locotui.data.history import HistoryProvider, make_history
from locotui.data.link import LinkState
from locotui.data.remediation import AUTO_RECOVERY, describe_resume, policy_summary
from locotui.data.routes import Routes
from locotui.keymap import ACTIONS, MUTATING
from locotui.ui.clock import Clock
from locotui.ui.grid import TileGrid
from locotui.ui.header import Banner, FleetHeader, HeaderInfo
from locotui.ui.loops import ConsoleLoops
from locotui.ui.table import FleetTable
from locotui.ui.thumbs import ThumbnailCache
from locotui.ui.tile import THUMB_LOADING, Thumb

if TYPE_CHECKING:
    # Imported when needed only: the Kubernetes client takes most of a second to import.
    from locotui.data.kube_client import KubeClient

__all__ = ["MUTATING", "LocoApp"]


MAIN_ONLY = frozenset(
    {
        "open_detail",
        "toggle_view",
        "filter",
        "clear_filter",
        "sort_next",
        "sort_reverse",
        "unhealthy_only",
        "select",
        "select_all",
        "clear_selection",
        "toggle_thumbnails",
        "zoom",
    }
)
"""Actions about the fleet list: hidden on the detail, log and audit screens."""

# Footer labels (short) for the actions the footer shows; the help screen and the command
# palette use the keymap's longer descriptions.
FOOTER: dict[str, str] = {
    "quit": "Quit",
    "help": "Help",
    "filter": "Filter",
    "sort_next": "Sort",
    "unhealthy_only": "Unhealthy",
    "select": "Select",
    "open_detail": "Detail",
    "logs": "Logs",
    "soft_reset": "Reset",
    "restart_pod": "Restart",
    "rolling_restart": "Rolling",
    "toggle_view": "Table/Tiles",
}

# Footer order (most used first, so an 80-column footer shows the essentials).
_ORDER = (
    "help",
    "quit",
    "open_detail",
    "logs",
    "filter",
    "unhealthy_only",
    "sort_next",
    "toggle_view",
    "select",
    "soft_reset",
    "restart_pod",
    "rolling_restart",
    "command_palette",
)
# Handled by the log screen only; the app does not bind them.
_SCREEN_ONLY = frozenset({"follow_logs", "save_logs"})


def _binding(name: str) -> Binding:
    action = ACTIONS[name]
    label = FOOTER.get(name, action.description)
    return Binding(
        ",".join(action.default_keys),
        name,
        label,
        show=name in FOOTER,
        id=name,
        tooltip=action.description,
        # The palette and quit must work whatever has focus (even the filter input).
        priority=name in ("command_palette",),
    )


def app_bindings() -> list[BindingType]:
    names = [n for n in _ORDER if n in ACTIONS]
    names += [n for n in ACTIONS if n not in names and n not in _SCREEN_ONLY]
    return [_binding(n) for n in names]


class FilterBar(Input):
    """The ``/`` filter: filters as you type; Enter keeps it, Escape clears it."""

    DEFAULT_CSS = """
    FilterBar { dock: bottom; display: none; height: 3; border: tall $accent; }
    FilterBar.-shown { display: block; }
    FilterBar.-error { border: tall $error; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Clear filter", show=False),
    ]

    def action_cancel(self) -> None:
        self.value = ""
        self.app.call_later(self.app.action_close_filter)  # type: ignore[attr-defined]


class LocoApp(App[int]):
    """See the module docstring. Construct with the services; :mod:`locotui.cli` does."""

    CSS_PATH = "app.tcss"
    TITLE = "locotui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = app_bindings()

    def __init__(
        self,
        settings: Settings,
        *,
        backend: BackendClient | None = None,
        kube: KubeClient | None = None,
        kube_note: str | None = None,
        model: FleetModel | None = None,
        clock: Clock | None = None,
        start_feeds: bool = True,
        thumb_fetch: Callable[[str, int], Awaitable[bytes]] | None = None,
        history: HistoryProvider | None = None,
        audit: AuditLog | None = None,
        context: str | None = None,
        audit_path: Path | None = None,
        fallback_after: float = 5.0,
        notices: AsyncIterator[str] | None = None,
    ) -> None:
        super().__init__()
        self._notices = notices
        from locotui.ui.commands import FleetCommands, JumpCommands

        self.COMMANDS = App.COMMANDS | {FleetCommands, JumpCommands}  # type: ignore[misc]
        self.settings = settings
        self.clock = clock or Clock()
        self.backend = backend
        self.kube = kube
        self.kube_note = kube_note
        self.model = model or FleetModel(
            history_points=settings.history_points,
            clock=self.clock.monotonic,
            wall_clock=self.clock.time,
        )
        self.history: HistoryProvider = history or make_history(settings.prometheus_url, self.model)
        self.audit = audit or AuditLog(path=audit_path)
        self.routes = Routes(backend=backend, kube=kube, source_of=self._source_of)
        self.runner = ActionRunner(
            backend=backend,
            kube=kube,
            audit=self.audit,
            read_only=settings.read_only,
            fleet=self.model,
            routes=self.routes,
        )
        self.feeds: FleetFeeds | None = (
            FleetFeeds(
                self.model,
                backend=backend,
                kube=kube,
                fallback_after=fallback_after,
                summary=True,
            )
            if start_feeds
            else None
        )
        self.read_only = settings.read_only
        self.view_mode = settings.default_view
        self.thumbnails_on = settings.thumbnails
        self._cursor_hint: str | None = None
        self.rendered_version = -1
        self._decisions_seen = 0
        """The automatic recovery's decisions already announced (see render_fleet)."""
        self.header_info = HeaderInfo(
            context=context or settings.kube_context or (kube.context if kube else None),
            namespace=settings.namespace or (kube.namespace if kube else None),
            namespace_source=kube.namespace_source if kube else None,
            read_only=settings.read_only,
            view=self.view_mode,
            backend_url=settings.backend_url,
        )
        fetch = thumb_fetch or (backend.thumbnail if backend is not None else None)
        self.thumbs: ThumbnailCache | None = ThumbnailCache(fetch) if fetch else None
        self.renders = 0
        self.loops = ConsoleLoops(
            self,
            self.model,
            self.clock,
            thumbs=self.thumbs,
            thumbnail_interval=settings.thumbnail_interval,
            history=self.history,
            prometheus_url=settings.prometheus_url,
            can_have_picture=can_have_picture,
        )
        self._hup = False
        with contextlib.suppress(Exception):
            self.theme = settings.theme
        # Only the actions the config file remaps: the defaults are the bindings already.
        # (Textual applies a keymap to binding maps it shares between app instances, so a
        # full keymap would also leak from one app to the next in one process: tests.)
        keys = settings.keys
        self.set_keymap(
            {
                name: value
                for name, value in keys.textual_keymap().items()
                if name in keys.overridden
            }
        )

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        # Kept as attributes: App.query_one searches the *current* screen, which is a
        # modal or the detail screen half of the time.
        self.header = FleetHeader(self.model, self.header_info, id="header")
        self.banner = Banner(self.model, self.header_info, id="banner")
        self.grid = TileGrid(thumbnails=self.thumbnails_on and self.thumbs is not None, id="grid")
        if self.thumbs is not None:
            self.grid.thumb_source = self.thumbs.get
        self.table = FleetTable(id="table")
        self.filter_bar = FilterBar(
            placeholder="filter: text or /regex/ (name, node, status, reason)", id="filter"
        )
        with Vertical(id="main"):
            yield self.header
            yield self.banner
            yield self.grid
            yield self.table
            yield self.filter_bar
        yield Footer()

    def now(self) -> datetime:
        return self.clock.now()

    # ------------------------------------------------------------------ lifecycle
    async def on_mount(self) -> None:
        self._apply_view()
        if self.read_only:
            self.sub_title = "READ-ONLY"
        for warning in self.settings.warnings:
            self.notify(warning, severity="warning", timeout=10)
        if self.kube_note:
            self.notify(self.kube_note, title="Kubernetes", severity="warning", timeout=8)
        if self.kube is None and self.model.links[Source.KUBERNETES].state is LinkState.IDLE:
            self.model.set_link(Source.KUBERNETES, LinkState.IDLE, detail=self.kube_note)
        self._install_hangup()
        self._start(self.loops.render(), "render")
        self.set_interval(1.0, self._tick, name="tick")
        if self.thumbs is not None:
            self._start(self.loops.thumbnails(), "thumbnails")
        if self.settings.prometheus_url:
            self._start(self.loops.prometheus(), "prometheus")
        if self.feeds is not None:
            await self.feeds.start()
        if self._notices is not None:
            self._start(self.loops.notices(self._notices), "notices")
        self._render()

    def _start(self, loop: Coroutine[Any, Any, None], group: str) -> None:
        self.run_worker(loop, name=group, group=group, exclusive=True, exit_on_error=False)

    # ------------------------------------------------------------------ ConsoleView
    def render_fleet(self) -> None:
        self._render()

    def _announce_decisions(self) -> None:
        """The automatic recovery's new decisions as notices: with each repaint, which
        follows the model's coalesced notification, so a burst of them is a few notices
        (and one an operator's own repaint took first is still announced)."""
        from locotui.ui.recovery import notices

        new, self._decisions_seen = self.model.decisions_since(self._decisions_seen)
        for notice in notices(new):
            if notice.alert:
                self.show_alert(notice.text)
            else:
                self.notify(notice.text, title="auto-recovery", severity=notice.severity)

    def wants_pictures(self) -> bool:
        return (
            self.thumbnails_on
            and self.view_mode == "tiles"
            and self.on_main_screen()
            and bool(self.grid.plan.thumb_rows)
        )

    def show_alert(self, line: str) -> None:
        """A line that must stay visible (the demo's processes ending, an instance the
        automatic recovery gave up on): kept in the banner, since a toast alone is gone
        before anyone reads it."""
        self.header_info.alerts.append(line)
        self.notify(line, title="alert", severity="error", timeout=20)
        self.banner.update(self.clock.monotonic())

    def _source_of(self, name: str) -> InstanceSource | None:
        entry = self.model.get(name)
        return entry.summary.source if entry is not None else None

    async def on_unmount(self) -> None:
        if self.feeds is not None:
            with contextlib.suppress(Exception):
                await self.feeds.stop()
        if self.kube is not None:
            with contextlib.suppress(Exception):
                await self.kube.aclose()

    def _install_hangup(self) -> None:
        """A closed terminal (ssh dropped, tmux pane killed) must end the process, not
        leave a console running headless with its watches and threads."""
        try:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self._on_hangup)
            loop.add_signal_handler(signal.SIGTERM, self._on_hangup)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread (tests) or no signals on this platform

    def _on_hangup(self) -> None:
        if self._hup:
            os._exit(129)
        self._hup = True
        # If shutting down cleanly hangs (restoring a terminal that is gone can block the
        # loop in the driver's thread joins), leave anyway: nobody is left to see it. A
        # thread, not a loop timer, because the loop is what may be stuck.
        watchdog = threading.Timer(3.0, os._exit, args=(129,))
        watchdog.daemon = True
        watchdog.start()
        self.exit(return_code=129)

    # ------------------------------------------------------------------ rendering
    @property
    def cursor_name(self) -> str | None:
        """The focused instance. The visible view owns it (keys move it synchronously);
        the hint carries it across view switches and filters."""
        if self.is_mounted and self.grid.is_mounted:
            view = self.grid if self.view_mode == "tiles" else self.table
            name = view.cursor_name
            if name is not None:
                return name
        return self._cursor_hint

    @cursor_name.setter
    def cursor_name(self, name: str | None) -> None:
        self._cursor_hint = name

    def _render(self, cursor: str | None = None) -> None:
        if not self.grid.is_mounted:
            return  # shutting down
        self.renders += 1
        self.rendered_version = self.model.version
        at = self.now()
        entries = self.model.view()
        selection = frozenset(self.model.selection)
        names = {e.name for e in entries}
        cursor = cursor or self.cursor_name
        if cursor not in names:
            cursor = entries[0].name if entries else None
        if self.view_mode == "tiles":
            self.grid.show(entries, selection, at, cursor)
            self._apply_thumbs()
        else:
            self.table.show(
                entries,
                selection,
                at,
                cursor,
                (self.model.sort_key, self.model.sort_reverse),
            )
        self._cursor_hint = self.cursor_name
        self._announce_decisions()
        self.header.update(self.clock.monotonic())
        self.banner.update(self.clock.monotonic())
        if self.thumbs is not None:
            self.thumbs.forget_except(set(self.model.entries))
        for screen in self.screen_stack[1:]:
            handler = getattr(screen, "fleet_changed", None)
            if handler is not None:
                handler()

    def _tick(self) -> None:
        if not self.header.is_mounted:
            return
        at = self.now()
        mono = self.clock.monotonic()
        self.header.update(mono)
        self.banner.update(mono)
        if not self.on_main_screen():
            handler = getattr(self.active_screen(), "tick", None)
            if handler is not None:
                handler(at)
            return
        if self.view_mode == "tiles":
            self.grid.tick(at)
        else:
            self.table.tick(self.model.view(), frozenset(self.model.selection), at)

    def _apply_view(self) -> None:
        tiles = self.view_mode == "tiles"
        self.grid.display = tiles
        self.table.display = not tiles
        self.header_info = replace(self.header_info, view=self.view_mode)
        (self.grid if tiles else self.table).focus()

    # ------------------------------------------------------------------ thumbnails
    def _apply_thumbs(self) -> None:
        """Hands cached pictures to tiles (after a reorder the tile may show another
        instance than before); wakes the thumbnail loop only when a tile on screen has
        no picture for its size yet (scrolled into view, resized, new instance)."""
        if self.thumbs is None:
            return
        plan = self.grid.plan
        missing = False
        for tile in self.grid.tiles:
            entry = tile.entry
            if entry is None or not plan.thumb_rows:
                continue
            thumb = self.thumbs.get(entry.name, plan.thumb_cols, plan.thumb_rows)
            if thumb is not None:
                tile.set_thumb(thumb)
            elif not can_have_picture(entry):
                tile.set_thumb(_no_picture(entry))
            else:
                missing = True
        if missing:
            self.loops.thumb_wake.set()

    # ------------------------------------------------------------------ cursor
    @on(TileGrid.CursorMoved)
    @on(FleetTable.CursorMoved)
    def _cursor_moved(self, message: TileGrid.CursorMoved | FleetTable.CursorMoved) -> None:
        if message.name is not None:
            self.cursor_name = message.name

    @on(TileGrid.Activated)
    @on(FleetTable.Activated)
    def _activated(self, message: TileGrid.Activated | FleetTable.Activated) -> None:
        self.cursor_name = message.name
        self.action_open_detail()

    def focused_name(self) -> str | None:
        """The instance an action is about: the open detail screen's, else the cursor's."""
        name = getattr(self.active_screen(), "instance_name", None)
        return name if isinstance(name, str) else self.cursor_name

    def targets(self) -> list[str]:
        screen_targets = getattr(self.active_screen(), "action_targets", None)
        if callable(screen_targets):
            return list(screen_targets())
        return self.model.targets(self.cursor_name)

    def jump_to(self, name: str) -> None:
        """Shows ``name`` (clearing a filter that hides it) and puts the cursor on it."""
        while len(self.screen_stack) > 1 and not isinstance(self.screen, CommandPalette):
            self.pop_screen()
        if name not in {e.name for e in self.model.view()}:
            self.model.set_filter("")
            self.model.set_unhealthy_only(False)
            self.model.flush_now()
        self._render(cursor=name)
        if self.view_mode == "tiles":
            self.grid.select_name(name)
        else:
            self.table.select_name(name)

    def active_screen(self) -> Screen[Any]:
        """The screen the operator is working in (the command palette sits on top of it
        while open, and its commands are about that screen)."""
        for screen in reversed(self.screen_stack):
            if not isinstance(screen, CommandPalette):
                return screen
        return self.screen

    def on_main_screen(self) -> bool:
        return not self.screen_stack or self.active_screen() is self.screen_stack[0]

    # ------------------------------------------------------------------ bindings state
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in MUTATING and self.read_only:
            return None  # shown greyed out in the footer; pressing it says why
        if action in MAIN_ONLY and not self.on_main_screen():
            return False
        if action == "toggle_thumbnails" and self.thumbs is None:
            return None
        return True

    async def on_key(self, event: events.Key) -> None:
        """Keys of actions disabled by read-only mode arrive here (their binding does
        not run): say why instead of doing nothing."""
        if not self.read_only:
            return
        for action in MUTATING:
            keys = self.settings.keys.keys_for(action)
            if event.key in keys or (event.character and event.character in keys):
                event.stop()
                self.notify_read_only(action)
                return

    def notify_read_only(self, action: str) -> None:
        self.notify(
            f"{ACTIONS[action].description}: disabled (locotui runs with --read-only)",
            title="Read-only",
            severity="warning",
        )

    # ------------------------------------------------------------------ actions: view
    def action_toggle_view(self) -> None:
        cursor = self.cursor_name
        self.view_mode = "table" if self.view_mode == "tiles" else "tiles"
        self._apply_view()
        self._render(cursor=cursor)
        self.notify(f"{self.view_mode} view", timeout=1.5)

    def action_toggle_thumbnails(self) -> None:
        if self.thumbs is None:
            self.notify("no thumbnail source (no backend)", severity="warning")
            return
        self.thumbnails_on = not self.thumbnails_on
        self.grid.set_thumbnails(self.thumbnails_on)
        self._render()
        self.loops.thumb_wake.set()

    def action_filter(self) -> None:
        bar = self.filter_bar
        bar.add_class("-shown")
        bar.value = self.model.filter_text
        bar.focus()

    def action_close_filter(self) -> None:
        bar = self.filter_bar
        bar.remove_class("-shown")
        self._apply_view()

    def action_clear_filter(self) -> None:
        changed = bool(self.model.filter_text or self.model.unhealthy_only)
        self.model.set_filter("")
        self.model.set_unhealthy_only(False)
        if changed:
            self.notify("filter cleared", timeout=1.5)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        bar = self.filter_bar
        try:
            self.model.set_filter(event.value)
        except FilterError as exc:
            bar.add_class("-error")
            bar.border_title = str(exc)
            return
        bar.remove_class("-error")
        bar.border_title = None
        self._render()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.action_close_filter()

    def action_sort_next(self) -> None:
        key = self.model.cycle_sort()
        self._render()
        self.notify(f"sorted by {key.value}", timeout=1.5)

    def action_sort_reverse(self) -> None:
        self.model.set_sort(self.model.sort_key, not self.model.sort_reverse)
        self._render()

    def action_unhealthy_only(self) -> None:
        self.model.set_unhealthy_only(not self.model.unhealthy_only)
        self._render()

    def action_select(self) -> None:
        name = self.cursor_name
        if name is None:
            return
        self.model.toggle(name)
        self._render()
        # Like a file manager: space marks and moves on, so several can be marked quickly.
        if self.view_mode == "tiles":
            self.grid.action_move(1, 0)
        else:
            self.table.action_cursor_down()

    def action_select_all(self) -> None:
        self.model.select_visible()
        self._render()

    def action_clear_selection(self) -> None:
        self.model.clear_selection()
        self._render()

    def action_refresh(self) -> None:
        if self.feeds is not None:
            self.run_worker(self.feeds.reconnect(), group="reconnect", exclusive=True)
        self.loops.thumb_wake.set()
        self.notify("reconnecting…", timeout=1.5)

    # ------------------------------------------------------------------ actions: screens
    def action_help(self) -> None:
        from locotui.ui.screens.help import HelpScreen, help_rows

        rows = help_rows(self.settings.keys, self.read_only, lambda n: self.check_action(n, ()))
        self.push_screen(HelpScreen(rows))

    def action_open_detail(self, section: str | None = None) -> None:
        from locotui.ui.screens.detail import DetailScreen

        name = self.focused_name()
        if name is None or self.model.get(name) is None:
            self.notify("no instance under the cursor", severity="warning")
            return
        active = self.active_screen()
        if isinstance(active, DetailScreen):
            if section:
                active.scroll_to_section(section)
            return
        entry = self.model.get(name)
        if section is None and entry is not None and entry.summary.remediation is not None:
            # On the automatic recovery's ladder: what happened so far is what matters.
            section = "timeline"
        self.push_screen(
            DetailScreen(
                name,
                model=self.model,
                clock=self.clock,
                history=self.history,
                kube=self.kube,
                thumbs=self.thumbs,
                section=section,
                timeline=self.backend.timeline if self.backend is not None else None,
                fetch=self.backend.get_instance if self.backend is not None else None,
                audit=self.audit,
            )
        )

    def action_history(self) -> None:
        self.action_open_detail(section="history")

    def action_zoom(self) -> None:
        from locotui.ui.screens.zoom import ZoomScreen

        name = self.focused_name()
        if name is None or self.thumbs is None:
            self.notify("nothing to zoom", severity="warning")
            return
        self.push_screen(ZoomScreen(name, self.thumbs))

    def action_logs(self) -> None:
        from locotui.ui.screens.logs import LogScreen

        names = self.targets()
        if not names:
            self.notify("no instance under the cursor", severity="warning")
            return
        self.push_screen(
            LogScreen(
                names,
                self.routes,
                tail_lines=self.settings.log_tail_lines,
                buffer_lines=self.settings.log_buffer_lines,
            )
        )

    def action_audit_log(self) -> None:
        from locotui.ui.screens.audit import AuditScreen

        self.push_screen(AuditScreen(self.audit))

    # ------------------------------------------------------------------ actions: mutations
    def action_soft_reset(self) -> None:
        self._confirm_action(ActionKind.SOFT_RESET, self.targets())

    def action_restart_pod(self) -> None:
        self._confirm_action(ActionKind.RESTART_POD, self.targets())

    def action_rolling_restart(self) -> None:
        targets = self.targets()
        if not targets:
            targets = [e.name for e in self.model.view()]
        self._confirm_action(ActionKind.ROLLING_RESTART, targets)

    def action_forget(self) -> None:
        lost = [n for n in self.targets() if (e := self.model.get(n)) and e.summary.lost_since]
        if not lost:
            self.notify(
                "only a lost instance (its supervisor died) can be forgotten", severity="warning"
            )
            return
        self._confirm_action(ActionKind.FORGET, lost)

    def action_pause_remediation(self) -> None:
        """Pauses the automatic recovery, or resumes it when it is paused: confirmed,
        run and audited like every action."""
        from locotui.ui.screens.confirm import ActionScreen, PauseScreen

        if self.read_only:
            self.notify_read_only("pause_remediation")
            return
        status = self.model.remediation
        if self.backend is None or (status is not None and not status.enabled):
            self.notify(
                "the automatic recovery is off on this backend, so there is nothing to pause: "
                "start the backend with --remediation (LOCO_REMEDIATION=1; Helm: "
                "backend.remediation.enabled)",
                title="auto-recovery",
                severity="warning",
                timeout=10,
            )
            return
        if status is not None and status.paused:
            bad = sum(1 for e in self.model.entries.values() if not e.healthy)
            self.push_screen(
                ActionScreen(
                    ActionKind.RESUME_REMEDIATION,
                    [AUTO_RECOVERY],
                    describe_resume(status, bad),
                    self.runner,
                    job=self.runner.resume_remediation,
                )
            )
            return
        # Not read yet (None) is asked as a pause too: the backend says if it is off.
        self.push_screen(PauseScreen(self.runner, self.now))

    def _confirm_action(self, kind: ActionKind, targets: list[str]) -> None:
        from locotui.ui.screens.confirm import ActionScreen

        if self.read_only:
            self.notify_read_only(kind.value)
            return
        if not targets:
            self.notify("no instance under the cursor or selected", severity="warning")
            return
        self.push_screen(
            ActionScreen(kind, targets, self.runner.describe(kind, targets), self.runner)
        )

    # ------------------------------------------------------------------ palette support
    def palette_actions(self) -> Iterable[tuple[str, str, str]]:
        """(action, label, help) of every action, for the command palette."""
        for name, action in ACTIONS.items():
            if name in ("command_palette",) or name in _SCREEN_ONLY:
                continue
            keys = ", ".join(self.settings.keys.keys_for(name))
            enabled = self.check_action(name, ())
            label = action.description
            status = self.model.remediation
            if name == "pause_remediation" and status is not None and status.paused:
                # Say which of the two it will do.
                label = f"Resume the automatic recovery ({policy_summary(status)})"
            if enabled is None:
                label += " (disabled)"
            elif enabled is False:
                continue
            yield name, label, f"key: {keys}" if keys else ""


def can_have_picture(entry: Any) -> bool:
    """Worth asking for a frame: a backend instance with an address whose circuit is not
    open (an open circuit means the backend would refuse at once)."""
    inst = entry.summary
    return entry.origin is Origin.BACKEND and inst.watched and inst.breaker is not BreakerState.OPEN


def _no_picture(entry: Any) -> Thumb:
    if entry.origin is Origin.KUBERNETES:
        return Thumb(message="no picture: backend unreachable")
    if not entry.summary.watched:
        return Thumb(message="no supervisor address yet")
    if entry.summary.breaker is BreakerState.OPEN:
        return Thumb(message="no picture: supervisor unreachable", error=True)
    return THUMB_LOADING

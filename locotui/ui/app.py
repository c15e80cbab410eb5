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
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input

from backend.models import BreakerState, InstanceSource
from locotui.config import Settings
from locotui.data.actions import ActionKind, ActionRunner, AuditEntry, AuditLog, Phase
from locotui.data.backend_client import BackendClient
from locotui.data.clipboard import ClipboardError, in_tmux, osc52_sequences
from locotui.data.errors import DataError
from locotui.data.feeds import FleetFeeds
from locotui.data.fleet import FilterError, FleetModel, Origin, Source
from locotui.data.history import SLO_WINDOWS, HistoryProvider, make_history
from locotui.data.link import LinkState
from locotui.data.pace import Pace
from locotui.data.remediation import AUTO_RECOVERY, describe_resume, policy_summary
from locotui.data.routes import Routes
from locotui.data.stream import watch_url
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
        "saved_filter",
        "sort_next",
        "sort_reverse",
        "unhealthy_only",
        "select",
        "select_all",
        "clear_selection",
        "toggle_thumbnails",
        "zoom",
        "dump_screen",
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
        backend_forward: socket.socket | None = None,
    ) -> None:
        super().__init__()
        self._notices = notices
        self._backend_sock = backend_forward
        """A bound socket to serve as a port-forward to the backend's pod (the console
        was given a context and namespace, not a backend URL)."""
        from locotui.ui.commands import FleetCommands, JumpCommands, ViewCommands

        self.COMMANDS = App.COMMANDS | {FleetCommands, JumpCommands, ViewCommands}  # type: ignore[misc]
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
        self.model.views = dict(settings.views)
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
        self.launched: list[int] = []
        """Viewers V started (their pids), for tests and the curious."""
        self.forwards: dict[str, Any] = {}
        """Port-forwards to pods' VNC opened by V, by instance (stopped on exit)."""
        self.gated: Any = None
        """The health-gated rolling restart of this session (a GatedRollout), if any."""
        self._gated_listeners: list[Callable[[], None]] = []
        self.copied: str | None = None
        """The last text copied to the terminal's clipboard (what a paste would give)."""
        self.last_dump: Any = None
        """The last screen dump written (a :class:`locotui.data.dump.Dump`)."""
        self.view_mode = settings.default_view
        self.thumbnails_on = settings.thumbnails
        self._cursor_hint: str | None = None
        self.rendered_version = -1
        self._decisions_seen = 0
        """The automatic recovery's decisions already announced (see render_fleet)."""
        self.pace = Pace.starting_at(settings.thumbnail_interval)
        self.header_info = HeaderInfo(
            context=context or settings.kube_context or (kube.context if kube else None),
            namespace=settings.namespace or (kube.namespace if kube else None),
            namespace_source=kube.namespace_source if kube else None,
            read_only=settings.read_only,
            view=self.view_mode,
            backend_url=settings.backend_url,
            slo_target_fps=settings.slo_target_fps,
            slo_objective=settings.slo_objective,
            burn=tuple((label, None) for label, _ in SLO_WINDOWS)
            if settings.prometheus_url
            else None,
            pace=self.pace.text(),
        )
        fetch = thumb_fetch or (backend.thumbnail if backend is not None else None)
        self.thumbs: ThumbnailCache | None = ThumbnailCache(fetch) if fetch else None
        self.renders = 0
        self.loops = ConsoleLoops(
            self,
            self.model,
            self.clock,
            thumbs=self.thumbs,
            pace=self.pace,
            history=self.history,
            prometheus_url=settings.prometheus_url,
            can_have_picture=can_have_picture,
            slo=(settings.slo_target_fps, settings.slo_objective),
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
            placeholder="filter: text !text node: status: reason: /regex/ @view", id="filter"
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
        if self._backend_sock is not None and self.kube is not None:
            # Before the feeds: the backend URL points at this listener.
            self.forwards["(backend)"] = await self.kube.backend_forward(self._backend_sock)
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
            self._start(self.loops.slo_burn(), "slo")
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
        for forward in self.forwards.values():
            with contextlib.suppress(Exception):
                await forward.stop()
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
            handler = self._screen_handler(screen, "fleet_changed")
            if handler is not None:
                handler()

    def _screen_handler(self, screen: Any, name: str) -> Any:
        """A pushed screen's handler, once it is mounted and until the app shuts down: a
        tick that lands between the push and the mount would find none of its widgets (it
        fills itself in on mount), and while the app shuts down the screens still on the
        stack lose their widgets before the timers and feeds that call this stop."""
        return getattr(screen, name, None) if self.is_running and screen.is_mounted else None

    def _tick(self) -> None:
        if not self.header.is_mounted:
            return
        at = self.now()
        mono = self.clock.monotonic()
        self.header.update(mono)
        self.banner.update(mono)
        if not self.on_main_screen():
            handler = self._screen_handler(self.active_screen(), "tick")
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
        # The audit log is where a refusal is looked for afterwards.
        kind = ActionKind(action) if action in {k.value for k in ActionKind} else None
        if kind is not None:
            entry = AuditEntry(
                datetime.now(UTC), kind, tuple(self.targets()), "refused", "read-only mode"
            )
            self.run_worker(self.audit.append(entry), group="audit")

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

    def action_saved_filter(self) -> None:
        """Applies the next saved filter (the config's ``[views]``); after the last one,
        clears the filter."""
        views = list(self.model.views)
        if not views:
            self.notify(
                "no saved filters: add a [views] table to the config, "
                'e.g. sick = "!status:healthy"',
                severity="warning",
            )
            return
        current = self.model.filter_text.removeprefix("@")
        # From no view (or a typed filter) to the first; from the last to none.
        at = views.index(current) + 1 if current in views else 0
        self.apply_view(views[at] if at < len(views) else None)

    def apply_view(self, name: str | None) -> None:
        """Filters with the saved view ``name`` (None: no filter)."""
        self.model.set_filter(f"@{name}" if name else "")
        self.notify(
            f"view @{name}: {self.model.views[name]}" if name else "filter cleared", timeout=2
        )
        self._render()

    def action_faster(self) -> None:
        self._set_pace(self.pace.faster(), "already the fastest")

    def action_slower(self) -> None:
        self._set_pace(self.pace.slower(), "already the slowest")

    def _set_pace(self, changed: bool, otherwise: str) -> None:
        if not changed:
            self.notify(f"{otherwise}: {self.pace.text()}", timeout=2)
            return
        self.header_info = replace(self.header_info, pace=self.pace.text())
        self.header.info = self.header_info
        self.header.update()
        self.loops.thumb_wake.set()  # a shorter interval takes effect now

    def show_burn(self, burn: dict[str, float | None]) -> None:
        self.header_info = replace(self.header_info, burn=tuple(burn.items()))
        self.header.info = self.header_info
        self.header.update()

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
                watch_url=self.watch_url,
            )
        )

    def watch_url(self, name: str) -> str | None:
        """The backend's page that plays ``name``'s stream (None without a backend)."""
        return watch_url(self.backend.base_url, name) if self.backend is not None else None

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

    def action_events(self) -> None:
        from locotui.data.events import gather
        from locotui.ui.screens.events import EventsScreen

        # From an instance's detail, its events; from the fleet, all of them.
        name = getattr(self.active_screen(), "instance_name", None)

        async def load() -> Any:
            return await gather(self.model.names(), backend=self.backend, kube=self.kube)

        query = f"name:/^{name}$/" if isinstance(name, str) else ""
        self.push_screen(EventsScreen(load, self.now, query, instances=len(self.model)))

    def action_nodes(self) -> None:
        from locotui.ui.screens.nodes import NodesScreen

        self.push_screen(NodesScreen(self.model, self.settings.slo_target_fps))

    def action_audit_log(self) -> None:
        from locotui.ui.screens.audit import AuditScreen

        self.push_screen(AuditScreen(self.audit))

    # ------------------------------------------------------------------ actions: looking
    def action_raw_yaml(self) -> None:
        from locotui.data.rawview import fetch_raw
        from locotui.ui.screens.raw import RawScreen

        name = self.focused_name()
        if name is None:
            self.notify("no instance under the cursor", severity="warning")
            return
        entry = self.model.get(name)

        async def load() -> dict[str, Any]:
            return await fetch_raw(
                name,
                backend=self.backend,
                kube=self.kube,
                is_pod=self.routes.is_pod(name),
                known=entry.full if entry is not None else None,
            )

        self.push_screen(RawScreen(name, load))

    def copy_text(self, text: str, what: str) -> bool:
        """Puts ``text`` on the clipboard of the operator's own terminal (OSC 52; inside
        tmux also through its passthrough); says what was copied, or why not."""
        try:
            sequences = osc52_sequences(text, tmux=in_tmux(os.environ))
        except ClipboardError as exc:
            self.notify(f"not copied: {exc}", severity="warning")
            return False
        # Textual's own copy_to_clipboard writes only the plain sequence; the driver is
        # where it writes too (it is None under a headless test run).
        if self._driver is not None:
            for sequence in sequences:
                self._driver.write(sequence)
        self.copied = text
        self.notify(f"copied {what}", title="Clipboard (OSC 52)", timeout=3)
        return True

    def action_vnc(self) -> None:
        """Screen access: the VNC of the focused instance — for a pod through a
        port-forward over the Kubernetes API with the operator's credentials — with the
        viewer command shown and copied."""
        if self.read_only:
            self.notify_read_only("vnc")  # a viewer can type into the guest
            return
        name = self.focused_name()
        entry = self.model.get(name) if name else None
        if name is None or entry is None:
            self.notify("no instance under the cursor", severity="warning")
            return
        if self.routes.is_pod(name) and self.kube is None:
            self.notify(
                "screen access to a pod needs Kubernetes access: a kubeconfig whose user may "
                "create pods/portforward (the chart's operator Role)",
                severity="warning",
                timeout=8,
            )
            return
        self._open_vnc(name)

    async def _vnc_address(self, name: str) -> str | None:
        """The instance's VNC address: from its full form (the summary list leaves it
        out), fetched from the backend when this console has not got it."""
        entry = self.model.get(name)
        if entry is not None and entry.full is not None:
            return entry.full.vnc
        if self.backend is None:
            return None
        try:
            full = await self.backend.get_instance(name)
        except DataError:
            return None
        self.model.set_full(full)
        return full.vnc

    @work(group="vnc")
    async def _open_vnc(self, name: str) -> None:
        address = await self._vnc_address(name)
        if not self.routes.is_pod(name):
            if address is None:
                self.notify(f"{name} has no VNC address", severity="warning")
                return
            host, _, vnc_port = address.rpartition(":")
            self._offer_viewer(name, host, int(vnc_port))
            return
        port = int(address.rsplit(":", 1)[1]) if address and ":" in address else 5900
        forward = self.forwards.get(name)
        if forward is None:
            assert self.kube is not None
            try:
                forward = await self.kube.port_forward(name, port)
            except (DataError, OSError) as exc:
                self.notify(f"port-forward to {name}: {exc}", severity="error")
                return
            self.forwards[name] = forward
        self._offer_viewer(name, "127.0.0.1", forward.local_port, forward)

    def _offer_viewer(self, name: str, host: str, port: int, forward: Any = None) -> None:
        """Launches the configured viewer (``vnc_viewer``), else shows and copies the
        command that would open one."""
        from locotui.data.usercommands import expand

        via = (
            f" (port-forward 127.0.0.1:{forward.local_port} → {name}:{forward.port}, "
            "open until you quit)"
            if forward is not None
            else ""
        )
        viewer = self.settings.vnc_viewer
        if viewer is not None:
            argv = expand(viewer, {"HOST": host, "PORT": str(port), "NAME": name})
            self._launch_viewer(name, argv, via)
            return
        command = f"vncviewer {host}::{port}"
        if self.copy_text(command, command):
            self.notify(f"VNC of {name}: {command}{via}", title="Screen access", timeout=15)

    @work(group="vnc-viewer")
    async def _launch_viewer(self, name: str, argv: list[str], via: str) -> None:
        import shlex

        from locotui.data.usercommands import CommandError, launch

        try:
            pid = await launch(argv)
        except CommandError as exc:
            self.notify(f"VNC viewer for {name}: {exc}", severity="error")
            return
        self.launched.append(pid)
        self.notify(
            f"VNC of {name}: started {shlex.join(argv)} (pid {pid}){via}",
            title="Screen access",
            timeout=15,
        )

    def action_copy_name(self) -> None:
        names = self.targets()
        if not names:
            self.notify("no instance under the cursor", severity="warning")
            return
        what = names[0] if len(names) == 1 else f"{len(names)} names"
        self.copy_text("\n".join(names), what)

    def action_copy_url(self) -> None:
        name = self.focused_name()
        if name is None:
            self.notify("no instance under the cursor", severity="warning")
            return
        url = f"{self.settings.backend_url}/api/instances/{quote(name, safe='')}"
        self.copy_text(url, url)

    def action_dump_screen(self) -> None:
        stamp = self.now().astimezone().strftime("%Y%m%d-%H%M%S")
        default = str(Path.cwd() / f"locotui-dump-{stamp}")

        async def chosen(path: str | None) -> None:
            if path:
                self._dump_screen(path)

        from locotui.ui.screens.prompt import PromptScreen

        self.push_screen(
            PromptScreen("save the screen (text, SVG, pictures) to the new directory", default),
            chosen,
        )

    @work(group="dump")
    async def _dump_screen(self, path: str) -> None:
        from locotui.data.dump import collect_pictures, write_dump

        # What is on screen now, before the pictures are fetched: the dump is of this.
        text = "\n".join(strip.text.rstrip() for strip in self.screen._compositor.render_strips())
        svg = self.export_screenshot()
        names = [e.name for e in self.model.view() if can_have_picture(e)]
        pictures: dict[str, bytes] = {}
        missing: dict[str, str] = {}
        if self.thumbs is not None and names:
            pictures, missing = await collect_pictures(self.thumbs.fetch, names)
        try:
            dump = await write_dump(path, text + "\n", svg=svg, pictures=pictures, missing=missing)
        except DataError as exc:
            self.notify(str(exc), title="Screen dump failed", severity="error")
            return
        self.last_dump = dump
        extra = f" ({len(dump.missing)} without a picture)" if dump.missing else ""
        self.notify(
            f"saved {len(dump.files)} files to {dump.directory}{extra}", title="Screen dump"
        )

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

    def action_gated_restart(self) -> None:
        """The health-gated rolling restart of the selection (else of every instance in
        the view): asked, then driven in the background with its progress on a screen
        of its own, which G shows again while it runs."""
        from locotui.data.gated import GatedRollout
        from locotui.ui.screens.gated import GatedScreen, describe_gated
        from locotui.ui.screens.prompt import AskScreen

        if self.gated is not None and not self.gated.finished:
            self.push_screen(GatedScreen(self.gated, self._listen_gated))
            return
        if self.read_only:
            self.notify_read_only("gated_restart")
            return
        targets = sorted(self.model.selection) or [e.name for e in self.model.view()]
        if not targets:
            self.notify("no instances to restart", severity="warning")
            return
        rollout = GatedRollout(
            targets,
            target_fps=self.settings.slo_target_fps,
            batch=self.settings.restart_batch,
            settle=self.settings.restart_settle,
            timeout=self.settings.restart_timeout,
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.gated = rollout
                self._drive_gated(rollout)
                self.push_screen(GatedScreen(rollout, self._listen_gated))

        self.push_screen(AskScreen(describe_gated(rollout) + "\n\nStart it?"), answered)

    def _listen_gated(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._gated_listeners.append(callback)
        return lambda: self._gated_listeners.remove(callback)

    @work(group="gated", exclusive=True)
    async def _drive_gated(self, rollout: Any) -> None:
        from locotui.data.gated import Observation, drive

        runner = ActionRunner(
            backend=self.backend,
            kube=self.kube,
            audit=self.audit,
            read_only=self.read_only,
            fleet=self.model,
            routes=self.routes,
            wait_ready=False,  # the gate, not Kubernetes readiness, says when it is back
        )

        async def restart(name: str) -> None:
            (result,) = await runner.run(ActionKind.RESTART_POD, [name])
            if result.phase is not Phase.OK:
                raise DataError(result.message)

        def observe() -> dict[str, Observation]:
            return {
                e.name: Observation(e.healthy, e.fps, e.started_at)
                for e in self.model.entries.values()
            }

        seen = self.model.version

        async def changed(seconds: float) -> None:
            nonlocal seen
            async with asyncio.timeout(seconds):
                seen = await self.model.wait_changed(seen)

        def on_change() -> None:
            for callback in list(self._gated_listeners):
                callback()

        await drive(
            rollout,
            restart=restart,
            observe=observe,
            # Real elapsed time: the settle and timeout are promises about the fleet, not
            # about what the screen shows (the display clock is frozen in tests).
            monotonic=time.monotonic,
            changed=changed,
            on_change=on_change,
        )
        result = {"done": "ok", "stopped": "failed"}.get(rollout.state.value, "partial")
        failed = result == "failed"
        await self.audit.append(
            AuditEntry(
                datetime.now(UTC),
                ActionKind.GATED_RESTART,
                tuple(rollout.items),
                result,  # type: ignore[arg-type]
                rollout.summary() if failed else None,
                (rollout.summary(),),
            )
        )
        self.notify(
            rollout.summary(),
            title="Gated rolling restart",
            severity="error" if failed else "information",
            timeout=10,
        )

    def action_forget(self) -> None:
        lost = [n for n in self.targets() if (e := self.model.get(n)) and e.summary.lost_since]
        if not lost:
            self.notify(
                "only a lost instance (its supervisor died) can be forgotten", severity="warning"
            )
            return
        self._confirm_action(ActionKind.FORGET, lost)

    def action_user_command(self) -> None:
        """Runs a user command (the config's ``[commands]``) for the focused instance:
        picked, confirmed with its exact argv, run without a shell, audited."""
        from locotui.ui.screens.usercmd import UserCommandScreen

        if self.read_only:
            self.notify_read_only("user_command")
            return
        name = self.focused_name()
        if name is None:
            self.notify("no instance under the cursor", severity="warning")
            return
        entry = self.model.get(name)
        namespace = self.header_info.namespace or (
            self.model.discovery.namespace if self.model.discovery else None
        )
        values = {"NAME": name, "NAMESPACE": namespace, "NODE": entry.node if entry else None}
        self.push_screen(
            UserCommandScreen(
                name, self.settings.commands, values, self.audit, read_only=self.read_only
            )
        )

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

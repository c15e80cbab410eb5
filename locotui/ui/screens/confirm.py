"""Confirm an action, then watch it run: per-target progress and result.

The text shown is :meth:`ActionRunner.describe` verbatim (what will happen, to which
instances, the expected downtime). After ``y`` the same dialog turns into a progress
list; the action runs in an app-level worker, so closing the dialog does not cancel it
(its result still arrives as a notification and in the audit log). A permission problem
(HTTP 403: RBAC or a wrong control token) is labelled as such, not as a generic failure.

:class:`PauseScreen` is the same dialog for pausing the automatic recovery, with two
fields: how long (typed, or ↑/↓ through 15, 60, 240 minutes and "until resumed") and
why; the question above them says when it will resume, as the minutes change. Resuming
is a plain :class:`ActionScreen` with its own job (``ActionRunner.resume_remediation``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from locotui.data.actions import ActionKind, ActionRunner, Phase, Progress, ProgressCallback
from locotui.data.errors import DataError, Forbidden, ReadOnly, Unauthorized
from locotui.data.remediation import (
    AUTO_RECOVERY,
    PAUSE_PRESETS,
    describe_pause,
    pause_request,
)

__all__ = ["ActionScreen", "PauseScreen", "progress_table"]

TITLES = {
    ActionKind.SOFT_RESET: "Soft reset",
    ActionKind.RESTART_POD: "Restart pod",
    ActionKind.ROLLING_RESTART: "Rolling restart",
    ActionKind.FORGET: "Forget",
    ActionKind.PAUSE_REMEDIATION: "Pause automatic recovery",
    ActionKind.RESUME_REMEDIATION: "Resume automatic recovery",
}
# The confirm button's word, where the title is too long for a button.
VERBS = {ActionKind.PAUSE_REMEDIATION: "Pause", ActionKind.RESUME_REMEDIATION: "Resume"}

Job = Callable[[ProgressCallback], Awaitable[list[Progress]]]
"""Runs the confirmed action, reporting progress; returns the final progress of each
target (``ActionRunner.run`` for the targets, by default)."""
_PHASE = {
    Phase.PENDING: ("○", "dim"),
    Phase.RUNNING: ("◌", "cyan"),
    Phase.OK: ("✔", "bold green"),
    Phase.FAILED: ("✖", "bold red"),
}


def _denied(p: Progress) -> bool:
    return isinstance(p.error, Forbidden | Unauthorized) or (
        p.error is not None and p.error.status == 403
    )


def progress_table(progress: dict[str, Progress]) -> Table:
    table = Table(box=None, expand=True, show_header=True, header_style="bold")
    table.add_column("", width=2, no_wrap=True)
    table.add_column("target", style="bold", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("what happened")
    for target, p in progress.items():
        symbol, style = _PHASE[p.phase]
        state = Text(p.phase.value, style=style)
        if p.phase is Phase.FAILED and _denied(p):
            state = Text("DENIED", style="bold white on red")
        table.add_row(Text(symbol, style=style), target, state, Text(p.message))
    return table


class ActionScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ActionScreen { align: center middle; }
    ActionScreen > Vertical {
        width: 90%; max-width: 120; height: auto; max-height: 90%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    ActionScreen #what { margin: 1 0; }
    ActionScreen #targets { height: auto; max-height: 16; }
    ActionScreen #summary { margin-top: 1; }
    ActionScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ActionScreen Button { margin-left: 2; }
    ActionScreen.-running > Vertical { border: thick $accent; }
    ActionScreen.-failed > Vertical { border: thick $error; }
    ActionScreen.-done > Vertical { border: thick $success; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Yes, do it"),
        Binding("n,escape", "cancel", "Cancel / close"),
        Binding("enter", "enter", "Confirm / close", show=False),
    ]

    cancel_label = "Cancel (n)"
    confirm_key = "y"
    """The keys the buttons name (a dialog with text fields answers to Esc and Enter)."""

    def __init__(
        self,
        kind: ActionKind,
        targets: list[str],
        description: str,
        runner: ActionRunner,
        *,
        job: Job | None = None,
    ) -> None:
        super().__init__()
        self.runner = runner
        self.kind = kind
        self.targets = targets
        self.description = description
        self.job = job
        self.state = "asking"  # asking | running | done
        self.progress: dict[str, Progress] = {}
        self.results: list[Progress] = []
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        policy = self.targets == [AUTO_RECOVERY]
        with Vertical() as box:
            box.border_title = TITLES[self.kind] + (
                "" if policy else f" — {len(self.targets)} target(s)"
            )
            yield Static(Text(self.description, style="bold"), id="what")
            yield from self.compose_fields()
            with VerticalScroll(id="targets"):
                yield Static("" if policy else self._target_list(), id="progress")
            yield Static("", id="summary")
            with Horizontal():
                yield Button(self.cancel_label, id="cancel", variant="default")
                verb = VERBS.get(self.kind, TITLES[self.kind])
                yield Button(f"{verb} ({self.confirm_key})", id="confirm", variant="error")

    def compose_fields(self) -> ComposeResult:
        """What shapes the action before it is confirmed (nothing, for most)."""
        return iter(())

    def _target_list(self) -> Text:
        return Text("targets: " + ", ".join(self.targets), style="")

    async def run_job(self) -> list[Progress]:
        """Carries out the confirmed action (see :data:`Job`)."""
        if self.job is not None:
            return await self.job(self._on_progress)
        return await self.runner.run(self.kind, self.targets, self._on_progress)

    # ------------------------------------------------------------------ keys
    def action_confirm(self) -> None:
        if self.state != "asking":
            return
        self.state = "running"
        self.add_class("-running")
        self.query_one("#confirm", Button).disabled = True
        self.query_one("#cancel", Button).label = "Close (Esc)"
        self.query_one("#summary", Static).update(
            Text("running… (closing this dialog does not stop it)", style="italic")
        )
        # An app-level worker: closing the dialog must not cancel the action.
        self.app.run_worker(self._run(), group="actions", exit_on_error=False)

    def action_cancel(self) -> None:
        if self.state == "asking":
            self.app.notify(f"{TITLES[self.kind]} cancelled", timeout=2)
        self.dismiss(None)

    def action_enter(self) -> None:
        if self.state == "asking":
            self.action_confirm()
        elif self.state == "done":
            self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self.action_confirm()
        else:
            self.action_cancel()

    # ------------------------------------------------------------------ running
    def _on_progress(self, p: Progress) -> None:
        self.progress[p.target] = p
        if self.is_mounted:
            self.query_one("#progress", Static).update(progress_table(self.progress))

    async def _run(self) -> None:
        title = TITLES[self.kind]
        try:
            self.results = await self.run_job()
        except ReadOnly as exc:
            self.error = str(exc)
        except DataError as exc:
            self.error = str(exc)
        except Exception as exc:  # never let an action take the console down
            self.error = f"{type(exc).__name__}: {exc}"
        failed = [p for p in self.results if p.phase is Phase.FAILED]
        denied = [p for p in failed if _denied(p)]
        ok = [p for p in self.results if p.phase is Phase.OK]
        self.state = "done"
        if self.error:
            summary = Text(f"✖ {self.error}", style="bold red")
        else:
            summary = Text(f"done: {len(ok)} ok, {len(failed)} failed", style="bold")
            if denied:
                summary.append(
                    f" — {len(denied)} denied by RBAC / the control token "
                    "(your credentials may not do this)",
                    style="bold red",
                )
        if self.is_mounted:
            self.remove_class("-running")
            self.add_class("-failed" if failed or self.error else "-done")
            self.query_one("#summary", Static).update(summary)
        severity = "error" if failed or self.error else "information"
        message = summary.plain
        if len(self.results) == 1 and not self.error:
            # One target: its own words say more than a count (what went wrong, or the
            # new state).
            only = self.results[0]
            message = (
                only.message if only.target == AUTO_RECOVERY else f"{only.target}: {only.message}"
            )
        if denied:
            message = f"permission denied: {denied[0].message}"
        self.app.notify(message, title=title, severity=severity, timeout=8)


class PauseScreen(ActionScreen):
    """See the module docstring. ``now`` is the app's clock (for "resumes at")."""

    DEFAULT_CSS = """
    PauseScreen #pause-fields { height: auto; }
    PauseScreen #pause-fields Label { width: 9; padding: 1 1 0 0; }
    PauseScreen #minutes { width: 18; }
    PauseScreen #reason { width: 1fr; }
    PauseScreen #pause-hint { color: $text-muted; }
    PauseScreen #pause-error { color: $error; height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "preset(-1)", "Shorter", show=False),
        Binding("down", "preset(1)", "Longer", show=False),
    ]

    cancel_label = "Cancel (Esc)"
    confirm_key = "Enter"

    def __init__(
        self, runner: ActionRunner, now: Callable[[], datetime], minutes: float | None = 60
    ) -> None:
        self.now = now
        self.minutes = minutes
        self.reason: str | None = None
        super().__init__(
            ActionKind.PAUSE_REMEDIATION,
            [AUTO_RECOVERY],
            describe_pause(pause_request(minutes), now()),
            runner,
        )

    def compose_fields(self) -> ComposeResult:
        with Horizontal(id="pause-fields"):
            yield Label("minutes")
            yield Input(
                "" if self.minutes is None else f"{self.minutes:g}",
                placeholder="until resumed",
                restrict=r"[0-9.]*",
                id="minutes",
            )
            yield Label("  reason")
            yield Input(placeholder="why (others see it; audited)", id="reason")
        yield Static(
            "↑ ↓ 15, 60, 240 minutes or until resumed (empty) · Tab: reason · "
            "Enter: pause · Esc: cancel",
            id="pause-hint",
        )
        yield Static("", id="pause-error")

    def on_mount(self) -> None:
        self.query_one("#minutes", Input).focus()

    def _read(self) -> bool:
        """Takes the fields in; False (and says why) when they do not make a pause."""
        minutes = self.query_one("#minutes", Input).value
        reason = self.query_one("#reason", Input).value
        error = self.query_one("#pause-error", Static)
        try:
            request = pause_request(minutes, reason)
        except ValueError as exc:
            error.update(str(exc))
            return False
        error.update("")
        self.minutes, self.reason = request.minutes, request.reason
        self.description = describe_pause(request, self.now())
        self.query_one("#what", Static).update(Text(self.description, style="bold"))
        return True

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.state == "asking":
            self._read()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def action_preset(self, step: int) -> None:
        if self.state != "asking":
            return
        presets = list(PAUSE_PRESETS)
        at = presets.index(self.minutes) if self.minutes in presets else presets.index(60)
        chosen = presets[(at + step) % len(presets)]
        field = self.query_one("#minutes", Input)
        field.value = "" if chosen is None else f"{chosen:g}"
        field.cursor_position = len(field.value)
        field.focus()

    def action_confirm(self) -> None:
        if self.state != "asking" or not self._read():
            return
        for field in self.query(Input):
            field.disabled = True
        super().action_confirm()

    async def run_job(self) -> list[Progress]:
        return await self.runner.pause_remediation(self.minutes, self.reason, self._on_progress)

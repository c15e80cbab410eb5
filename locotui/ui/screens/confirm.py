"""Confirm an action, then watch it run: per-target progress and result.

The text shown is :meth:`ActionRunner.describe` verbatim (what will happen, to which
instances, the expected downtime). After ``y`` the same dialog turns into a progress
list; the action runs in an app-level worker, so closing the dialog does not cancel it
(its result still arrives as a notification and in the audit log). A permission problem
(HTTP 403: RBAC or a wrong control token) is labelled as such, not as a generic failure.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from locotui.data.actions import ActionKind, ActionRunner, Phase, Progress
from locotui.data.errors import DataError, Forbidden, ReadOnly, Unauthorized

__all__ = ["ActionScreen", "progress_table"]

TITLES = {
    ActionKind.SOFT_RESET: "Soft reset",
    ActionKind.RESTART_POD: "Restart pod",
    ActionKind.ROLLING_RESTART: "Rolling restart",
    ActionKind.FORGET: "Forget",
}
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

    def __init__(
        self, kind: ActionKind, targets: list[str], description: str, runner: ActionRunner
    ) -> None:
        super().__init__()
        self.runner = runner
        self.kind = kind
        self.targets = targets
        self.description = description
        self.state = "asking"  # asking | running | done
        self.progress: dict[str, Progress] = {}
        self.results: list[Progress] = []
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"{TITLES[self.kind]} — {len(self.targets)} target(s)"
            yield Static(Text(self.description, style="bold"), id="what")
            with VerticalScroll(id="targets"):
                yield Static(self._target_list(), id="progress")
            yield Static("", id="summary")
            with Horizontal():
                yield Button("Cancel (n)", id="cancel", variant="default")
                yield Button(f"{TITLES[self.kind]} (y)", id="confirm", variant="error")

    def _target_list(self) -> Text:
        return Text("targets: " + ", ".join(self.targets), style="")

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
            self.results = await self.runner.run(self.kind, self.targets, self._on_progress)
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
        if denied:
            message = f"permission denied: {denied[0].message}"
        self.app.notify(message, title=title, severity=severity, timeout=8)

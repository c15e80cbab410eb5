"""``G``: the health-gated rolling restart — asked first, then its progress on screen.

Each instance in turn (or ``batch`` at a time) is restarted with the console's own
restart (a pod delete with the operator's credentials, or the backend for local
instances; each one audited), and the next starts only when it is back healthy and at
the target frame rate (:mod:`locotui.data.gated`). ``p`` pauses or resumes, ``a``
aborts, ``Esc`` hides the screen while the rollout goes on (``G`` shows it again). It
stops by itself at the first instance that does not come back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from locotui.data.gated import GatedRollout, InstanceStep, RolloutState

__all__ = ["GatedScreen", "describe_gated"]

_STEP_STYLE = {
    InstanceStep.WAITING: "dim",
    InstanceStep.RESTARTING: "bold yellow",
    InstanceStep.SETTLING: "cyan",
    InstanceStep.DONE: "green",
    InstanceStep.FAILED: "bold white on red",
}
_STATE_STYLE = {
    RolloutState.RUNNING: "bold green",
    RolloutState.PAUSED: "bold yellow",
    RolloutState.DONE: "bold green",
    RolloutState.STOPPED: "bold white on red",
    RolloutState.ABORTED: "bold magenta",
}


def describe_gated(rollout: GatedRollout) -> str:
    """The confirmation's words: what will happen, and when it stops by itself."""
    n = len(rollout.items)
    at_a_time = "one at a time" if rollout.batch == 1 else f"{rollout.batch} at a time"
    return (
        f"Restart {n} instance{'s' if n != 1 else ''} {at_a_time}: "
        f"{', '.join(list(rollout.items)[:6])}{' …' if n > 6 else ''}.\n"
        f"Each must come back (a new pod or QEMU), healthy and at ≥{rollout.target_fps:g} fps "
        f"for {rollout.settle:g} s before the next is restarted; the rollout stops by itself "
        f"at the first that is not back within {rollout.timeout:g} s."
    )


class GatedScreen(Screen[None]):
    DEFAULT_CSS = """
    GatedScreen #gated-status { height: auto; background: $panel; }
    GatedScreen DataTable { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Hide (it goes on)"),
        Binding("p", "pause", "Pause/resume"),
        Binding("a", "abort", "Abort"),
    ]

    def __init__(self, rollout: GatedRollout, on_change: Callable[[Callable[[], None]], Any]):
        super().__init__()
        self.rollout = rollout
        self._subscribe = on_change
        self._unsubscribe: Callable[[], None] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="gated-status")
        yield DataTable(id="gated-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.add_columns("instance", "step", "what")
        self.refresh_view()
        self._unsubscribe = self._subscribe(self.refresh_view)
        table.focus()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def refresh_view(self) -> None:
        if not self.is_mounted:
            return
        r = self.rollout
        status = Text(" gated rolling restart ", style="bold reverse")
        status.append(f" {r.state.value.upper()} ", style=_STATE_STYLE[r.state])
        status.append(f" {r.summary()}")
        if not r.finished:
            keys = "p resume" if r.state is RolloutState.PAUSED else "p pause"
            status.append(f"  ({keys} · a abort · Esc hide)", style="dim")
        self.query_one("#gated-status", Static).update(status)
        table: DataTable[Text | str] = self.query_one(DataTable)
        table.clear()
        for item in r.items.values():
            table.add_row(
                item.name,
                Text(item.step.value, style=_STEP_STYLE[item.step]),
                item.note,
                key=item.name,
            )

    def action_pause(self) -> None:
        r = self.rollout
        if r.state is RolloutState.PAUSED:
            r.resume()
        else:
            r.pause()
        self.refresh_view()

    def action_abort(self) -> None:
        self.rollout.abort()
        self.refresh_view()

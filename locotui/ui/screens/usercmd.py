"""``!``: run one of the config's ``[commands]`` for the focused instance.

Lists the commands with the exact argv each would run for this instance (or why it
cannot: a variable without a value); ``Enter`` picks one and asks once more with the
argv spelled out; ``y`` runs it (no shell), then its exit status and output are shown.
Every run, failure and read-only refusal goes to the audit log.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from locotui.data.usercommands import (
    CommandError,
    CommandResult,
    UserCommand,
    expand,
    run_audited,
)

__all__ = ["UserCommandScreen"]


class UserCommandScreen(ModalScreen[CommandResult | None]):
    DEFAULT_CSS = """
    UserCommandScreen { align: center middle; }
    UserCommandScreen > Vertical {
        width: 90%; max-width: 120; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    UserCommandScreen OptionList { height: auto; max-height: 12; }
    UserCommandScreen #cmd-question { height: auto; }
    UserCommandScreen #cmd-output-box { height: auto; max-height: 16; display: none; }
    UserCommandScreen #cmd-output-box.-shown { display: block; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
        Binding("y", "run", "Yes, run it", show=False),
        Binding("n", "close", "No", show=False),
    ]

    def __init__(
        self,
        target: str,
        commands: Mapping[str, UserCommand],
        values: Mapping[str, str | None],
        audit: Any,
        *,
        read_only: bool,
    ) -> None:
        super().__init__()
        self.target = target
        self.commands = dict(commands)
        self.values = dict(values)
        self.audit = audit
        self.read_only = read_only
        self.chosen: tuple[UserCommand, list[str]] | None = None
        self.result: CommandResult | None = None
        self.error: str | None = None
        self.running = False

    def _argv(self, command: UserCommand) -> list[str] | str:
        try:
            return expand(command, self.values)
        except CommandError as exc:
            return str(exc)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"run a command for {self.target}"
            options = []
            for name, command in self.commands.items():
                argv = self._argv(command)
                label = Text(name, style="bold")
                if command.description:
                    label.append(f"  {command.description}", style="dim")
                label.append("\n  ")
                if isinstance(argv, str):
                    label.append(argv, style="yellow")
                else:
                    label.append(shlex.join(argv), style="cyan")
                options.append(Option(label, id=name, disabled=isinstance(argv, str)))
            yield OptionList(*options, id="cmd-list")
            yield Static("", id="cmd-question")
            with VerticalScroll(id="cmd-output-box"):
                yield Static("", id="cmd-output")

    def on_mount(self) -> None:
        if not self.commands:
            self.query_one("#cmd-question", Static).update(
                Text(
                    "no commands: add a [commands] table to the config, e.g. "
                    'describe = ["kubectl", "-n", "$NAMESPACE", "describe", "pod", "$NAME"]',
                    style="yellow",
                )
            )
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        command = self.commands[str(event.option.id)]
        argv = self._argv(command)
        if isinstance(argv, str):
            return
        self.chosen = (command, argv)
        question = Text("Run ", style="bold")
        question.append(shlex.join(argv), style="bold cyan")
        question.append(" ?\n", style="bold")
        question.append(
            "(these arguments exactly, without a shell; quoted here only to show where each "
            "ends; recorded in the audit log)  [y] run  [n] no",
            style="dim",
        )
        self.query_one("#cmd-question", Static).update(question)
        self.focus()

    def action_run(self) -> None:
        if self.chosen is None or self.running:
            return
        self.running = True
        command, argv = self.chosen
        self.query_one("#cmd-question", Static).update(
            Text(f"running {shlex.join(argv)} …", style="italic")
        )
        self._run(command, argv)

    @work(group="user-command")
    async def _run(self, command: UserCommand, argv: list[str]) -> None:
        question = self.query_one("#cmd-question", Static)
        try:
            result = await run_audited(
                command, argv, self.target, self.audit, read_only=self.read_only
            )
        except CommandError as exc:
            self.error = str(exc)
            question.update(Text(f"not run: {exc}", style="bold red"))
            self.running = False
            return
        self.result = result
        self.running = False
        style = "bold green" if result.ok else "bold red"
        head = Text(f"{command.name}: {result.summary()}", style=style)
        if result.truncated:
            head.append("  (output cut to its last 64 kB)", style="dim")
        question.update(head)
        self.query_one("#cmd-output", Static).update(Text(result.output or "(no output)"))
        self.query_one("#cmd-output-box").add_class("-shown")

    def action_close(self) -> None:
        self.dismiss(self.result)

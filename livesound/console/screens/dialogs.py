"""Small modal screens: yes/no confirmation, a choice, text prompt, key help."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static


class Confirm(ModalScreen[bool]):
    """Ask a yes/no question; y/enter says yes, n/escape says no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question, self.yes, self.no = question, yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button(f"{self.no} (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        # The safe answer has the focus: a stray Enter changes nothing.
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Choose(ModalScreen[str | None]):
    """Pick one of a few named options (↑↓ and enter, or its number); escape
    cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, options: list[tuple[str, str]],
                 current: str = "") -> None:  # fmt: skip
        super().__init__()
        self.question, self.options, self.current = question, options, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield OptionList(
                *(f"{k + 1}  {name:<8} {what}{'  (now)' if name == self.current else ''}"
                  for k, (name, what) in enumerate(self.options)),
                id="choices",
            )  # fmt: skip

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        names = [name for name, _ in self.options]
        choices.highlighted = names.index(self.current) if self.current in names else 0
        choices.focus()

    def on_key(self, event) -> None:
        if event.character and event.character.isdigit():
            k = int(event.character) - 1
            if 0 <= k < len(self.options):
                event.stop()
                self.dismiss(self.options[k][0])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.options[event.option_index][0])

    def action_cancel(self) -> None:
        self.dismiss(None)


class Prompt(ModalScreen[str | None]):
    """Ask for one line of text (a scene name); escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Input(self.value, id="answer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Help(ModalScreen[None]):
    """Every key binding, screen by screen, and a legend of what is on screen."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]],
                 legend: list[tuple[str, str]] = ()) -> None:  # fmt: skip
        super().__init__()
        self.sections, self.legend = sections, legend

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, show_header=False, padding=(0, 1))
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("does")
        for title, bindings in self.sections:
            table.add_row(f"[b reverse] {title} [/]", "")
            for b in bindings:
                keys = b.key_display or " ".join(_key_name(k) for k in b.key.split(","))
                table.add_row(keys, b.description)
        if self.legend:
            table.add_row("[b reverse] On screen [/]", "")
            for mark, meaning in self.legend:
                table.add_row(mark, meaning)
        with Vertical(classes="dialog help"):
            yield Label("[b]livesound console — keys[/b]   (escape closes)")
            with VerticalScroll():
                yield Static(table, id="keys")

    def action_close(self) -> None:
        self.dismiss(None)


_KEY_NAMES = {
    "question_mark": "?", "exclamation_mark": "!", "comma": ",", "full_stop": ".",
    "left_square_bracket": "[", "right_square_bracket": "]", "space": "space",
    "greater_than_sign": ">", "less_than_sign": "<", "minus": "-",
}  # fmt: skip


def _key_name(key: str) -> str:
    return _KEY_NAMES.get(key.strip(), key.strip())

"""Scenes: the engine's scene list, recall, save, and GO (next/previous cue)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from livesound.console.screens.dialogs import Confirm, Prompt
from livesound.console.state import ConsoleState
from livesound.console.widgets.rows import Row, RowList
from livesound.console.widgets.statusbar import StatusBar


class ScenesScreen(Screen):
    """Scenes stored with the engine; GO steps through the cue list."""

    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous scene in the list"),
        Binding("down,j", "move(1)", "Next scene in the list"),
        Binding("enter", "recall", "Recall the selected scene (asks first)"),
        Binding("s", "save", "Save the live show as a scene"),
        Binding("g,space", "go(1)", "GO: next cue"),
        Binding("G,backspace", "go(-1)", "Back: previous cue"),
        Binding("r", "refresh", "Reread the scene list"),
        Binding("escape", "back", "Back to the mixer"),
    ]

    def __init__(self, state: ConsoleState) -> None:
        super().__init__()
        self.state = state
        self._version = -1

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield RowList(self._rows, id="scenes")
        yield StatusBar(self.state)

    ready = False  # set once mounted: the app draws frames from then on

    def on_mount(self) -> None:
        self.ready = True
        self.query_one(RowList).focus()
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def _rows(self) -> list[Row]:
        st = self.state
        if not st.scenes:
            return [
                [(" no scenes in the engine's scene folder (s saves one)", "#808090")]
            ]
        rows = []
        for name in st.scenes:
            mark = (
                "▶"
                if name == st.scene_current
                else ("›" if name == st.scene_next else " ")
            )
            tag = ("current" if name == st.scene_current else
                   "next (GO)" if name == st.scene_next else "")  # fmt: skip
            rows.append([(f" {mark} ", "#e0c020"), (f"{name:<32}", "#ffffff"),
                         (tag, "#60d0ff")])  # fmt: skip
        return rows

    def frame(self) -> None:
        st = self.state
        if st.version == self._version:
            return
        self._version = st.version
        self.query_one("#title", Static).update(
            f"[b reverse] SCENES [/] current [b]{st.scene_current or '—'}[/b]  next "
            f"[b]{st.scene_next or '—'}[/b]   [dim]enter recall  s save  "
            "g/space GO  G/backspace back  esc mixer[/dim]"
        )  # fmt: skip
        self.query_one(RowList).redraw()
        self.query_one(StatusBar).refresh()

    def _selected(self) -> str | None:
        k = self.query_one(RowList).cursor
        return self.state.scenes[k] if 0 <= k < len(self.state.scenes) else None

    def action_move(self, step: int) -> None:
        self.query_one(RowList).move(step)

    def action_refresh(self) -> None:
        self.app.link.send("/ls/scene/list")
        self.app.link.send("/ls/scene/current")

    def action_recall(self) -> None:
        name = self._selected()
        if name is None:
            return

        def answer(yes: bool | None) -> None:
            if yes and self.app.link.command("/ls/scene/recall", name):
                self.state.notice(f"recalling {name}")

        self.app.push_screen(Confirm(f"Recall scene {name}?", "Recall"), answer)

    def action_save(self) -> None:
        def save(name: str | None) -> None:
            if name:
                self.app.link.command("/ls/scene/save", name)
                self.app.link.send("/ls/scene/list")

        self.app.push_screen(Prompt("Save the live show as scene:",
                                    self.state.scene_current or ""), save)  # fmt: skip

    def action_go(self, step: int) -> None:
        # GO is the show's rhythm: no confirmation, as on a desk's GO key.
        self.app.link.command("/ls/scene/go" if step > 0 else "/ls/scene/back")
        self.app.link.send("/ls/scene/current")

    def action_back(self) -> None:
        self.app.switch_mode("mixer")

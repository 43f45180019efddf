"""Scenes: the engine's scene list, recall, save, safes, and GO (next/previous cue).

Nothing here overwrites or discards work silently: saving over an existing
scene asks, and recalling over unsaved changes says how many will be lost.
"""

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
        Binding("s", "save", "Save the live show as a scene (asks before overwriting)"),
        Binding("f", "safe", "Make a strip or group recall-safe, or free it again"),
        Binding("t", "note", "Write the selected scene's note"),
        Binding("g,space", "go(1)", "GO: next cue"),
        Binding("G,backspace", "go(-1)", "Back: previous cue"),
        Binding("r", "refresh", "Reread the scene list"),
        Binding("escape", "back", "Back to the mixer"),
    ]

    def __init__(self, state: ConsoleState) -> None:
        super().__init__()
        self.state = state
        self._shown: tuple = ()

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield RowList(self._rows, id="scenes")
        yield Static(id="note")
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
        selected = self._selected()
        if (st.version, selected) == self._shown:
            return
        self._shown = (st.version, selected)
        note = st.scene_notes.get(selected) if selected else None
        if selected and note is None:
            self.app.link.send("/ls/scene/note", selected)
        self.query_one("#note", Static).update(
            f"[b]{selected}[/b]: {note}" if note else
            f"[dim]{selected}: no note (t writes one)[/dim]" if selected else "")  # fmt: skip
        self.query_one("#title", Static).update(
            f"[b reverse] SCENES [/] current [b]{st.scene_current or '—'}[/b]  next "
            f"[b]{st.scene_next or '—'}[/b]   safe [b]{', '.join(st.safes) or '—'}"
            "[/b]   [dim]enter recall  s save  f safe  t note  g/space GO  G/backspace back"
            "  esc mixer[/dim]"
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
        self.app.link.send("/ls/scene/safes")

    def action_recall(self) -> None:
        name = self._selected()
        if name is None:
            return

        def answer(yes: bool | None) -> None:
            if yes and self.app.link.command("/ls/scene/recall", name):
                self.state.notice(f"recalling {name}")

        question = f"Recall scene {name}?"
        if self.state.unsaved:
            question += (f" {self.state.unsaved} unsaved change"
                         f"{'s' if self.state.unsaved != 1 else ''} to the live show "
                         "will be lost.")  # fmt: skip
        self.app.push_screen(Confirm(question, "Recall"), answer)

    def action_save(self) -> None:
        def store(name: str) -> None:
            if self.app.link.command("/ls/scene/save", name):
                self.app.link.send("/ls/scene/list")

        def save(name: str | None) -> None:
            name = (name or "").strip()
            if not name:
                return
            if name not in self.state.scenes:
                store(name)
                return
            self.app.push_screen(
                Confirm(f"Scene {name} exists: overwrite it with the live show?",
                        "Overwrite"),
                lambda yes: store(name) if yes else None,
            )  # fmt: skip

        self.app.push_screen(Prompt("Save the live show as scene (a new name):"), save)

    def action_safe(self) -> None:
        def toggle(item: str | None) -> None:
            item = (item or "").strip()
            if item:
                safe = 0 if item in self.state.safes else 1
                self.app.link.command("/ls/scene/safe", item, safe)

        self.app.push_screen(
            Prompt("Recall-safe (toggle) — a strip (ch.07, bus.03, main) or a "
                   "group (eq, dyn, …):"), toggle)  # fmt: skip

    def action_note(self) -> None:
        name = self._selected()
        if name is None:
            return

        def write(text: str | None) -> None:
            if text is not None and self.app.link.command("/ls/scene/note/set", name,
                                                          text.strip()):  # fmt: skip
                self.state.scene_notes.pop(name, None)  # read back the stored one

        self.app.push_screen(Prompt(f"Note for scene {name}:",
                                    self.state.scene_notes.get(name, "")), write)  # fmt: skip

    def action_go(self, step: int) -> None:
        # GO is the show's rhythm: no confirmation, as on a desk's GO key.
        self.app.link.command("/ls/scene/go" if step > 0 else "/ls/scene/back")
        self.app.link.send("/ls/scene/current")

    def action_back(self) -> None:
        self.app.switch_mode("mixer")

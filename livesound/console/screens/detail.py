"""Channel detail: every parameter of one input strip, with its EQ curve."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from livesound.audio import design
from livesound.console.screens.dialogs import Prompt
from livesound.console.state import ConsoleState
from livesound.console.widgets.plot import FreqPlot, log_freqs
from livesound.console.widgets.rows import Row, RowList
from livesound.console.widgets.statusbar import StatusBar
from livesound.control import derive
from livesound.control.groups import solo_address
from livesound.control.registry import Param, ch_prefix


def strip_rows(c: int) -> list[tuple[str, str]]:
    """(label, address) of every parameter of input ``c`` (0-based), in
    signal-flow order."""
    p = ch_prefix(c)
    rows = [("Name", f"{p}/config/name"), ("Trim", f"{p}/preamp/trim"),
            ("Polarity invert", f"{p}/preamp/invert"), ("Delay", f"{p}/delay/on"),
            ("Delay time", f"{p}/delay/time"), ("High-pass", f"{p}/preamp/hpon"),
            ("High-pass freq", f"{p}/preamp/hpf"),
            ("High-pass slope dB/oct", f"{p}/preamp/hpslope"),
            ("Gate", f"{p}/gate/on"), ("Gate threshold", f"{p}/gate/thr"),
            ("Gate range", f"{p}/gate/range"), ("Gate attack", f"{p}/gate/attack"),
            ("Gate hold", f"{p}/gate/hold"), ("Gate release", f"{p}/gate/release"),
            ("Compressor", f"{p}/dyn/on"), ("Comp threshold", f"{p}/dyn/thr"),
            ("Comp ratio", f"{p}/dyn/ratio"), ("Comp knee", f"{p}/dyn/knee"),
            ("Comp attack", f"{p}/dyn/attack"), ("Comp release", f"{p}/dyn/release"),
            ("Comp makeup", f"{p}/dyn/mgain"), ("EQ", f"{p}/eq/on")]  # fmt: skip
    for k in range(1, 5):
        b = f"{p}/eq/{k}"
        rows += [(f"EQ {k} type", f"{b}/type"), (f"EQ {k} freq", f"{b}/f"),
                 (f"EQ {k} gain", f"{b}/g"), (f"EQ {k} Q", f"{b}/q")]  # fmt: skip
    rows += [("On (unmuted)", f"{p}/mix/on"), ("Fader", f"{p}/mix/fader"),
             ("Pan", f"{p}/mix/pan"), ("To main L/R", f"{p}/mix/st"),
             ("Solo", solo_address(c))]  # fmt: skip
    return rows


def step_value(p: Param, value: Any, direction: int, coarse: bool = False) -> Any:
    """The next value of ``p`` one step up (+1) or down (-1) from ``value``."""
    if p.kind == "int":
        return int(min(p.hi, max(p.lo, int(value) + direction)))
    if p.kind == "enum":
        return (int(value) + direction) % len(p.choices)
    lo, hi = sorted((p.lo, p.hi))
    if p.taper == "fader":
        if value == -math.inf or value <= -90.0:
            return -60.0 if direction > 0 else -math.inf
        new = round(value + direction * (6.0 if coarse else 1.0), 1)
        return -math.inf if new <= -90.0 else min(hi, new)
    if p.taper == "log":
        factor = 2 ** ((1 / 3 if coarse else 1 / 12) * direction)
        if p.hi < p.lo:  # Q runs high to low on the X32's scale
            factor = 1 / factor
        if p.unit == "":
            factor = factor ** (1 / 1)
        new = value * (factor if p.unit else (1.25 if coarse else 1.06) ** direction)
    else:
        unit_step = {"dB": 0.5, "ms": 1.0}.get(p.unit, (hi - lo) / 100)
        new = round(value + direction * unit_step * (6 if coarse else 1), 2)
    return min(hi, max(lo, new))


class DetailScreen(Screen):
    """Every parameter of input ``channel``: up/down pick, left/right change."""

    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous parameter"),
        Binding("down,j", "move(1)", "Next parameter"),
        Binding("right,l", "change(1)", "Increase / next choice"),
        Binding("left,h", "change(-1)", "Decrease / previous choice"),
        Binding("shift+right,L", "change(1, True)", "Increase (coarse)"),
        Binding("shift+left,H", "change(-1, True)", "Decrease (coarse)"),
        Binding("enter,space", "toggle", "Toggle switch / edit name"),
        Binding("pageup,left_square_bracket", "channel(-1)", "Previous channel"),
        Binding("pagedown,right_square_bracket", "channel(1)", "Next channel"),
        Binding("escape", "back", "Back to the mixer"),
    ]

    def __init__(self, state: ConsoleState, channel: int) -> None:
        super().__init__()
        self.state = state
        self.channel = channel
        self._version = -1

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield FreqPlot(-18.0, 18.0, id="eq")
        yield RowList(self._rows, id="params")
        yield StatusBar(self.state)

    ready = False  # set once mounted: the app draws frames from then on

    def on_mount(self) -> None:
        self.ready = True
        self.query_one(RowList).focus()
        self.frame()

    @property
    def entries(self) -> list[tuple[str, str]]:
        return strip_rows(self.channel)

    def _rows(self) -> list[Row]:
        st = self.state
        out = []
        for label, address in self.entries:
            p = st.param(address)
            unit = p.unit if p is not None else ""
            colour = "#80ff80" if p is not None and p.kind == "int" and st.values.get(
                address) else ""  # fmt: skip
            out.append([(f" {label:<24}", "#a0a0b0"),
                        (f"{st.text(address):>10} ", colour or "#ffffff"),
                        (f"{unit:<4}", "#808090")])  # fmt: skip
        return out

    def frame(self) -> None:
        st = self.state
        if st.version == self._version:
            return
        self._version = st.version
        p = f"/ch/{self.channel + 1:02d}"
        name = st.values.get(f"{p}/config/name", "")
        self.query_one("#title", Static).update(
            f"[b reverse] CHANNEL {self.channel + 1:02d} [/] [b]{name}[/b]   "
            "[dim]↑↓ parameter  ←→ change (shift: coarse)  enter toggle  "
            "[ ] channel  esc back[/dim]"
        )  # fmt: skip
        self.query_one(RowList).redraw()
        plot = self.query_one(FreqPlot)
        plot.show(self.eq_curve(plot.points), title="HPF + EQ")
        self.query_one(StatusBar).refresh()

    def eq_curve(self, points: int) -> np.ndarray:
        """The strip's high-pass and EQ response in dB at ``log_freqs(points)``."""
        st = self.state
        sr = float(st.status.sample_rate or 48000)
        p = f"/ch/{self.channel + 1:02d}"
        coeffs = np.vstack([derive.hpf_coeffs(st.values, self.channel, sr),
                            derive.eq_coeffs(st.values, p, 4, sr)])  # fmt: skip
        return design.response_db(coeffs, log_freqs(points), sr)

    # -- actions -----------------------------------------------------------------

    def _selected(self) -> tuple[str, Param | None]:
        rows = self.query_one(RowList)
        _, address = self.entries[rows.cursor]
        return address, self.state.param(address)

    def action_move(self, step: int) -> None:
        self.query_one(RowList).move(step)

    def action_change(self, direction: int, coarse: bool = False) -> None:
        address, p = self._selected()
        if p is None or p.kind == "str":
            return
        value = self.state.values.get(address, p.default)
        self.app.link.set(address, step_value(p, value, direction, coarse))
        self.frame()

    def action_toggle(self) -> None:
        address, p = self._selected()
        if p is None:
            return
        if p.kind == "str":

            def rename(name: str | None) -> None:
                if name:
                    self.app.link.set(address, name)

            self.app.push_screen(Prompt("Name", str(self.state.values.get(address, ""))),
                                 rename)  # fmt: skip
        elif p.kind == "int" and p.hi == 1:
            self.app.link.set(address, 0 if self.state.values.get(address) else 1)
        elif p.kind == "enum":
            self.action_change(1)
        self.frame()

    def action_channel(self, step: int) -> None:
        self.channel = (self.channel + step) % self.state.n_in
        self._version = -1
        self.frame()

    def action_back(self) -> None:
        self.dismiss()

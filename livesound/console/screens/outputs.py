"""Outputs: the main, the mono bus, every bus and matrix, their limiters
and feedback notches.

The left list is the outputs (fader, mute, peak level or CLIP, limiter
gain reduction, the suppressor's mode and notch count); the right side is the selected
output's notch bank as a table and as a picture: the bank's response
drawn over the output's spectrum, so a notch sitting on a peak reads at a
glance.
"""

from __future__ import annotations

import time

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from livesound.audio import design
from livesound.audio.layout import matrix_outputs, mono_output, output_names
from livesound.console.screens.detail import step_value
from livesound.console.screens.dialogs import Choose, Confirm
from livesound.console.state import ConsoleState
from livesound.console.widgets.plot import FreqPlot, log_freqs
from livesound.console.widgets.rows import Row, RowList
from livesound.console.widgets.statusbar import StatusBar
from livesound.control import derive
from livesound.control.registry import FBS_MODES, out_prefixes
from livesound.feedback.margin import SAFE_MARGIN_DB

MODE_MENU = [
    ("off", "no new notches (the fixed ones stay)"),
    ("speech", "trusts a growing tone sooner; cuts -9 dB, 1/5 octave"),
    ("music", "spares held notes; cuts -6 dB, 1/10 octave, up to 1/6"),
    ("ringout", "sound check: every ringing tone gets a fixed notch"),
    ("afc", "cancels the feedback of its --afc paths; music's notches behind"),
]


def afc_text(paths: list[dict], output: str) -> str:
    """What the feedback cancellers into ``output`` (its engine name, as
    /ls/stats gives it) are doing, for the outputs view's title; "" if none."""
    parts = []
    for p in paths:
        if str(p.get("output")) != output:
            continue
        mic = f"mic {p.get('mic', '?')}"
        if not p.get("on"):
            parts.append(f"{mic} idle (mode not afc)")
        elif p.get("learning"):
            parts.append(f"{mic} learning ERLE {float(p.get('erle_db', 0.0)):.1f} dB")
        elif p.get("frozen"):
            parts.append(f"{mic} frozen (muted)")
        else:
            learnt = " learnt" if p.get("learnt") else ""
            parts.append(f"{mic}{learnt} ERLE {float(p.get('erle_db', 0.0)):.1f} dB")
        if p.get("diverged"):
            parts[-1] += f", restarted {p['diverged']}x"
    return "  cancelling " + ", ".join(parts) if parts else ""


def gr_bar(gr_db: float, width: int = 8) -> str:
    """Gain reduction as a bar growing with the reduction (0..-12 dB)."""
    n = int(round(min(12.0, max(0.0, -gr_db)) / 12.0 * width))
    return "█" * n + "·" * (width - n)


def level_bar(db: float, width: int = 6) -> str:
    """An output's peak level as a bar over -60..0 dBFS."""
    n = int(round(min(60.0, max(0.0, db + 60.0)) / 60.0 * width))
    return "▮" * n + "·" * (width - n)


def margin_text(margin_db: float | None) -> tuple[str, str]:
    """The suppressor's margin estimate of an output's loop, six characters
    wide, and its colour: red under the safe margin, dim with no estimate
    (suppressor off, or not enough sound yet)."""
    if margin_db is None:
        return "   —  ", "#606070"
    if margin_db >= 99.0:  # no colouration to speak of
        return "  ok  ", "#60c060"
    colour = ("#ff4040" if margin_db < SAFE_MARGIN_DB
              else "#e0c020" if margin_db < 2 * SAFE_MARGIN_DB else "#60c060")  # fmt: skip
    text = f"{margin_db:+4.1f}dB" if abs(margin_db) < 10 else f"{margin_db:+3.0f}dB"
    return f"{text:>6}", colour


class OutputsScreen(Screen):
    """Buses and main: limiter GR, suppressor mode, notches (pin/delete/clear)."""

    BINDINGS = [
        Binding("up,k", "move(-1)", "Previous output / notch"),
        Binding("down,j", "move(1)", "Next output / notch"),
        Binding("tab", "switch_list", "Outputs list / notch list"),
        Binding("m", "mode", "Suppressor mode: pick off, speech, music or ring-out"),
        Binding("c", "clear", "Clear the live notches"),
        Binding("a", "learn", "AFC: learn the wedge (3 s of noise; stage quiet)"),
        Binding("p", "pin", "Pin the notch (make it fixed)"),
        Binding("d,delete", "delete", "Delete the notch"),
        Binding("u", "mute", "Mute / unmute the output"),
        Binding("plus,equals_sign", "fader(1)", "Output fader +1 dB"),
        Binding("minus", "fader(-1)", "Output fader -1 dB"),
        Binding("escape", "back", "Back to the mixer"),
    ]

    def __init__(self, state: ConsoleState) -> None:
        super().__init__()
        self.state = state
        self._version = -1
        self._meter_stamp = -1.0
        self._chosen: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with Horizontal():
            yield RowList(self._output_rows, id="outputs")
            with Vertical(id="notchside"):
                yield FreqPlot(-30.0, 6.0, id="notchplot")
                yield RowList(self._notch_rows, id="notches")
        yield StatusBar(self.state)

    @property
    def outputs(self) -> RowList:
        return self.query_one("#outputs", RowList)

    @property
    def notch_list(self) -> RowList:
        return self.query_one("#notches", RowList)

    @property
    def output(self) -> int:
        """Engine index of the selected output (see ``_order``)."""
        return self._order()[self.outputs.cursor]

    def choose(self, output: int) -> None:
        """Select engine output ``output`` (``n_bus`` is the main)."""
        self._chosen = output
        if not self.ready:
            return  # on_mount picks it up
        self.outputs.cursor = self._order().index(output)
        self._version = -1
        self.frame()

    ready = False  # set once mounted: the app draws frames from then on

    def on_mount(self) -> None:
        self.ready = True
        self.outputs.focus()
        if self._chosen is not None:
            self.choose(self._chosen)
        self.frame()

    def on_screen_resume(self) -> None:
        self._version = -1
        if self.ready:
            self.app.link.spectrum_of = self.output

    def on_screen_suspend(self) -> None:
        self.app.link.spectrum_of = None

    # -- drawing -----------------------------------------------------------------

    def _order(self) -> list[int]:
        """The list's outputs as engine indices: the main (one row for the
        pair), the mono bus, the buses, the matrices; not the cue."""
        n = self.state.n_bus
        return [n, mono_output(n), *range(n), *matrix_outputs(n)]

    def _output_name(self, o: int) -> str:
        """Output ``o``'s name as the list shows it."""
        if o == self.state.n_bus:
            return "Main L/R"
        x32, _ = out_prefixes(o, self.state.n_bus)
        return self.state.values.get(f"{x32}/config/name") or x32

    def _output_rows(self) -> list[Row]:
        st = self.state
        now = time.monotonic()
        rows = []
        for o in self._order():
            x32, extra = out_prefixes(o, st.n_bus)
            name = self._output_name(o)
            meters = st.outputs
            both = [o, o + 1] if o == st.n_bus else [o]
            gr = min(meters.gr[k] for k in both)
            peak = max(meters.shown[k] for k in both)
            clip = any(meters.clipping(k, now) for k in both)
            muted = not st.values.get(f"{x32}/mix/on", 1)
            notches = st.notches(o)
            fixed = sum(n["fixed"] for n in notches)
            lim = st.values.get(f"{extra}/limiter/on", 1)
            rows.append([
                (f" {name[:12]:<12} ", "#ffffff"),
                (f"{st.text(f'{x32}/mix/fader'):>6} ", "#d0d0d0"),
                ("MUTE " if muted else " on  ", "#ff4040" if muted else "#60c060"),
                # The bar shows the peak; red with CLIP for 3 s after a clip.
                ("CLIP   " if clip else f"{level_bar(peak)} ", "#ff4040" if clip
                 else "#e0c020" if peak > -6 else "#3fbf3f"),
                (f"lim {gr_bar(gr) if lim else ' off    '} {gr:5.1f} ",
                 "#ff6060" if gr < -3 else "#c0c0c0"),
                (f"{st.fbs_mode(o):<7}", "#60d0ff"),
                (f"{len(notches):>2}n {fixed}f ", "#e0c020" if notches else "#606070"),
                margin_text(st.status.margins_db.get(extra)),
            ])  # fmt: skip
        return rows

    def _notch_rows(self) -> list[Row]:
        notches = self.state.notches(self.output)
        if not notches:
            return [[(" no notches on this output", "#808090")]]
        rows = []
        for n in notches:
            width = n["width_oct"]
            rows.append([
                (f" #{n['slot']:02d} ", "#808090"),
                (f"{n['freq_hz']:8.1f} Hz ", "#ffffff"),
                (f"{n['depth_db']:6.1f} dB ", "#ff8080"),
                (f"1/{1 / width:.0f} oct " if width < 1 else f"{width:.2f} oct ", "#c0c0c0"),
                ("FIXED" if n["fixed"] else "live", "#e0c020" if n["fixed"] else "#60c060"),
            ])  # fmt: skip
        return rows

    def notch_curve(self, points: int) -> np.ndarray:
        """The selected output's notch bank response, dB at ``log_freqs(points)``."""
        st = self.state
        sr = float(st.status.sample_rate or 48000)
        _, extra = out_prefixes(self.output, st.n_bus)
        coeffs = derive.notch_coeffs(st.values, extra, st.registry.n_notch, sr)
        return design.response_db(coeffs, log_freqs(points), sr)

    def frame(self) -> None:
        st = self.state
        self.app.link.spectrum_of = self.output
        # Limiter GR moves with the meters: the list redraws with each reading.
        if st.meter_stamp != self._meter_stamp or st.version != self._version:
            self._meter_stamp = st.meter_stamp
            self.outputs.redraw()
        if st.version == self._version:
            return
        self._version = st.version
        o = self.output
        _, extra = out_prefixes(o, st.n_bus)
        name = self._output_name(o)
        margin, colour = margin_text(st.status.margins_db.get(extra))
        cancel = afc_text(st.status.afc, output_names(st.n_bus)[o])
        self.query_one("#title", Static).update(
            f"[b reverse] OUTPUTS [/] [b]{name}[/b]  suppressor {st.fbs_mode(o)}  "
            f"loop margin [{colour}]{margin.strip()}[/]{cancel}   "
            "[dim]tab: notches  m mode  c clear live  p pin  d delete  esc mixer[/dim]"
        )  # fmt: skip
        self.notch_list.redraw()
        plot = self.query_one(FreqPlot)
        spectrum = st.spectra.get(o)
        title = "notch bank" + (" over spectrum" if spectrum is not None else "")
        plot.bars_lo, plot.bars_hi = -100.0, 0.0
        plot.show(self.notch_curve(plot.points), spectrum, title)
        self.query_one(StatusBar).refresh()

    # -- actions -----------------------------------------------------------------

    def action_move(self, step: int) -> None:
        focused = self.focused if isinstance(self.focused, RowList) else self.outputs
        focused.move(step)
        if focused is self.outputs:
            self.notch_list.cursor = 0
        self._version = -1
        self.frame()

    def action_switch_list(self) -> None:
        (self.notch_list if self.focused is self.outputs else self.outputs).focus()
        self.notch_list.redraw()

    def _selected_notch(self) -> str | None:
        notches = self.state.notches(self.output)
        k = self.notch_list.cursor
        if not 0 <= k < len(notches):
            return None
        _, extra = out_prefixes(self.output, self.state.n_bus)
        return f"{extra}/notch/{notches[k]['slot']:02d}"

    def action_mode(self) -> None:
        _, extra = out_prefixes(self.output, self.state.n_bus)
        address = f"{extra}/fbs/mode"
        now = self.state.fbs_mode(self.output)
        name = self._output_name(self.output)

        def chosen(mode: str | None) -> None:
            if mode is None or mode == now:
                return
            if mode == "ringout":
                self.app.push_screen(
                    Confirm(f"Ring out {name}? Ring-out pins a fixed notch on every "
                            "tone that rings: only with the band silent.", "Ring out"),
                    lambda yes: set_mode(mode) if yes else None,
                )  # fmt: skip
            else:
                set_mode(mode)

        def set_mode(mode: str) -> None:
            if not self.app.link.set(address, FBS_MODES.index(mode)):
                return
            if now == "ringout":
                fixed = sum(n["fixed"] for n in self.state.notches(self.output))
                self.state.notice(f"ring-out of {name} ended: {fixed} fixed notches "
                                  f"in its bank; suppressor now {mode}")  # fmt: skip
            self.frame()

        self.app.push_screen(Choose(f"Feedback suppressor of {name}:", MODE_MENU, now),
                             chosen)  # fmt: skip

    def action_clear(self) -> None:
        _, extra = out_prefixes(self.output, self.state.n_bus)
        if self.app.link.command(f"{extra}/fbs/clear"):
            self.state.notice("asked the suppressor to clear the live notches")

    def action_learn(self) -> None:
        _, extra = out_prefixes(self.output, self.state.n_bus)
        if self.app.link.command(f"{extra}/afc/learn"):
            self.state.notice("the output plays noise for 3 s: its cancellers learn")

    def action_pin(self) -> None:
        notch = self._selected_notch()
        if notch is not None:
            self.app.link.set(f"{notch}/fixed", 1)
            self.frame()

    def action_delete(self) -> None:
        notch = self._selected_notch()
        if notch is not None:
            self.app.link.set(f"{notch}/on", 0)
            self.frame()

    def action_mute(self) -> None:
        x32, _ = out_prefixes(self.output, self.state.n_bus)
        on = self.state.values.get(f"{x32}/mix/on", 1)
        self.app.link.set(f"{x32}/mix/on", 0 if on else 1)
        self.frame()

    def action_fader(self, step: float) -> None:
        x32, _ = out_prefixes(self.output, self.state.n_bus)
        address = f"{x32}/mix/fader"
        p = self.state.param(address)
        self.app.link.set(address, step_value(p, self.state.values[address], step))
        self.frame()

    def action_back(self) -> None:
        self.app.switch_mode("mixer")

    def on_row_list_picked(self, event: RowList.Picked) -> None:
        if event.rows is self.outputs:
            self.notch_list.cursor = 0
        self._version = -1
        self.frame()

"""The mixer view: a strip per input, the masters on the right.

Layers, as on a desk: the inputs (their main-mix faders, or with
sends-on-faders one monitor mix's sends), the bus masters, the DCAs and
the mute groups. The masters area always holds the main L/R and, with
sends-on-faders, the mix's own master with its limiter and notch status.
"""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Static

from livesound.console.state import ConsoleState
from livesound.console.widgets.bank import StripBank
from livesound.console.widgets.statusbar import StatusBar
from livesound.console.widgets.strip import WIDTH, StripSpec
from livesound.control.groups import (
    N_DCA,
    N_MUTE_GROUPS,
    dca_prefix,
    dca_solo_address,
    mute_group_address,
    solo_address,
)
from livesound.control.registry import ch_prefix, out_prefixes

FADER_MIN, FADER_MAX = -90.0, 10.0


def input_spec(st: ConsoleState, c: int, mix: int = 0) -> StripSpec:
    """Strip of input ``c``: its main-mix fader, or its send to ``mix``."""
    p = ch_prefix(c)
    common = dict(label=f"{c + 1:02d}", name=f"{p}/config/name", meter="in", index=c,
                  solo=solo_address(c), gate=f"{p}/gate/on",
                  comp=f"{p}/dyn/on", group=p, color=f"{p}/config/color")  # fmt: skip
    if mix:
        s = f"{p}/mix/{mix:02d}"
        pair = mix - (mix + 1) % 2  # odd bus of the pair holds pan and tap
        return StripSpec(fader=f"{s}/level", on=f"{s}/on",
                         tap=f"{p}/mix/{pair:02d}/type", **common)  # fmt: skip
    return StripSpec(fader=f"{p}/mix/fader", on=f"{p}/mix/on", pan=f"{p}/mix/pan",
                     **common)  # fmt: skip


def output_spec(st: ConsoleState, o: int) -> StripSpec:
    """Master strip of output ``o`` (``st.n_bus`` is the main L/R)."""
    x32, _ = out_prefixes(o, st.n_bus)
    main = o == st.n_bus
    return StripSpec(
        label="MAIN" if main else f"B{o + 1:02d}",
        name="L/R" if main else f"{x32}/config/name",
        fader=f"{x32}/mix/fader", on=f"{x32}/mix/on", meter="out", index=o,
        stereo=main, output=o, group=x32, color=f"{x32}/config/color",
    )  # fmt: skip


def dca_spec(k: int) -> StripSpec:
    """Strip of DCA ``k`` (0-based): its fader and its mute, no meter."""
    p = dca_prefix(k)
    return StripSpec(label=f"DCA{k + 1}", name=f"{p}/config/name", fader=f"{p}/fader",
                     on=f"{p}/on", solo=dca_solo_address(k), meter=None, index=k,
                     ident=("dca", k),
                     color=f"{p}/config/color")  # fmt: skip


def mute_group_spec(k: int) -> StripSpec:
    """Strip of mute group ``k`` (0-based): only its switch (M lit: engaged)."""
    return StripSpec(label=f"MG{k + 1}", name=f"Mute {k + 1}", fader=None,
                     on=mute_group_address(k), meter=None, index=k,
                     mute_switch=True, ident=("mutegroup", k))  # fmt: skip


LAYERS = {
    "buses": lambda st: [output_spec(st, o) for o in range(st.n_bus)],
    "dcas": lambda st: [dca_spec(k) for k in range(N_DCA)],
    "mutegroups": lambda st: [mute_group_spec(k) for k in range(N_MUTE_GROUPS)],
}
"""The layers besides the inputs: their strips for a console state."""


def _key(spec: StripSpec) -> tuple[str, int]:
    if spec.ident is not None:
        return spec.ident
    return ("out", spec.output) if spec.output is not None else ("in", spec.index)


class MixerScreen(Screen):
    """Inputs (or bus masters) on faders; main and the mix's master on the right."""

    BINDINGS = [
        Binding("left,h", "select(-1)", "Prev strip"),
        Binding("right,l", "select(1)", "Next strip"),
        Binding("up,k", "fader(1)", "Fader +1 dB"),
        Binding("down,j", "fader(-1)", "Fader -1 dB"),
        Binding("shift+up,K", "fader(0.1)", "Fader +0.1 dB", show=False),
        Binding("shift+down,J", "fader(-0.1)", "Fader -0.1 dB", show=False),
        Binding("pageup", "fader(6)", "Fader +6 dB", show=False),
        Binding("pagedown", "fader(-6)", "Fader -6 dB", show=False),
        Binding("home,0", "fader_to(0)", "Fader to 0 dB"),
        Binding("end", "fader_off", "Fader off (-oo)"),
        Binding("m", "mute", "Mute"),
        Binding("s", "solo", "Solo"),
        Binding("comma", "pan(-10)", "Pan left"),
        Binding("full_stop", "pan(10)", "Pan right"),
        Binding("c", "pan_center", "Pan centre"),
        Binding("left_square_bracket", "bank(-1)", "Prev bank"),
        Binding("right_square_bracket", "bank(1)", "Next bank"),
        Binding("f", "sends(1)", "Sends on faders: next mix"),
        Binding("F", "sends(-1)", "Sends on faders: prev mix"),
        Binding("escape", "sends_off", "Back to main mix"),
        Binding("b", "show_layer('buses')", "Bus masters layer"),
        Binding("d", "show_layer('dcas')", "DCA layer: ride and mute the DCAs"),
        Binding(
            "g", "show_layer('mutegroups')", "Mute groups layer: m engages a group"
        ),
        Binding("enter", "detail", "Channel detail"),
    ]

    def __init__(self, state: ConsoleState, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state = state
        self.sends_mix = 0  # 0: main mix on the faders; N: sends to mix N
        self.fader_layer = "inputs"  # or one of LAYERS
        self.cursor = 0  # over channel strips, then master strips
        # What is selected, by identity: ("in", c) or ("out", o). Layers and
        # banks change what sits where, never which strip is selected.
        self.selected: tuple[str, int] = ("in", 0)
        self._last_input = 0
        self._shape = (0, 0)
        self._version = -1
        self._meter_stamp = -1.0
        self._layer_text = ""

    def compose(self) -> ComposeResult:
        yield Static(id="layer")
        with Horizontal(id="banks"):
            yield StripBank(self.state, id="channels")
            yield StripBank(self.state, id="masters")
        yield StatusBar(self.state)

    ready = False  # set once mounted: the app draws frames from then on

    def on_mount(self) -> None:
        self.ready = True
        self.rebuild()

    # -- model -------------------------------------------------------------------

    @property
    def channels(self) -> StripBank:
        return self.query_one("#channels", StripBank)

    @property
    def masters(self) -> StripBank:
        return self.query_one("#masters", StripBank)

    def rebuild(self) -> None:
        """Lay the strips out for the current layer and mix."""
        st = self.state
        self._shape = (st.n_in, st.n_bus)
        if self.sends_mix > st.n_bus:
            self.sends_mix = 0
        if self.fader_layer in LAYERS:
            left = LAYERS[self.fader_layer](st)
        else:
            left = [input_spec(st, c, self.sends_mix) for c in range(st.n_in)]
        right = [output_spec(st, st.n_bus)]
        if self.sends_mix and self.fader_layer == "inputs":
            right.insert(0, output_spec(st, self.sends_mix - 1))
        self.channels.set_specs(left)
        self.masters.set_specs(right)
        self.masters.styles.width = WIDTH * len(right) + 1  # + the border
        self.cursor = self._place(left + right)
        self._select()
        self._update_layer()

    def _place(self, specs: list[StripSpec]) -> int:
        """Where the selected strip sits now; the strip it maps to on a layer
        that does not show it (an input's place when the bus layer is left)."""
        keys = [_key(spec) for spec in specs]
        for key in (self.selected, ("in", self._last_input)):
            if key in keys:
                return keys.index(key)
        return 0

    def _select(self) -> None:
        spec = self.current()
        self.selected = _key(spec)
        if self.selected[0] == "in":
            self._last_input = spec.index
        n = len(self.channels.specs)
        if self.cursor < n:
            self.channels.select(self.cursor)
            self.masters.select(None)
        else:
            self.channels.select(None)
            self.masters.select(self.cursor - n)

    def current(self) -> StripSpec:
        """The selected strip."""
        n = len(self.channels.specs)
        if self.cursor < n:
            return self.channels.specs[self.cursor]
        return self.masters.specs[self.cursor - n]

    def _update_layer(self) -> None:
        st = self.state
        if self.fader_layer == "buses":
            text = "[b]BUS MASTERS[/b]  [dim]b: inputs layer[/dim]"
        elif self.fader_layer == "dcas":
            text = ("[b]DCAs[/b]  a DCA's fader moves its members' faders, its "
                    "mute mutes them  [dim]m: mute  d: inputs layer[/dim]")  # fmt: skip
        elif self.fader_layer == "mutegroups":
            text = ("[b]MUTE GROUPS[/b]  an engaged group (M lit) mutes its "
                    "members  [dim]m: engage/release  g: inputs layer[/dim]")  # fmt: skip
        elif self.sends_mix:
            x32, extra = out_prefixes(self.sends_mix - 1, st.n_bus)
            name = st.values.get(f"{x32}/config/name", f"Bus {self.sends_mix}")
            o = self.sends_mix - 1
            gr = st.outputs.gr[o]
            notches = st.notches(o)
            text = (f"[b reverse] SENDS ON FADERS [/]  [b]Mix {self.sends_mix}: "
                    f"{name}[/b]  master {st.text(f'{x32}/mix/fader')} dB  "
                    f"limiter {'on' if st.values.get(f'{extra}/limiter/on') else 'off'}"
                    f" GR {gr:.1f} dB  notches {len(notches)} "
                    f"({sum(n['fixed'] for n in notches)} fixed)  "
                    f"fbs {st.fbs_mode(o)}  [dim]f/F: other mix, esc: main mix[/dim]")  # fmt: skip
        else:
            first = self.channels.first
            last = min(first + self.channels.visible, st.n_in)
            text = (f"[b]MAIN MIX[/b]  inputs {first + 1}-{last} of {st.n_in}  "
                    "[dim]f: sends  b: buses  d: DCAs  g: mute groups  "
                    "[ ]: bank  enter: detail  ?: help[/dim]")  # fmt: skip
        if text != self._layer_text:
            self._layer_text = text
            self.query_one("#layer", Static).update(text)

    def frame(self) -> None:
        """One display frame: meters every time, the rest when the state moved."""
        st = self.state
        if (st.n_in, st.n_bus) != self._shape:
            self.rebuild()
        # Meters arrive at the engine's 20 Hz: a frame between two readings
        # would draw the same picture again, so it draws nothing.
        if st.meter_stamp != self._meter_stamp or st.version != self._version:
            self._meter_stamp = st.meter_stamp
            self.channels.redraw()
            self.masters.redraw()
        if st.version != self._version:
            self._version = st.version
            self._update_layer()
            self.query_one(StatusBar).refresh()

    # -- actions -----------------------------------------------------------------

    @property
    def link(self):
        return self.app.link

    def action_select(self, step: int) -> None:
        total = len(self.channels.specs) + len(self.masters.specs)
        self.cursor = max(0, min(total - 1, self.cursor + step))
        self._select()
        self._update_layer()

    def action_bank(self, step: int) -> None:
        n = self.channels.visible
        last = len(self.channels.specs) - 1
        self.cursor = max(0, min(last, (self.cursor // n + step) * n))
        self._select()
        self._update_layer()

    def _set_fader(self, value: float) -> None:
        spec = self.current()
        if spec.fader is None:
            return  # a mute group has no fader
        self.link.set(spec.fader, value)
        self.channels.redraw()
        self.masters.redraw()

    def action_fader(self, step: float) -> None:
        if self.current().fader is None:
            return
        value = self.state.values.get(self.current().fader, -math.inf)
        if value == -math.inf or value <= FADER_MIN:
            if step < 0:
                return
            value = -60.0  # up from off starts where the fader law gets useful
        else:
            value = round(value + step, 1)
            if value <= FADER_MIN:
                value = -math.inf
        self._set_fader(min(FADER_MAX, value))

    def action_fader_to(self, db: float) -> None:
        self._set_fader(float(db))

    def action_fader_off(self) -> None:
        self._set_fader(-math.inf)

    def action_mute(self) -> None:
        spec = self.current()
        self.link.set(spec.on, 0 if self.state.values.get(spec.on, 1) else 1)
        self.channels.redraw()
        self.masters.redraw()

    def action_solo(self) -> None:
        spec = self.current()
        if spec.solo:
            self.link.set(spec.solo, 0 if self.state.values.get(spec.solo) else 1)
            self.channels.redraw()

    def action_pan(self, step: int) -> None:
        spec = self.current()
        if spec.pan:
            value = self.state.values.get(spec.pan, 0.0) + step
            self.link.set(spec.pan, max(-100.0, min(100.0, round(value))))
            self.channels.redraw()

    def action_pan_center(self) -> None:
        spec = self.current()
        if spec.pan:
            self.link.set(spec.pan, 0.0)
            self.channels.redraw()

    def action_sends(self, step: int) -> None:
        n = self.state.n_bus
        self.fader_layer = "inputs"
        self.sends_mix = (self.sends_mix - 1 + step) % n + 1 if self.sends_mix else (
            1 if step > 0 else n)  # fmt: skip
        self.rebuild()

    def action_sends_off(self) -> None:
        if self.sends_mix or self.fader_layer != "inputs":
            self.sends_mix = 0
            self.fader_layer = "inputs"
            self.rebuild()

    def action_show_layer(self, layer: str) -> None:
        """Show ``layer`` (one of ``LAYERS``) on the faders; again: the inputs."""
        self.fader_layer = "inputs" if self.fader_layer == layer else layer
        if self.fader_layer == "inputs":
            self.selected = ("in", self._last_input)  # back where the inputs were
        self.rebuild()

    def action_detail(self) -> None:
        spec = self.current()
        if spec.ident is not None:
            self.state.notice(f"{spec.label} has no detail view")
        elif spec.output is not None:
            self.app.show_outputs(spec.output)
        else:
            self.app.show_detail(spec.index)

    # -- mouse -------------------------------------------------------------------

    def on_strip_bank_clicked(self, event: StripBank.Clicked) -> None:
        offset = 0 if event.bank is self.channels else len(self.channels.specs)
        self.cursor = offset + event.index
        self._select()
        if event.part == "mute":
            self.action_mute()
        elif event.part == "solo":
            self.action_solo()

    def on_strip_bank_dragged(self, event: StripBank.Dragged) -> None:
        offset = 0 if event.bank is self.channels else len(self.channels.specs)
        self.cursor = offset + event.index
        self._select()
        if self.state.values.get(self.current().fader) != event.db:
            self._set_fader(min(FADER_MAX, event.db))

    def on_strip_bank_wheel(self, event: StripBank.Wheel) -> None:
        offset = 0 if event.bank is self.channels else len(self.channels.specs)
        self.cursor = offset + event.index
        self._select()
        self.action_fader(event.steps)

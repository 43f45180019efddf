"""One channel strip, drawn as a column of cells.

A strip is described by a ``StripSpec`` (which addresses and which meters
it shows) and drawn from the console state into rows of segments; the
bank widget lays strips side by side. Drawing is a pure function of the
state, so what a frame shows is exactly what the state holds.

Rows, top to bottom: number, name (two rows: up to 12 characters), pan (or send tap, or the suppressor's
mode and notch count on an output), mute/solo, dynamics (gate and
compressor gain reduction, or limiter gain reduction), the meter with its
fader, the fader in dB, the peak hold (or CLIP). A DCA has a fader and no
meter; a mute group only its switch.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment

from livesound.console.state import METER_FLOOR_DB, ConsoleState
from livesound.console.widgets.meter import (
    DIM,
    RED,
    bar_cell,
    db_text,
    fader_row,
    hold_row,
    level,
    scale_rows,
    style,
    zone,
)
from livesound.control.groups import muted_by

WIDTH = 7  # cells per strip, including one of spacing
HEAD_ROWS, FOOT_ROWS = 6, 2
MUTE_ROW = 4  # label, two name rows, pan, then mute/solo
NAME_CHARS = 2 * (WIDTH - 1)
BG, BG_SELECTED = "#101018", "#283048"
ORANGE = "#ff9020"  # muted by a DCA or a mute group
FG, FG_DIM = "#d0d0d0", "#606070"


@dataclass(frozen=True)
class StripSpec:
    """What one strip shows: addresses of its controls, its meter source."""

    label: str
    name: str  # address of the name, or the name itself if not an address
    fader: str | None  # None: no fader (a mute group)
    on: str
    pan: str | None = None
    solo: str | None = None
    tap: str | None = None  # a send's tap (pre/post)
    meter: str | None = "in"  # "in" or "out": which meter bank; None: no meter
    index: int = 0  # index in that bank (or of the DCA, the mute group)
    stereo: bool = False  # main L/R: two peak columns instead of peak + RMS
    output: int | None = None  # outputs: index for limiter / suppressor status
    gate: str | None = None
    comp: str | None = None
    color: str | None = None  # address of the X32 scribble-strip colour
    mute_switch: bool = False  # ``on`` is 1 when muted (a mute group's switch)
    group: str | None = None  # address prefix of its DCA / mute-group membership
    ident: tuple[str, int] | None = None  # which strip it is, if not in or out


# The X32's scribble-strip colours (OFF, RD ... WH; "i": inverted).
COLOURS = {"OFF": FG_DIM, "RD": "#ff5050", "GN": "#50d050", "YE": "#e0d040",
           "BL": "#5080ff", "MG": "#e050e0", "CY": "#40d0e0", "WH": "#ffffff"}  # fmt: skip


def label_style(colour: object, bg: str):
    """The strip number in its scribble-strip colour: coloured text, or black
    on the colour for an inverted one (OFF: dim)."""
    name = str(colour or "OFF")
    inverted = name.endswith("i")
    fg = COLOURS.get(name.removesuffix("i"), FG_DIM)
    if inverted and fg != FG_DIM:
        return style("#000000", fg, bold=True)
    return style(fg, bg, bold=fg != FG_DIM)


def muted(spec: StripSpec, st: ConsoleState) -> bool:
    """Whether the strip's own mute (or mute group's switch) is on."""
    if spec.mute_switch:
        return bool(st.values.get(spec.on, 0))
    return not st.values.get(spec.on, 1)


def group_mute(spec: StripSpec, st: ConsoleState) -> str:
    """What mutes the strip besides its own mute: "D" (a DCA switched off),
    the number of an engaged mute group ("1".."6") or ""."""
    if spec.group is None:
        return ""
    dcas, groups = muted_by(st.values, spec.group)
    return "D" if dcas else str(groups[0] + 1) if groups else ""


def _pan_text(value: float) -> str:
    if value is None or abs(value) < 0.5:
        return "C"
    return f"L{-value:.0f}" if value < 0 else f"R{value:.0f}"


def _short_mode(mode: str) -> str:
    return {"off": "off", "speech": "SPE", "music": "MUS", "ringout": "RNG",
            "afc": "AFC"}.get(mode, "—")  # fmt: skip


def _track(mark: float | None) -> str:
    """The fader's track: a mark of the scale (0 dB doubled), else a line."""
    if mark is None:
        return "│"
    return "╪" if mark == 0.0 else "┼"


def name_rows(name: str, width: int = WIDTH - 1) -> tuple[str, str]:
    """A strip name on two rows of ``width``: broken at a space where one fits."""
    name = name.strip()[: 2 * width]
    if len(name) <= width:
        return name, ""
    cut = name.rfind(" ", 0, width + 1)
    if cut <= 0 or len(name) - cut - 1 > width:
        cut = width
    return name[:cut].rstrip(), name[cut:].strip()[:width]


def draw(
    spec: StripSpec, st: ConsoleState, height: int, selected: bool, now: float
) -> list[list[Segment]]:
    """The strip's rows (each ``WIDTH`` cells) for a bank ``height`` rows tall."""
    bg = BG_SELECTED if selected else BG
    plain = style(FG, bg)
    dim = style(FG_DIM, bg)
    rows: list[list[Segment]] = []

    def text(t: str, s=plain) -> None:
        rows.append([Segment(t.center(WIDTH - 1)[: WIDTH - 1], s), Segment(" ", plain)])

    # The selected strip can't be missed: a yellow pointer label and its name
    # in reverse, not only a different background.
    if selected:
        text(f"▸{spec.label}◂", style("#000000", "#e0c020", bold=True))
    elif spec.color is not None:
        text(spec.label, label_style(st.text(spec.color), bg))
    else:
        text(spec.label, dim)
    name = (
        st.values.get(spec.name, spec.name) if spec.name.startswith("/") else spec.name
    )
    name_style = style("#000000", FG, bold=True) if selected else plain
    for row in name_rows(str(name)):
        text(row, name_style)
    if spec.output is not None:
        notches = st.notches(spec.output)
        text(f"{_short_mode(st.fbs_mode(spec.output))}{len(notches) or ''}", dim)
    elif spec.tap is not None:
        text(st.text(spec.tap)[:5], dim)
    elif spec.pan is not None:
        text(_pan_text(st.values.get(spec.pan, 0.0)), dim)
    else:
        text("")
    soloed = bool(st.values.get(spec.solo, 0)) if spec.solo else False
    # Its own mute first; else what a DCA or mute group does to it, in
    # orange and by its letter, so it never reads as the strip's own.
    own = muted(spec, st)
    by_group = "" if own else group_mute(spec, st)
    if own:
        mute = Segment("M", style("#ffffff", RED, bold=True))
    elif by_group:
        mute = Segment(by_group, style("#000000", ORANGE, bold=True))
    else:
        mute = Segment("M", dim)
    rows.append([
        Segment(" ", plain),
        mute,
        Segment("  ", plain),
        Segment("S" if spec.solo else " ", style("#000000", "#e0c020", bold=True)
                if soloed else dim),  # fmt: skip
        Segment("  ", plain),
    ])  # fmt: skip
    bank = {"in": st.inputs, "out": st.outputs}.get(spec.meter)
    i = spec.index
    if bank is None:
        text("")
    elif spec.output is not None:
        gr = bank.gr[i] if not spec.stereo else min(bank.gr[i], bank.gr[i + 1])
        text(
            f"L{gr:4.1f}" if gr < -0.05 else "L  - ", style(RED, bg) if gr < -3 else dim
        )
    else:
        gate_on = spec.gate and st.values.get(spec.gate)
        comp_on = spec.comp and st.values.get(spec.comp)
        g = bank.gate[i]
        gate = Segment("G", style(RED if g < -3 else "#3fbf3f", bg) if gate_on else dim)
        c = bank.gr[i]
        comp = f"{c:4.0f}" if comp_on and c < -0.5 else (" C  " if comp_on else "    ")
        rows.append([Segment(" ", plain), gate, Segment(comp, style("#e0c020", bg)
                     if comp_on and c < -0.5 else dim), Segment(" ", plain)])  # fmt: skip
    meter_h = max(1, height - HEAD_ROWS - FOOT_ROWS)
    if bank is None:
        a = b = hold = METER_FLOOR_DB
        clip = False
    elif spec.stereo:
        a, b = bank.shown[i], bank.shown[i + 1]
        hold = max(bank.hold[i], bank.hold[i + 1])
        clip = bank.clipping(i, now) or bank.clipping(i + 1, now)
    else:
        a, b = bank.shown[i], bank.rms[i]
        hold = bank.hold[i]
        clip = bank.clipping(i, now)
    lit_a, lit_b = level(a, meter_h), level(b, meter_h)
    hrow = hold_row(hold, meter_h)
    fader_db = st.values.get(spec.fader) if spec.fader else None
    frow = fader_row(fader_db, meter_h) if spec.fader else -1
    marks = scale_rows(meter_h) if spec.fader else {}
    for r in range(meter_h):
        z = zone(r, meter_h)
        bright, low = style(z, bg), style(DIM[z] if not spec.stereo else z, bg)
        ca, cb = bar_cell(lit_a, r, meter_h), bar_cell(lit_b, r, meter_h)
        if r == hrow and ca == " ":
            seg_a = Segment("▔", style("#ffffff", bg))
        else:
            seg_a = Segment(ca, bright)
        knob = r == frow
        rows.append([
            Segment(" ", plain),
            seg_a,
            Segment(cb, low),
            Segment(" ", plain),
            Segment("█", style("#ffffff", bg, bold=True)) if knob
            else Segment(_track(marks.get(r)), dim),
            Segment("  ", plain),
        ])  # fmt: skip
    fader_text = db_text(fader_db, WIDTH - 1) if spec.fader else ""
    text(fader_text, style("#ffffff", bg, bold=True) if selected else plain)
    if clip:
        text("CLIP", style("#ffffff", RED, bold=True))
    else:
        text("" if hold <= -89 else f"{hold:.0f}", dim)
    return rows[:height]

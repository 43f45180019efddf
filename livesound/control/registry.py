"""The parameter registry: the one description of every controllable value.

Addresses follow the Behringer X32 OSC tree wherever the concept is the same
(``/ch/01/mix/fader``, ``/ch/01/mix/05/level``, ``/bus/05/mix/fader``,
``/main/st/mix/fader``); parameters the X32 lacks live under ``/ls/``.
Values are held in engineering units (dB, Hz, ms); ``to_norm``/``from_norm``
give the X32's 0..1 floats. Each parameter knows its strip (``Strip``:
an input, a bus, the main, ...) and the part of the audio plane it drives
(``Target``), so the Mixer knows what to recompute and scenes, the console
and the suppressor never have to take an address apart.
"""

import math
import numbers
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any

import numpy as np

from livesound.audio.layout import matrix_outputs, mono_output
from livesound.control import taper
from livesound.control.groups import (
    DCA_MASK,
    MUTE_MASK,
    N_DCA,
    N_MUTE_GROUPS,
    dca_prefix,
    dca_solo_address,
    mute_group_address,
    solo_address,
)

X32_SEND_TYPES = ("IN/LC", "<-EQ", "EQ->", "PRE", "POST", "GRP")
PRE_FADER_TYPES = 4  # send types below this index tap before the fader
EQ_TYPES = ("LCut", "LShv", "PEQ", "VEQ", "HShv", "HCut")
DYN_RATIOS = (
    "1.1",
    "1.3",
    "1.5",
    "2.0",
    "2.5",
    "3.0",
    "4.0",
    "5.0",
    "7.0",
    "10",
    "20",
    "100",
)
HPF_SLOPES = ("12", "18", "24")  # dB/oct; the index is the X32's wire value
OSC_TYPES = ("sine", "pink")
SOLO_MODES = ("PFL", "AFL")
X32_COLORS = ("OFF", "RD", "GN", "YE", "BL", "MG", "CY", "WH",
              "OFFi", "RDi", "GNi", "YEi", "BLi", "MGi", "CYi", "WHi")  # fmt: skip
"""Scribble-strip colours, as the X32 numbers them (``i``: inverted)."""
X32_ICONS = 74  # the X32's strip icons are numbered 1..74
FBS_MODES = ("off", "speech", "music", "ringout", "afc")


class ParamError(ValueError):
    """A value or address the registry refuses."""


def ch_prefix(c: int) -> str:
    """Address prefix of input ``c`` (0-based): ``/ch/01``."""
    return f"/ch/{c + 1:02d}"


def out_prefixes(o: int, n_bus: int) -> tuple[str, str]:
    """X32 and livesound address prefixes of output ``o`` (0-based):
    ``/bus/03``, ``/ls/bus/03``; ``/main/m``, ``/ls/main/m`` for the mono
    bus; ``/mtx/01``, ``/ls/mtx/01`` for a matrix; ``/main/st``,
    ``/ls/main/st`` for the main (and the cue, which has no settings)."""
    if o < n_bus:
        return f"/bus/{o + 1:02d}", f"/ls/bus/{o + 1:02d}"
    if o == mono_output(n_bus):
        return "/main/m", "/ls/main/m"
    if o in matrix_outputs(n_bus):
        m = o - matrix_outputs(n_bus).start
        return f"/mtx/{m + 1:02d}", f"/ls/mtx/{m + 1:02d}"
    return "/main/st", "/ls/main/st"


def matrix_sources(n_bus: int) -> list[tuple[int, str, str]]:
    """What may feed a matrix: (engine output, X32 prefix, scene name) of
    every bus, the main (by its left output) and the mono bus."""
    buses = [(b, out_prefixes(b, n_bus)[0], f"bus.{b + 1:02d}") for b in range(n_bus)]
    return buses + [
        (n_bus, "/main/st", "main"),
        (mono_output(n_bus), "/main/m", "mono"),
    ]


class Target(Enum):
    """The part of the audio plane a parameter drives: what the Mixer derives
    again when it changes (for one strip, or for all of them)."""

    INPUT = "input"  # the input's fields: trim, polarity, delay, dynamics
    HPF = "hpf"  # the input's high-pass sections
    IN_EQ = "in_eq"  # the input's EQ
    ROW = "row"  # the input's matrix row: mute, fader, pan, sends
    ROWS = "rows"  # every matrix row (solo)
    OUTPUT = "output"  # the output's fields: master, balance, limiter, delay
    OUT_EQ = "out_eq"  # the output's EQ
    NOTCH = "notch"  # the output's feedback notches
    MTX = "mtx"  # a matrix's sends: its column of the matrix mix
    LINKS = "links"  # bus links: every output and every row
    DCA = "dca"  # a DCA's fader or mute: the rows and outputs of its members
    MUTE_GROUP = "mute_group"  # a mute group's switch: its members
    OSCILLATOR = "oscillator"
    ALL = "all"  # everything (the Mixer's first change set)


class StripKind(Enum):
    CH = "ch"  # an input channel
    BUS = "bus"  # a mix bus
    MAIN = "main"  # the main L/R
    MONO = "mono"  # the mono/centre bus
    MTX = "mtx"  # a matrix output
    BUSLINK = "buslink"  # the stereo link of two buses
    SOLO = "solo"  # the solo/cue settings
    OSC = "osc"  # the oscillator
    DCA = "dca"  # a DCA
    MUTE_GROUP = "mutegroup"  # a mute group
    X32 = "x32"  # an X32 address answered for compatibility, outside the show


@dataclass(frozen=True)
class Strip:
    """What a parameter belongs to.

    ``index``: the input (0-based) of a channel, the engine output of a bus,
    the main (output ``n_bus``), the mono bus or a matrix, the first bus of
    a link, the DCA or mute group (0-based); 0 for the rest. ``number``: a
    matrix's number (0-based), which names it.
    """

    kind: StripKind
    index: int = 0
    number: int = 0

    @property
    def name(self) -> str:
        """Its name in scene files and recall safes: ``ch.01``, ``bus.03``,
        ``main``, ``mono``, ``mtx.01``, ``buslink.1-2``, ``solo``, ``osc``,
        ``dca.1``, ``mutegroup.1``."""
        if self.kind in (StripKind.CH, StripKind.BUS):
            return f"{self.kind.value}.{self.index + 1:02d}"
        if self.kind is StripKind.MTX:
            return f"mtx.{self.number + 1:02d}"
        if self.kind in (StripKind.DCA, StripKind.MUTE_GROUP):
            return f"{self.kind.value}.{self.index + 1}"
        if self.kind is StripKind.BUSLINK:
            return f"buslink.{self.index + 1}-{self.index + 2}"
        return self.kind.value


@dataclass(frozen=True)
class Param:
    """One controllable parameter.

    ``kind``: float, int (0/1 switches and counts), enum (index into
    ``choices``) or str. ``taper``: how a float maps to the X32 0..1 range
    (lin, log, fader). ``group`` is the scene/recall-scope group, ``target``
    the audio-plane structure it drives (None: nothing in the audio plane),
    ``key`` its name in scene files (with its unit, like ``fader_db``),
    ``strip`` what it belongs to.
    """

    address: str
    kind: str
    default: Any
    strip: Strip
    lo: float = 0.0
    hi: float = 1.0
    unit: str = ""
    taper: str = "lin"
    group: str = "config"
    target: Target | None = None
    key: str = ""
    choices: tuple[str, ...] = ()
    doc: str = ""

    def validate(self, value: Any) -> Any:
        """Coerce ``value`` to this parameter's type or raise ParamError."""
        if self.kind == "str":
            if not isinstance(value, str):
                raise ParamError(f"{self.address} takes text, got {value!r}")
            text = value.strip()
            # Empty is allowed: it is the X32's default name.
            if len(text) > 32 or not text.isprintable():
                raise ParamError(f"{self.address}: name must be 0-32 printable chars")
            return text
        if self.kind == "enum" and isinstance(value, str):
            if value not in self.choices:
                names = ", ".join(self.choices)
                raise ParamError(f"{self.address} takes one of {names}; got {value!r}")
            return self.choices.index(value)
        if isinstance(value, bool | np.bool_):
            value = int(value)
        if not isinstance(value, numbers.Real):
            raise ParamError(f"{self.address} takes a number, got {value!r}")
        if self.kind in ("int", "enum"):
            if (
                not isinstance(value, numbers.Integral)
                and not float(value).is_integer()
            ):
                raise ParamError(f"{self.address} takes a whole number, got {value!r}")
            value = int(value)
            hi = len(self.choices) - 1 if self.kind == "enum" else self.hi
            if not self.lo <= value <= hi:
                raise ParamError(
                    f"{self.address} takes {int(self.lo)}..{int(hi)}, got {value}"
                )
            return value
        try:
            value = float(value)
        except OverflowError:
            raise ParamError(f"{self.address} takes a finite number") from None
        if math.isnan(value) or (math.isinf(value) and not self.accepts_off(value)):
            raise ParamError(f"{self.address} takes a finite number, got {value}")
        lo, hi = sorted((self.lo, self.hi))  # log tapers may run high to low
        if not (lo <= value <= hi or self.accepts_off(value)):
            raise ParamError(
                f"{self.address} takes {lo:g}..{hi:g} {self.unit}".rstrip()
                + f", got {value:g}"
            )
        return value

    def clamp(self, value: float) -> float:
        """A float brought into this parameter's range (for computed values)."""
        lo, hi = sorted((self.lo, self.hi))
        return min(max(float(value), lo), hi)

    def accepts_off(self, value: float) -> bool:
        """Faders accept -inf (off)."""
        return self.taper == "fader" and value == -math.inf

    def to_norm(self, value: Any) -> float:
        """The X32 0..1 float for a value (floats only)."""
        if self.taper == "fader":
            return taper.db_to_fader(value)
        if self.taper == "log":
            return math.log(value / self.lo) / math.log(self.hi / self.lo)
        return (value - self.lo) / (self.hi - self.lo)

    def from_norm(self, f: float) -> float:
        """The value for an X32 0..1 float (floats only)."""
        f = min(max(float(f), 0.0), 1.0)
        if self.taper == "fader":
            return taper.fader_to_db(f)
        if self.taper == "log":
            return self.lo * (self.hi / self.lo) ** f
        return self.lo + f * (self.hi - self.lo)


class Registry:
    """Every parameter of a show with ``n_in`` inputs and ``n_bus`` buses."""

    def __init__(self, n_in: int = 32, n_bus: int = 16, n_notch: int = 16) -> None:
        self.n_in, self.n_bus, self.n_notch = n_in, n_bus, n_notch
        self.params: dict[str, Param] = {}
        for c in range(n_in):
            self._input(c)
        for b in range(n_bus):
            self._output(Strip(StripKind.BUS, b))
        self._output(Strip(StripKind.MAIN, n_bus))
        self._output(Strip(StripKind.MONO, mono_output(n_bus)))
        for m, o in enumerate(matrix_outputs(n_bus)):
            self._output(Strip(StripKind.MTX, o, m))
        for b in range(0, n_bus - 1, 2):
            self._add(Strip(StripKind.BUSLINK, b), f"/config/buslink/{b + 1}-{b + 2}",
                      "int", 0, 0, 1, group="routing", target=Target.LINKS,
                      key="linked",
                      doc="Stereo-link two buses (in-ear pair): the odd bus's "
                      "settings drive both")  # fmt: skip
        solo = partial(self._add, Strip(StripKind.SOLO), group="routing",
                       target=Target.ROWS)  # fmt: skip
        solo("/config/solo/level", "float", 0.0, -90.0, 10.0, "dB", "fader",
             key="level_db")  # fmt: skip
        solo("/config/solo/chmode", "enum", 0, choices=SOLO_MODES, key="mode")
        osc = partial(self._add, Strip(StripKind.OSC), group="osc",
                      target=Target.OSCILLATOR)  # fmt: skip
        osc("/ls/osc/on", "int", 0, 0, 1, key="on")
        osc("/config/osc/type", "enum", 0, choices=OSC_TYPES, key="type")
        osc("/config/osc/f1", "float", 1000.0, 20.0, 20000.0, "Hz", "log",
            key="freq_hz")  # fmt: skip
        osc("/config/osc/level", "float", -20.0, -60.0, 0.0, "dB", key="level_db")
        dests = tuple(f"MixBus{b + 1}" for b in range(n_bus)) + ("L", "R", "L+R")
        osc("/config/osc/dest", "enum", n_bus + 2, choices=dests, key="destination")
        for k in range(N_DCA):
            self._dca(k)
        for k in range(N_MUTE_GROUPS):
            self._add(Strip(StripKind.MUTE_GROUP, k), mute_group_address(k), "int",
                      0, 0, 1, group="mute", target=Target.MUTE_GROUP, key="on",
                      doc="1 = mute group engaged: mutes its members")  # fmt: skip
        self._by_key = {(p.strip, p.key): p for p in self if p.key}

    def __getitem__(self, address: str) -> Param:
        try:
            return self.params[address]
        except KeyError:
            raise ParamError(f"unknown address {address}") from None

    def __contains__(self, address: str) -> bool:
        return address in self.params

    def __iter__(self):
        return iter(self.params.values())

    def __len__(self) -> int:
        return len(self.params)

    def defaults(self) -> dict[str, Any]:
        """Address -> default value for every parameter."""
        return {p.address: p.default for p in self.params.values()}

    def find(self, strip: Strip, key: str) -> Param | None:
        """The parameter of ``strip`` whose scene key is ``key``, if any."""
        return self._by_key.get((strip, key))

    # -- construction ------------------------------------------------------

    def _add(self, strip, address, kind, default, lo=0.0, hi=1.0, unit="",
             taper="lin", *, group="config", target=None, key="", choices=(),
             doc=""):  # fmt: skip
        self.params[address] = Param(
            address, kind, default, strip, lo, hi, unit, taper, group, target, key,
            tuple(choices), doc,
        )  # fmt: skip

    def _look(self, add, prefix: str, color: str) -> None:
        """Scribble-strip colour and icon (added with ``add``, the strip's
        ``_add``): stored and recalled, no sound."""
        add(f"{prefix}/config/icon", "int", 1, 1, X32_ICONS, group="config",
            key="icon", doc="X32 strip icon 1..74")  # fmt: skip
        add(f"{prefix}/config/color", "enum", X32_COLORS.index(color),
            choices=X32_COLORS, group="config", key="color",
            doc="X32 scribble-strip colour")  # fmt: skip

    def _grp(self, add, prefix: str, target: Target) -> None:
        """The strip's DCA and mute-group membership (X32 bitmasks), added
        with ``add``; ``target``: what the strip's gain is derived into."""
        add(f"{prefix}/grp/dca", "int", 0, 0, DCA_MASK, group="routing",
            target=target, key="dca_mask",
            doc="DCAs this strip belongs to: bit 0 = DCA 1")  # fmt: skip
        add(f"{prefix}/grp/mute", "int", 0, 0, MUTE_MASK, group="routing",
            target=target, key="mute_mask",
            doc="mute groups this strip belongs to: bit 0 = group 1")  # fmt: skip

    def _dca(self, k: int) -> None:
        p = dca_prefix(k)
        add = partial(self._add, Strip(StripKind.DCA, k))
        add(f"{p}/config/name", "str", f"DCA {k + 1}", group="config", key="name")
        self._look(add, p, "YE")
        add(f"{p}/on", "int", 1, 0, 1, group="mute", target=Target.DCA, key="on",
            doc="1 = DCA on; 0 mutes every member")  # fmt: skip
        add(f"{p}/fader", "float", 0.0, -90.0, 10.0, "dB", "fader", group="fader",
            target=Target.DCA, key="fader_db",
            doc="added to every member's fader (0 dB: no change)")  # fmt: skip
        add(dca_solo_address(k), "int", 0, 0, 1, group="solo", target=Target.ROWS,
            key="solo", doc="1 = every member soloed (the X32's switches 73-80)")  # fmt: skip

    def _eq(self, add, prefix: str, bands: int, target: Target) -> None:
        """The EQ at ``prefix``, added with ``add`` (the strip's ``_add``)."""
        add(f"{prefix}/eq/on", "int", 1, 0, 1, group="eq", target=target, key="eq.on")
        defaults = (("LShv", 100.0), ("PEQ", 250.0), ("PEQ", 1000.0), ("PEQ", 2500.0),
                    ("PEQ", 6000.0), ("HShv", 10000.0))  # fmt: skip
        picks = defaults[: bands - 1] + (defaults[-1],) if bands < 6 else defaults
        for k, (kind, f0) in enumerate(picks, start=1):
            p = f"{prefix}/eq/{k}"
            e = f"eq.{k}."
            add(f"{p}/type", "enum", EQ_TYPES.index(kind), choices=EQ_TYPES,
                group="eq", target=target, key=e + "type")  # fmt: skip
            add(f"{p}/f", "float", f0, 20.0, 20000.0, "Hz", "log", group="eq",
                target=target, key=e + "freq_hz")  # fmt: skip
            add(f"{p}/g", "float", 0.0, -15.0, 15.0, "dB", group="eq", target=target,
                key=e + "gain_db")  # fmt: skip
            add(f"{p}/q", "float", 2.0, 10.0, 0.3, "", "log", group="eq",
                target=target, key=e + "q")  # fmt: skip

    def _matrix_sends(self, add, m: int) -> None:
        """The sends into matrix ``m`` (0-based), added with ``add`` (the
        matrix's ``_add``): they belong to the matrix, which the engineer
        owns, though they live at their sources' X32 addresses."""
        for _, src, name in matrix_sources(self.n_bus):
            s = f"{src}/mix/{m + 1:02d}"
            add(f"{s}/on", "int", 1, 0, 1, group="sends", target=Target.MTX,
                key=f"from.{name}.on")  # fmt: skip
            add(f"{s}/level", "float", -math.inf, -90.0, 10.0, "dB", "fader",
                group="sends", target=Target.MTX, key=f"from.{name}.level_db",
                doc="Post-fader send into the matrix (a stereo source, the "
                "main or a linked pair, enters as (L+R)/sqrt 2)")  # fmt: skip

    def _input(self, c: int) -> None:
        p = ch_prefix(c)
        inp, row = Target.INPUT, Target.ROW
        add = partial(self._add, Strip(StripKind.CH, c))
        add(f"{p}/config/name", "str", f"Ch {c + 1}", group="config", key="name")
        self._look(add, p, "YE")
        self._grp(add, p, row)
        add(f"{p}/preamp/trim", "float", 0.0, -18.0, 18.0, "dB", group="preamp",
            target=inp, key="trim_db")  # fmt: skip
        add(f"{p}/preamp/invert", "int", 0, 0, 1, group="preamp", target=inp,
            key="polarity_invert")  # fmt: skip
        add(f"{p}/preamp/hpon", "int", 0, 0, 1, group="eq", target=Target.HPF,
            key="hpf.on")  # fmt: skip
        add(f"{p}/preamp/hpf", "float", 80.0, 20.0, 400.0, "Hz", "log", group="eq",
            target=Target.HPF, key="hpf.freq_hz")  # fmt: skip
        add(f"{p}/preamp/hpslope", "enum", 0, choices=HPF_SLOPES, group="eq",
            target=Target.HPF, key="hpf.slope_db_oct")  # fmt: skip
        add(f"{p}/delay/on", "int", 0, 0, 1, group="delay", target=inp,
            key="delay.on")  # fmt: skip
        # Linear 0..1 on the wire, as the X32's (linf 0.3..500 ms).
        add(f"{p}/delay/time", "float", 0.3, 0.3, 500.0, "ms", group="delay",
            target=inp, key="delay.time_ms")  # fmt: skip
        g = f"{p}/gate"
        add(f"{g}/on", "int", 0, 0, 1, group="dynamics", target=inp, key="gate.on")
        add(f"{g}/thr", "float", -80.0, -80.0, 0.0, "dB", group="dynamics",
            target=inp, key="gate.threshold_db")  # fmt: skip
        add(f"{g}/range", "float", 60.0, 3.0, 60.0, "dB", group="dynamics",
            target=inp, key="gate.range_db")  # fmt: skip
        add(f"{g}/attack", "float", 0.5, 0.0, 120.0, "ms", group="dynamics",
            target=inp, key="gate.attack_ms")  # fmt: skip
        add(f"{g}/hold", "float", 50.0, 0.02, 2000.0, "ms", "log", group="dynamics",
            target=inp, key="gate.hold_ms")  # fmt: skip
        add(f"{g}/release", "float", 200.0, 5.0, 4000.0, "ms", "log", group="dynamics",
            target=inp, key="gate.release_ms")  # fmt: skip
        d = f"{p}/dyn"
        add(f"{d}/on", "int", 0, 0, 1, group="dynamics", target=inp, key="comp.on")
        add(f"{d}/thr", "float", -20.0, -60.0, 0.0, "dB", group="dynamics",
            target=inp, key="comp.threshold_db")  # fmt: skip
        add(f"{d}/ratio", "enum", DYN_RATIOS.index("3.0"), choices=DYN_RATIOS,
            group="dynamics", target=inp, key="comp.ratio")  # fmt: skip
        add(f"{d}/knee", "float", 2.0, 0.0, 5.0, "dB", group="dynamics", target=inp,
            key="comp.knee_db")  # fmt: skip
        add(f"{d}/attack", "float", 10.0, 0.0, 120.0, "ms", group="dynamics",
            target=inp, key="comp.attack_ms")  # fmt: skip
        add(f"{d}/release", "float", 100.0, 5.0, 4000.0, "ms", "log",
            group="dynamics", target=inp, key="comp.release_ms")  # fmt: skip
        add(f"{d}/mgain", "float", 0.0, 0.0, 24.0, "dB", group="dynamics",
            target=inp, key="comp.makeup_db")  # fmt: skip
        self._eq(add, p, 4, Target.IN_EQ)
        add(f"{p}/mix/on", "int", 1, 0, 1, group="mute", target=row, key="on",
            doc="1 = channel on (not muted), as on the X32")  # fmt: skip
        add(f"{p}/mix/fader", "float", -math.inf, -90.0, 10.0, "dB", "fader",
            group="fader", target=row, key="fader_db")  # fmt: skip
        add(f"{p}/mix/st", "int", 1, 0, 1, group="routing", target=row, key="to_main")
        add(f"{p}/mix/pan", "float", 0.0, -100.0, 100.0, "", group="routing",
            target=row, key="pan")  # fmt: skip
        add(f"{p}/mix/mono", "int", 0, 0, 1, group="routing", target=row,
            key="to_mono", doc="1 = the channel feeds the mono/centre bus")  # fmt: skip
        add(f"{p}/mix/mlevel", "float", -math.inf, -90.0, 10.0, "dB", "fader",
            group="routing", target=row, key="mono_level_db",
            doc="Post-fader level into the mono/centre bus (X32 LR+M)")  # fmt: skip
        add(solo_address(c), "int", 0, 0, 1, group="solo", target=Target.ROWS,
            key="solo")  # fmt: skip
        for b in range(self.n_bus):
            s = f"{p}/mix/{b + 1:02d}"
            add(f"{s}/on", "int", 1, 0, 1, group="sends", target=row,
                key=f"send.{b + 1:02d}.on")  # fmt: skip
            add(f"{s}/level", "float", -math.inf, -90.0, 10.0, "dB", "fader",
                group="sends", target=row,
                key=f"send.{b + 1:02d}.level_db")  # fmt: skip
            if b % 2 == 0:
                add(f"{s}/pan", "float", 0.0, -100.0, 100.0, "", group="sends",
                    target=row, key=f"send.{b + 1:02d}.pan")  # fmt: skip
                add(f"{s}/type", "enum", X32_SEND_TYPES.index("POST"),
                    choices=X32_SEND_TYPES, group="sends", target=row,
                    key=f"send.{b + 1:02d}.tap",
                    doc="IN/LC, <-EQ, EQ-> and PRE tap before the fader; POST and "
                    "GRP after it")  # fmt: skip

    def _output(self, strip: Strip) -> None:
        prefix, extra = out_prefixes(strip.index, self.n_bus)
        out = Target.OUTPUT
        add = partial(self._add, strip)
        names = {StripKind.BUS: (f"Bus {strip.index + 1}", "CY"),
                 StripKind.MONO: ("Mono", "WH"),
                 StripKind.MTX: (f"Matrix {strip.number + 1}", "WH")}  # fmt: skip
        if strip.kind in names:
            name, color = names[strip.kind]
            add(f"{prefix}/config/name", "str", name, group="config", key="name")
            self._look(add, prefix, color)
        self._grp(add, prefix, out)
        self._eq(add, prefix, 6, Target.OUT_EQ)
        add(f"{prefix}/mix/on", "int", 1, 0, 1, group="mute", target=out, key="on")
        add(f"{prefix}/mix/fader", "float", 0.0, -90.0, 10.0, "dB", "fader",
            group="fader", target=out, key="fader_db")  # fmt: skip
        if strip.kind in (StripKind.BUS, StripKind.MAIN):
            add(f"{prefix}/mix/pan", "float", 0.0, -100.0, 100.0, "", group="routing",
                target=out, key="balance",
                doc="Balance of a stereo pair (the main, a linked bus pair by "
                "its odd bus's): 0 dB at centre; the side turned away falls "
                "along cos(|pan|/100 x pi/2), -3 dB at +/-50. No effect on an "
                "unlinked bus (it feeds no main in livesound)")  # fmt: skip
        if strip.kind is StripKind.MTX:
            self._matrix_sends(add, strip.number)
        lim = f"{extra}/limiter"
        add(f"{lim}/on", "int", 1, 0, 1, group="limiter", target=out, key="limiter.on")
        add(f"{lim}/ceiling", "float", -1.0, -40.0, 0.0, "dB", group="limiter",
            target=out, key="limiter.ceiling_db")  # fmt: skip
        add(f"{lim}/release", "float", 60.0, 1.0, 2000.0, "ms", "log",
            group="limiter", target=out, key="limiter.release_ms")  # fmt: skip
        add(f"{lim}/truepeak", "int", 0, 0, 1, group="limiter", target=out,
            key="limiter.true_peak")  # fmt: skip
        add(f"{extra}/delay/time", "float", 0.0, 0.0, 500.0, "ms", group="delay",
            target=out, key="delay.time_ms")  # fmt: skip
        fbs = f"{extra}/fbs"
        add(f"{fbs}/mode", "enum", FBS_MODES.index("music"), choices=FBS_MODES,
            group="notches", key="fbs.mode",
            doc="Feedback suppressor: off, speech (wider, faster), music "
            "(narrow, only sure howls), ringout (places fixed notches) or afc "
            "(the output's feedback cancellers, music's notches behind them)")  # fmt: skip
        add(f"{fbs}/maxdepth", "float", -18.0, -40.0, -3.0, "dB", group="notches",
            key="fbs.max_depth_db", doc="Deepest an automatic notch may go")  # fmt: skip
        add(f"{fbs}/release", "float", 60.0, 1.0, 3600.0, "s", "log",
            group="notches", key="fbs.release_s",
            doc="A live notch is released this long after its howl was last "
            "seen; fixed notches stay")  # fmt: skip
        for k in range(self.n_notch):
            n = f"{extra}/notch/{k + 1:02d}"
            e = f"notch.{k + 1:02d}."
            add(f"{n}/on", "int", 0, 0, 1, group="notches", target=Target.NOTCH,
                key=e + "on")  # fmt: skip
            add(f"{n}/f", "float", 1000.0, 20.0, 20000.0, "Hz", "log", group="notches",
                target=Target.NOTCH, key=e + "freq_hz")  # fmt: skip
            add(f"{n}/depth", "float", 0.0, -60.0, 0.0, "dB", group="notches",
                target=Target.NOTCH, key=e + "depth_db")  # fmt: skip
            add(f"{n}/width", "float", 0.1, 1.0 / 80.0, 1.0, "oct", "log",
                group="notches", target=Target.NOTCH, key=e + "width_oct")  # fmt: skip
            add(f"{n}/fixed", "int", 0, 0, 1, group="notches", target=None,
                key=e + "fixed")  # fmt: skip

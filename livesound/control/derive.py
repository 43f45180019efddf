"""From parameter values to what the audio plane reads.

Pure functions: values (engineering units) in, per-sample coefficients,
linear gains and matrix rows out. Units are converted once, here, never in
the audio loop.
"""

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from livesound.audio import design
from livesound.audio import layout as L
from livesound.control import groups
from livesound.control import registry as R
from livesound.control.taper import db_to_gain

Values = Mapping[str, Any]


def one_pole(ms: float, sample_rate: float) -> float:
    """Per-sample coefficient of a one-pole smoother with time constant ``ms``."""
    samples = ms * sample_rate / 1000.0
    return 1.0 if samples < 1.0 else 1.0 - math.exp(-1.0 / samples)


def db_per_sample(span_db: float, ms: float, sample_rate: float) -> float:
    """Step of a linear-in-dB ramp that covers ``span_db`` in ``ms``."""
    return span_db / max(1.0, ms * sample_rate / 1000.0)


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan law: -100 left, 0 centre (-3 dB each), 100 right."""
    theta = (min(max(pan, -100.0), 100.0) + 100.0) / 200.0 * (math.pi / 2.0)
    # cos(pi/2) is 6e-17, not 0: a hard-panned channel must not leak.
    return round(math.cos(theta), 15), round(math.sin(theta), 15)


def balance_gains(pan: float) -> tuple[float, float]:
    """Balance of a stereo pair: -100 left only, 0 both at 0 dB, 100 right
    only. The side turned away from falls along the constant-power curve
    over the half travel, cos(|pan|/100 x pi/2): -3 dB at +/-50, silent at
    the end; the other side stays at 0 dB, so a balance never raises a
    level (nor pushes an output into its limiter)."""
    p = min(max(pan, -100.0), 100.0)
    # cos(pi/2) is 6e-17, not 0: a side turned fully away must not leak.
    away = round(math.cos(abs(p) / 100.0 * (math.pi / 2.0)), 15)
    return (away, 1.0) if p > 0 else (1.0, away)


# A stereo source (the main, a linked bus pair) enters a mono matrix as
# (L+R)/sqrt 2: a centre-panned source (-3 dB in each side) arrives at 0 dB.
STEREO_TO_MONO = 1.0 / math.sqrt(2.0)


def input_fields(v: Values, c: int, sr: float) -> dict[int, float]:
    """The ``ins`` parameter fields of input ``c``."""
    p = R.ch_prefix(c)
    sign = -1.0 if v[f"{p}/preamp/invert"] else 1.0
    delay = v[f"{p}/delay/time"] * sr / 1000.0 if v[f"{p}/delay/on"] else 0.0
    ratio = float(R.DYN_RATIOS[v[f"{p}/dyn/ratio"]])
    gate_range = v[f"{p}/gate/range"]
    return {
        L.IP_GAIN: sign * db_to_gain(v[f"{p}/preamp/trim"]),
        L.IP_DELAY: float(round(delay)),
        L.IP_GATE_ON: float(v[f"{p}/gate/on"]),
        L.IP_GATE_THR: db_to_gain(v[f"{p}/gate/thr"]),
        L.IP_GATE_RANGE: db_to_gain(-gate_range),
        L.IP_GATE_ATT: db_to_gain(db_per_sample(gate_range, v[f"{p}/gate/attack"], sr)),
        L.IP_GATE_HOLD: float(round(v[f"{p}/gate/hold"] * sr / 1000.0)),
        L.IP_GATE_REL: db_to_gain(
            -db_per_sample(gate_range, v[f"{p}/gate/release"], sr)
        ),
        L.IP_COMP_ON: float(v[f"{p}/dyn/on"]),
        L.IP_COMP_THR: v[f"{p}/dyn/thr"],
        L.IP_COMP_RATIO: ratio,
        L.IP_COMP_KNEE: v[f"{p}/dyn/knee"],
        L.IP_COMP_ATT: one_pole(v[f"{p}/dyn/attack"], sr),
        L.IP_COMP_REL: one_pole(v[f"{p}/dyn/release"], sr),
        L.IP_COMP_MAKEUP: v[f"{p}/dyn/mgain"],
    }


# A switched-off filter is the same filter with neutral settings (a cut at
# 1 Hz, a 0 dB bell), not a different topology: the audio plane ramps
# coefficients, and ramping between filters of one family is click-free
# where ramping from a plain wire into a 100 Hz cut is not.
BYPASS_CUT_HZ = 1.0


def hpf_coeffs(v: Values, c: int, sr: float) -> np.ndarray:
    """The two high-pass sections of input ``c``, [2, 5]: a Butterworth
    of order 2, 3 or 4 (12, 18 or 24 dB/oct, as the X32 offers)."""
    p = R.ch_prefix(c)
    out = np.tile(design.IDENTITY, (L.N_HPF, 1))
    f0 = v[f"{p}/preamp/hpf"] if v[f"{p}/preamp/hpon"] else BYPASS_CUT_HZ
    slope = R.HPF_SLOPES[v[f"{p}/preamp/hpslope"]]
    if slope == "24":
        for k, q in enumerate(design.BUTTERWORTH4_Q):
            out[k] = design.high_pass(sr, f0, q)
    elif slope == "18":
        out[0] = design.high_pass_1(sr, f0)
        out[1] = design.high_pass(sr, f0, design.BUTTERWORTH3_Q)
    else:
        out[0] = design.high_pass(sr, f0, design.BUTTERWORTH2_Q)
    return out


def band_coeffs(
    kind: str, sr: float, f0: float, gain_db: float, q: float
) -> np.ndarray:
    """One EQ band of the X32's band types."""
    if kind == "LCut":
        return design.high_pass(sr, f0, design.BUTTERWORTH2_Q)
    if kind == "HCut":
        return design.low_pass(sr, f0, design.BUTTERWORTH2_Q)
    if kind == "LShv":
        return design.low_shelf(sr, f0, gain_db, q)
    if kind == "HShv":
        return design.high_shelf(sr, f0, gain_db, q)
    return design.peaking(sr, f0, gain_db, q)


def eq_coeffs(v: Values, prefix: str, bands: int, sr: float) -> np.ndarray:
    """All bands of the EQ at ``prefix``; neutral bands when the EQ is off."""
    out = np.empty((bands, 5))
    on = v[f"{prefix}/eq/on"]
    for k in range(bands):
        b = f"{prefix}/eq/{k + 1}"
        kind = R.EQ_TYPES[v[f"{b}/type"]]
        f0, gain, q = v[f"{b}/f"], v[f"{b}/g"], v[f"{b}/q"]
        if not on:
            f0, gain = (BYPASS_CUT_HZ if kind == "LCut" else f0), 0.0
        out[k] = (
            design.IDENTITY
            if (kind == "HCut" and not on)
            else band_coeffs(kind, sr, f0, gain, q)
        )
    return out


def notch_coeffs(v: Values, extra: str, n_notch: int, sr: float) -> np.ndarray:
    """The feedback notch bank at ``extra`` (``/ls/bus/NN`` or ``/ls/main/st``)."""
    out = np.empty((n_notch, 5))
    for k in range(n_notch):
        n = f"{extra}/notch/{k + 1:02d}"
        depth = v[f"{n}/depth"] if v[f"{n}/on"] else 0.0
        out[k] = design.notch(sr, v[f"{n}/f"], depth, v[f"{n}/width"])
    return out


MAX_LEVEL_DB = 10.0  # a fader's top, which no DCA offset takes a strip past


def strip_fader_db(v: Values, prefix: str) -> float:
    """The fader of the strip at ``prefix`` with its DCAs' offsets added, at
    most +10 dB as on an X32: the level its post-fader paths get (pre-fader
    sends ignore both)."""
    return min(MAX_LEVEL_DB, v[f"{prefix}/mix/fader"] + groups.dca_offset_db(v, prefix))


class Topology:
    """Which addresses drive which outputs (bus links fold pairs together)."""

    def __init__(self, n_in: int, n_bus: int) -> None:
        self.n_in, self.n_bus = n_in, n_bus
        self.n_out = L.n_outputs(n_bus)
        self.n_mix = self.n_out - L.N_MTX  # the first stage (the mix's columns)
        self.main_l, self.main_r = L.main_outputs(n_bus)
        self.cue_l, self.cue_r = L.cue_outputs(n_bus)
        self.mono = L.mono_output(n_bus)
        self.matrices = L.matrix_outputs(n_bus)
        self.sources = R.matrix_sources(n_bus)

    def linked(self, v: Values, b: int) -> bool:
        """Whether bus ``b`` (0-based) is half of a stereo-linked pair."""
        first = b - b % 2
        key = f"/config/buslink/{first + 1}-{first + 2}"
        return first + 1 < self.n_bus and bool(v.get(key, 0))

    def prefixes(self, v: Values, o: int) -> tuple[str, str]:
        """X32 prefix and /ls prefix whose values drive output ``o``."""
        b = o - o % 2 if o < self.n_bus and self.linked(v, o) else o
        return R.out_prefixes(b, self.n_bus)

    def partner(self, v: Values, o: int) -> int:
        """The output whose limiter gain ``o`` shares, or -1."""
        pairs = ((self.main_l, self.main_r), (self.cue_l, self.cue_r))
        for a, b in pairs:
            if o in (a, b):
                return b if o == a else a
        if o < self.n_bus and self.linked(v, o):
            return o + 1 if o % 2 == 0 else o - 1
        return -1

    def balance(self, v: Values, o: int) -> float:
        """Output ``o``'s side of its pair's balance (1.0 for a mono output)."""
        if o in (self.main_l, self.main_r):
            return balance_gains(v["/main/st/mix/pan"])[o - self.main_l]
        if o < self.n_bus and self.linked(v, o):
            return balance_gains(v[f"{self.prefixes(v, o)[0]}/mix/pan"])[o % 2]
        return 1.0

    def output_fields(self, v: Values, o: int, sr: float) -> dict[int, float]:
        """The ``outs`` parameter fields of output ``o``."""
        if o in (self.cue_l, self.cue_r):
            # The cue (headphone) bus: level comes from the solo level in the
            # matrix; its limiter only guards against full scale.
            return {
                L.OP_GAIN: 1.0, L.OP_DELAY: 0.0, L.OP_LIM_ON: 1.0, L.OP_LIM_CEIL: 1.0,
                L.OP_LIM_REL: one_pole(60.0, sr), L.OP_LIM_TP: 0.0,
                L.OP_LIM_LINK: float(self.partner(v, o)),
            }  # fmt: skip
        x32, extra = self.prefixes(v, o)
        on = v[f"{x32}/mix/on"] and not groups.group_muted(v, x32)
        gain = db_to_gain(strip_fader_db(v, x32)) * self.balance(v, o)
        return {
            L.OP_GAIN: gain if on else 0.0,
            L.OP_DELAY: float(round(v[f"{extra}/delay/time"] * sr / 1000.0)),
            L.OP_LIM_ON: float(v[f"{extra}/limiter/on"]),
            L.OP_LIM_CEIL: db_to_gain(v[f"{extra}/limiter/ceiling"]),
            L.OP_LIM_REL: one_pole(v[f"{extra}/limiter/release"], sr),
            L.OP_LIM_TP: float(v[f"{extra}/limiter/truepeak"]),
            L.OP_LIM_LINK: float(self.partner(v, o)),
        }

    def members(self, v: Values, target: R.Target, k: int) -> tuple[list, list]:
        """The inputs and the outputs that DCA ``k`` (``target`` DCA) or mute
        group ``k`` (``target`` MUTE_GROUP) acts on; a linked bus pair by its
        odd bus's membership, as it plays by its settings."""
        of = groups.dcas_of if target is R.Target.DCA else groups.mute_groups_of
        ins = [c for c in range(self.n_in) if k in of(v, R.ch_prefix(c))]
        outs = [o for o in range(self.n_out) if o not in (self.cue_l, self.cue_r)
                and k in of(v, self.prefixes(v, o)[0])]  # fmt: skip
        return ins, outs

    def soloing(self, v: Values) -> bool:
        return any(v[a] for a in groups.solo_addresses(self.n_in))

    def soloed(self, v: Values, c: int) -> bool:
        """Input ``c`` is soloed: its own switch, or a DCA's it belongs to
        (as on the X32, soloing a DCA solos its members)."""
        return bool(v[groups.solo_address(c)]) or any(
            v[groups.dca_solo_address(k)] for k in groups.dcas_of(v, R.ch_prefix(c))
        )

    def matrix_row(self, v: Values, c: int, soloing: bool) -> np.ndarray:
        """Gains from input ``c`` into every mix column (buses, main, cue,
        mono)."""
        p = R.ch_prefix(c)
        row = np.zeros(self.n_mix)
        on = float(v[f"{p}/mix/on"] and not groups.group_muted(v, p))
        fader = db_to_gain(strip_fader_db(v, p))
        pl, pr = pan_gains(v[f"{p}/mix/pan"])
        if v[f"{p}/mix/st"]:
            row[self.main_l] = on * fader * pl
            row[self.main_r] = on * fader * pr
        if v[f"{p}/mix/mono"]:
            # Post-fader, as the X32's LR+M mode.
            row[self.mono] = on * fader * db_to_gain(v[f"{p}/mix/mlevel"])
        for b in range(self.n_bus):
            first = b - b % 2
            src = first if self.linked(v, b) else b
            s = f"{p}/mix/{src + 1:02d}"
            tap = v[f"{p}/mix/{first + 1:02d}/type"]
            g = on * float(v[f"{s}/on"]) * db_to_gain(v[f"{s}/level"])
            if tap >= R.PRE_FADER_TYPES:
                g *= fader
            if self.linked(v, b):
                g *= pan_gains(v[f"{p}/mix/{first + 1:02d}/pan"])[b % 2]
            row[b] = g
        if soloing and self.soloed(v, c):
            level = db_to_gain(v["/config/solo/level"])
            if R.SOLO_MODES[v["/config/solo/chmode"]] == "PFL":
                row[self.cue_l] = row[self.cue_r] = level
            else:
                row[self.cue_l] = on * fader * pl * level
                row[self.cue_r] = on * fader * pr * level
        return row

    def oscillator(self, v: Values) -> tuple[np.ndarray, float, float]:
        """Mix row of the oscillator, its type code and frequency."""
        row = np.zeros(self.n_mix)
        if not v["/ls/osc/on"]:
            return row, 0.0, v["/config/osc/f1"]
        g = db_to_gain(v["/config/osc/level"])
        dest = v["/config/osc/dest"]
        if dest < self.n_bus:
            row[dest] = g
            if self.linked(v, dest):
                row[dest ^ 1] = g
        else:
            side = dest - self.n_bus  # 0 L, 1 R, 2 L+R
            if side in (0, 2):
                row[self.main_l] = g
            if side in (1, 2):
                row[self.main_r] = g
        return row, 1.0 + v["/config/osc/type"], v["/config/osc/f1"]

    def matrix_column(self, v: Values, m: int) -> np.ndarray:
        """Gains from every first-stage output (after its EQ and fader) into
        matrix ``m`` (0-based): the buses (a linked pair by its odd bus's
        sends), the main and the mono bus."""
        col = np.zeros(self.n_mix)
        for o, src, _ in self.sources:
            stereo = o == self.main_l or (o < self.n_bus and self.linked(v, o))
            if o < self.n_bus:
                src = self.prefixes(v, o)[0]
            s = f"{src}/mix/{m + 1:02d}"
            g = float(v[f"{s}/on"]) * db_to_gain(v[f"{s}/level"])
            if stereo:
                g *= STEREO_TO_MONO
            col[o] = g
            if o == self.main_l:
                col[self.main_r] = g
        return col

"""Memory layout shared by the control plane and the audio plane.

All engine memory is allocated once, here, before audio starts. The audio
callback receives one pointer (``hdr``, an int64 array) and finds every
other array through the addresses stored in it. Field indices below are the
only vocabulary the two planes share; nothing else crosses between them.

Parameters travel control -> audio through a mailbox: the control plane
fills the ``mail_*`` arrays' slot ``SLOT_MAIL``, then bumps ``hdr[H_SEQ]``
with release ordering; the callback, at the next block boundary, sees
``H_SEQ != H_ACK``, takes the whole set at once and stores ``H_ACK``. The
control plane never writes a slot while it is unread, so a set is never
half-read.

A scene GO has a slot of its own, ``SLOT_GO``, filled ahead of time and
published by one store to ``H_GO``: it never waits behind the mailbox. The
callback takes a GO before the mailbox; a mailbox set carries in
``H_MAIL_GO`` the number of GOs it was derived after, so one derived before
the latest GO is passed over (the control plane publishes one derived after
it), and one derived after a GO the callback has not seen yet waits a block.
"""

from dataclasses import dataclass, field

import numpy as np

from livesound.audio import afc
from livesound.audio.afc import AfcState

# --- int64 header: protocol, counters, addresses ----------------------------
H_SEQ = 0  # change sets published by the control plane
H_ACK = 1  # change sets taken by the audio plane
H_METER_REQ = 2  # meter resets requested by the reader
H_METER_ACK = 3  # meter resets done by the audio plane
H_BLOCKS = 4  # callbacks run
H_FRAMES = 5  # frames processed
H_XRUNS = 6  # blocks PortAudio flagged as under/overflow
H_CB_MIN = 7  # callback time, CPU cycles
H_CB_MAX = 8
H_CB_SUM = 9
H_RNG = 10  # xorshift state for the pink-noise oscillator
H_FAULTS = 11  # blocks whose output went non-finite (state was reset)
H_CLOCK = 12  # absolute sample counter (drives the meter and ramp clocks)
H_NI = 13  # dims: inputs, buses, physical ins/outs, ring sizes
H_NB = 14
H_PHYS_IN = 15
H_PHYS_OUT = 16
H_MAX_BLOCK = 17
H_DLY_RING = 18
H_LA_RING = 19
H_TSC_MHZ = 20  # cycle-counter ticks per microsecond
H_N_LANES = 21  # output filter-bank width
H_TAP_W = 22  # frames written to the output taps since start
H_GETTID = 23  # address of the C library's gettid(), or 0
H_AUDIO_TID = 24  # kernel thread id of the thread running the callback
H_STOP = 25  # set to stop the virtual device's loop
H_GO = 26  # scene GOs published by the control plane (SLOT_GO)
H_GO_ACK = 27  # GOs taken by the audio plane
H_MAIL_GO = 28  # GOs published before the mailbox's set was derived
H_GO_BLOCK = 29  # value of H_BLOCKS when the last GO was taken
H_AFC_PATHS = 30  # adaptive feedback cancellers: mic -> output paths (0: none)
H_AFC_BLOCK = 31  # the cancellers' partition, frames
H_AFC_DELAY = 32  # their decorrelation delay, samples
H_ADDR = 33  # first array address; one slot per name in ARRAYS
# One adaptive feedback canceller per path (``livesound.audio.afc``): the
# path map, its switches, its meters, then every ``afc.AfcState`` field with
# a leading path axis.
AFC_ARRAYS = (
    "afc_map", "afc_ctl", "afc_meter",
    *(f"afc_{name}" for name in AfcState._fields),
)  # fmt: skip
ARRAYS = (
    "glob", "ins", "outs", "bq_in", "bq_in_z", "bq_in_ramp", "bq_out", "bq_out_z",
    "bq_out_ramp", "mix", "dly_in", "dly_out", "la_x", "la_g", "la_h", "la_s",
    "work_in", "work_out", "work_gr", "in_map", "out_map", "tp_fir", "hist",
    "mail_glob", "mail_ins", "mail_outs", "mail_bq_in", "mail_bq_out", "mail_mix",
    "taps", "mtx", "bq_mtx", "bq_mtx_z", "bq_mtx_ramp", "work_mtx", "mail_mtx",
    "mail_bq_mtx",
) + AFC_ARRAYS  # fmt: skip
# Position of each array in the state tuple the kernels take.
(
    A_GLOB, A_INS, A_OUTS, A_BQ_IN, A_BQ_IN_Z, A_BQ_IN_RAMP, A_BQ_OUT, A_BQ_OUT_Z,
    A_BQ_OUT_RAMP, A_MIX, A_DLY_IN, A_DLY_OUT, A_LA_X, A_LA_G, A_LA_H, A_LA_S,
    A_WORK_IN, A_WORK_OUT, A_WORK_GR, A_IN_MAP, A_OUT_MAP, A_TP_FIR, A_HIST,
    A_MAIL_GLOB, A_MAIL_INS, A_MAIL_OUTS, A_MAIL_BQ_IN, A_MAIL_BQ_OUT, A_MAIL_MIX,
    A_TAPS, A_MTX, A_BQ_MTX, A_BQ_MTX_Z, A_BQ_MTX_RAMP, A_WORK_MTX, A_MAIL_MTX,
    A_MAIL_BQ_MTX,
) = range(len(ARRAYS) - len(AFC_ARRAYS))  # fmt: skip
# The cancellers' arrays: the path map, switches, meters, then ``afc.AfcState``.
(
    A_AFC_MAP, A_AFC_CTL, A_AFC_METER, A_AFC_W, A_AFC_X, A_AFC_XW, A_AFC_POWER,
    A_AFC_U_LAST, A_AFC_UW_LAST, A_AFC_ZU, A_AFC_ZE, A_AFC_A, A_AFC_FRAME,
    A_AFC_WINDOW, A_AFC_WFRAME, A_AFC_R, A_AFC_LEV, A_AFC_TW, A_AFC_REV,
    A_AFC_SPLIT, A_AFC_Z, A_AFC_SPEC, A_AFC_T, A_AFC_WORK, A_AFC_PARAMS,
    A_AFC_COUNTERS, A_AFC_DLINE, A_AFC_GUARD,
) = range(A_MAIL_BQ_MTX + 1, len(ARRAYS))  # fmt: skip
N_HDR = H_ADDR + len(ARRAYS)
MAILBOX = ("mail_glob", "mail_ins", "mail_outs", "mail_bq_in", "mail_bq_out",
           "mail_mix", "mail_mtx", "mail_bq_mtx")  # fmt: skip
SLOT_MAIL, SLOT_GO = 0, 1  # first axis of every mailbox array
N_SLOTS = 2

# --- glob: engine-wide scalars ----------------------------------------------
G_OSC_TYPE = 0  # param: 0 off, 1 sine, 2 pink noise
G_OSC_FREQ = 1  # param: Hz
G_CUE_MAIN = 2  # param: 1 = nothing soloed, the cue bus follows the main
N_GLOB_PARAMS = 3
G_SR = 3  # sample rate
G_GAIN_RAMP = 4  # samples a gain change takes
G_COEF_RAMP = 5  # samples a filter change takes
G_LOOKAHEAD = 6  # the longest output's limiter latency, samples
G_TP_DELAY = 7  # true-peak detector delay, samples
G_MIX_LEFT = 8  # mix (and matrix send) ramp samples left
G_GAIN_LEFT = 9  # strip gain ramps samples left
G_OSC_PHASE = 10
G_PINK = 11  # 7 pink-noise filter states
G_DLY_W = 18  # delay-line write index
G_LA_W = 19  # limiter ring write index
G_MS_COEF = 20  # RMS meter smoothing per sample
G_GATE_FALL = 21  # per-sample fall of the gates' key detector
N_GLOB = 22

# --- the gate's and the compressor's rows of ins -----------------------------
# Each owns a contiguous range of parameter rows and one of state rows (the
# state, then its meter); its kernel takes a range as one block and finds a
# row by the offsets named here. The absolute rows below are built from them.
GATE_ON, GATE_THR, GATE_RANGE, GATE_ATT, GATE_HOLD, GATE_REL = range(6)
N_GATE_PARAMS = 6
GATE_ENV, GATE_GAIN, GATE_HOLD_LEFT, GATE_GR = range(4)
N_GATE_STATE = 4
COMP_ON, COMP_THR, COMP_RATIO, COMP_KNEE, COMP_ATT, COMP_REL, COMP_MAKEUP = range(7)
N_COMP_PARAMS = 7
COMP_GAIN, COMP_GR = range(2)
N_COMP_STATE = 2

# --- ins: per input channel, [field, channel] -------------------------------
IP_GAIN = 0  # trim x polarity, linear
IP_DELAY = 1  # samples
IP_GATE = 2  # the gate's parameters
IP_GATE_ON = IP_GATE + GATE_ON
IP_GATE_THR = IP_GATE + GATE_THR  # linear
IP_GATE_RANGE = IP_GATE + GATE_RANGE  # gain when closed, linear
IP_GATE_ATT = IP_GATE + GATE_ATT  # gain factor per sample while opening (attack)
IP_GATE_HOLD = IP_GATE + GATE_HOLD  # samples
IP_GATE_REL = IP_GATE + GATE_REL  # gain factor per sample while closing
IP_COMP = IP_GATE + N_GATE_PARAMS  # the compressor's parameters
IP_COMP_ON = IP_COMP + COMP_ON
IP_COMP_THR = IP_COMP + COMP_THR  # dB
IP_COMP_RATIO = IP_COMP + COMP_RATIO
IP_COMP_KNEE = IP_COMP + COMP_KNEE  # dB
IP_COMP_ATT = IP_COMP + COMP_ATT  # one-pole coefficients per sample
IP_COMP_REL = IP_COMP + COMP_REL
IP_COMP_MAKEUP = IP_COMP + COMP_MAKEUP  # dB
N_IN_PARAMS = IP_COMP + N_COMP_PARAMS
IS_GAIN = N_IN_PARAMS  # current trim gain and its ramp step
IS_GAIN_STEP = IS_GAIN + 1
IS_D_OLD = IS_GAIN + 2  # delay crossfade: old tap, new tap, position 0..1
IS_D_NEW = IS_GAIN + 3
IS_D_XF = IS_GAIN + 4
IS_GATE = IS_GAIN + 5  # the gate's state
IS_GATE_ENV = IS_GATE + GATE_ENV  # key detector level
IS_GATE_G = IS_GATE + GATE_GAIN  # gain, linear: 1 = open
IS_GATE_HOLD = IS_GATE + GATE_HOLD_LEFT  # samples of hold left
IM_GATE_GR = IS_GATE + GATE_GR  # lowest gate gain, linear
IS_COMP = IS_GATE + N_GATE_STATE  # the compressor's state
IS_COMP_G = IS_COMP + COMP_GAIN  # smoothed gain, dB
IM_COMP_GR = IS_COMP + COMP_GR  # lowest compressor gain, dB (<= 0)
IS_MS = IS_COMP + N_COMP_STATE  # running mean square of the input meter
IM_PEAK = IS_MS + 1  # meters: since the last reset
IM_RMS = IS_MS + 2
IM_CLIP = IS_MS + 3  # input samples at or above full scale
N_IN_FIELDS = IS_MS + 4

# --- outs: per output (buses, main L/R, cue L/R, mono, matrices) -----------
OP_GAIN = 0  # master fader x mute, linear
OP_DELAY = 1  # alignment delay, samples
OP_LIM_ON = 2
OP_LIM_CEIL = 3  # linear
OP_LIM_REL = 4  # one-pole coefficient per sample
OP_LIM_TP = 5  # 1: true-peak detection (4x oversampled)
OP_LIM_LINK = 6  # output whose limiter gain this one shares (stereo), or -1
N_OUT_PARAMS = 7
OS_GAIN = 7
OS_GAIN_STEP = 8
OS_D_OLD = 9
OS_D_NEW = 10
OS_D_XF = 11
OS_LIM_G = 12
OS_BOX = 13  # running sum of the limiter's box filter
OS_PREFIX = 14  # running minimum of the limiter's current block
OS_TP_PREV = 15  # last inter-sample peak
OS_CEIL = 16  # ceiling the detector uses (1.0 when the limiter is off)
OS_CLIP = 17  # safety-clip level: the highest ceiling still in the delay line
OS_CLIP_HOLD = 18  # samples until OS_CLIP may fall to OS_CEIL
OS_MS = 19
OM_PEAK = 20
OM_RMS = 21
OM_LIM_GR = 22  # lowest limiter gain, linear
OM_CLIPS = 23  # samples the safety clip had to touch
OS_LA = 24  # this output's limiter latency, samples (fixed at start)
OS_LIM_POS = 25  # position in the limiter's sliding-minimum block
N_OUT_FIELDS = 26

# --- biquad banks ------------------------------------------------------------
N_HPF = 2  # two sections: 12, 18 (first order + second) or 24 dB/oct
N_IN_EQ = 4
N_OUT_EQ = 6
N_NOTCH = 16
S_IN = N_HPF + N_IN_EQ
S_OUT = N_OUT_EQ + N_NOTCH
C_CUR, C_TGT, C_STEP = 0, 1, 2  # first axis of bq_* and mix

GAIN_RAMP_S = 0.010  # every gain change ramps linearly over this long
COEF_RAMP_S = 0.020  # and every filter change over this long
GATE_DETECT_S = 0.005  # fall time of the gates' key detector
TAP_RING = 1 << 17  # output taps: ~2.7 s at 48 kHz of every output, float32
HIST_US = 4096  # callback-time histogram: 1 us bins, last bin = overflow
TP_TAPS = 16  # per phase of the 4x true-peak interpolator
TP_DELAY = TP_TAPS // 2

# --- adaptive feedback cancellers, per path ----------------------------------
# F̂'s length from a lag of one block: 341 ms at 48 kHz. A learnt F̂'s margin
# is capped by the path's tail past it. With 171 ms the bench's +10 dB pushes
# ended +2.3 to +5.1 dB (music) and +4.3 to +11.2 dB (speech, ringing 8.8 % in
# the small room); with 341 ms +4.1 to +5.3 and +7.4 to +14.5 dB. 683 ms did
# worse in the small room (+5.4 dB on speech): a longer filter learns each
# tap more slowly (BENCHMARKS.md, "Issue 12, phase 6").
AFC_TAPS = 16384
# Before it is learnt from a test signal, F̂ uses only its first partitions,
# this many taps: a canceller starting from nothing in a show converges at a
# rate its length divides, and 85 ms held the loops that 171 ms let howl
# (tests/test_afc_engine.py).
AFC_COLD_TAPS = 4096
# but never fewer partitions than this: phase 1 tuned the step size and the
# power smoothing at 64, and 32 partitions of 128 (the same 4096 taps) let a
# closed loop howl that 64 of 128 held (tests/test_afc_engine.py).
AFC_MIN_PARTITIONS = 64
AFC_ORDER = 16  # the prewhitening predictor's order
AFC_FRAME = 960  # and the samples it is fitted to
# The mic's decorrelation delay while a path of it is on: without it F̂ learnt
# a biased path; 5 ms held speech loops (BENCHMARKS.md, "AFC, phase 1").
AFC_DELAY_S = 0.005
AFC_MIC, AFC_OUT = range(2)  # afc_map: the mic's input channel, the output
# afc_ctl (int64), written by the control plane with release stores: the
# path on (1) or bypassed (0); resets asked for, and those done by the audio
# plane (as H_METER_REQ / H_METER_ACK); learning from a test signal (1).
AC_ON, AC_RESET_REQ, AC_RESET_ACK, AC_LEARN = range(4)
N_AFC_CTL = 4
# afc_meter: mean square of the mic and of the corrected mic (smoothed per
# block by AM_COEF; their ratio is the ERLE), 1 while not adapting (frozen).
AM_MIC, AM_ERR, AM_FROZEN, AM_COEF = range(4)
N_AFC_METER = 4
AFC_METER_S = 1.0  # the ERLE's time constant


def afc_partitions(taps: int, block: int) -> int:
    """Partitions of ``block`` frames that hold ``taps`` taps of F̂ (at least
    ``AFC_MIN_PARTITIONS``); ``array_shapes`` sizes F̂ so for ``AFC_TAPS``."""
    return max(AFC_MIN_PARTITIONS, taps // block)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def true_peak_fir() -> np.ndarray:
    """Phases 1..3 of a 4x interpolator (Kaiser-windowed sinc), [3, TP_TAPS].

    Tap k of a phase multiplies ``x[c - TP_DELAY + 1 + k]`` and yields the
    value at ``c + phase/4``. 16 taps with beta 4 keep every phase within
    0.15 dB of flat up to 0.4 fs (19.2 kHz at 48 kHz); above that it droops
    (-2.3 dB at 0.45 fs), as any interpolator of this length must.
    """
    k = np.arange(TP_TAPS) - (TP_DELAY - 1)
    window = np.kaiser(4 * TP_TAPS + 1, 4.0)
    fir = np.empty((3, TP_TAPS))
    for p in range(1, 4):
        t = k - p / 4.0
        w = window[(t * 4 + 2 * TP_TAPS).round().astype(int)]
        h = np.sinc(t) * w
        fir[p - 1] = h / h.sum()
    return fir


# Outputs in engine order: the buses, then these (main L/R, cue L/R, the
# mono/centre bus), then the matrices. The first stage (everything fed by
# the input mix) ends with M; the matrices, fed from the first stage's
# processed outputs, follow (``matrix_outputs``).
OUTPUT_EXTRA = ("L", "R", "CL", "CR", "M")
N_OUTPUT_EXTRA = len(OUTPUT_EXTRA)
N_MTX = 6  # matrix outputs, as on the X32
MTX_LANES = 8  # the matrices' send and filter-bank width: whole vectors


def n_outputs(n_bus: int) -> int:
    """Outputs of an engine with ``n_bus`` mix buses (the buses, main, cue,
    mono, matrices)."""
    return n_bus + N_OUTPUT_EXTRA + N_MTX


def main_outputs(n_bus: int) -> tuple[int, int]:
    """The engine outputs of main L and R."""
    return n_bus + OUTPUT_EXTRA.index("L"), n_bus + OUTPUT_EXTRA.index("R")


def cue_outputs(n_bus: int) -> tuple[int, int]:
    """The engine outputs of cue (headphone) L and R."""
    return n_bus + OUTPUT_EXTRA.index("CL"), n_bus + OUTPUT_EXTRA.index("CR")


def mono_output(n_bus: int) -> int:
    """The engine output of the mono/centre bus."""
    return n_bus + OUTPUT_EXTRA.index("M")


def matrix_outputs(n_bus: int) -> range:
    """The engine outputs of the matrices, MTX1 first."""
    first = n_bus + N_OUTPUT_EXTRA
    return range(first, first + N_MTX)


def output_names(n_bus: int) -> list[str]:
    """Names of the outputs in engine order: 1..n_bus, L, R, CL, CR, M,
    MTX1..MTX6."""
    return ([str(b + 1) for b in range(n_bus)] + list(OUTPUT_EXTRA)
            + [f"MTX{m + 1}" for m in range(N_MTX)])  # fmt: skip


# Element type of the arrays that are not float64.
ARRAY_DTYPES = {"in_map": np.int64, "out_map": np.int64, "hist": np.int64,
                "taps": np.float32, "afc_map": np.int64, "afc_ctl": np.int64,
                "afc_rev": np.int64, "afc_counters": np.int64,
                **{f"afc_{name}": np.complex128
                   for name in ("w", "x", "xw", "tw", "split", "z", "spec")}}  # fmt: skip


def array_shapes(hdr):
    """The shape of every array, in ARRAYS order, from the sizes in ``hdr``.

    The one statement of the shapes: ``EngineMemory`` allocates by it and
    the kernels compile this very function to find the arrays through the
    header (``kernels.state_from_header``), so it is plain integer
    arithmetic, nothing numba could not compile.
    """
    ni, nb, nl = hdr[H_NI], hdr[H_NB], hdr[H_N_LANES]
    nm = nb + N_OUTPUT_EXTRA  # mix columns: the first stage's outputs
    no = nm + N_MTX
    blk, dly, la = hdr[H_MAX_BLOCK], hdr[H_DLY_RING], hdr[H_LA_RING]
    na, ab = hdr[H_AFC_PATHS], hdr[H_AFC_BLOCK]
    ap, ak = max(AFC_MIN_PARTITIONS, AFC_TAPS // ab), ab + 1  # partitions, bins
    return (
        (N_GLOB,),  # glob
        (N_IN_FIELDS, ni),  # ins
        (N_OUT_FIELDS, no),  # outs
        (3, S_IN, 5, ni),  # bq_in
        (S_IN, 2, ni),  # bq_in_z
        (S_IN,),  # bq_in_ramp
        (3, S_OUT, 5, nl),  # bq_out
        (S_OUT, 2, nl),  # bq_out_z
        (S_OUT,),  # bq_out_ramp
        (3, ni + 1, nm),  # mix
        (dly, ni),  # dly_in
        (dly, no),  # dly_out
        (la, no),  # la_x
        (la, no),  # la_g
        (la, no),  # la_h
        (la, no),  # la_s
        (blk, ni + 1),  # work_in
        (blk, -(-max(no, nl) // 8) * 8),  # work_out: rows of whole vectors
        (blk, ni),  # work_gr
        (hdr[H_PHYS_IN],),  # in_map
        (hdr[H_PHYS_OUT],),  # out_map
        (3, TP_TAPS),  # tp_fir
        (HIST_US,),  # hist
        (N_SLOTS, N_GLOB_PARAMS),  # mail_glob
        (N_SLOTS, N_IN_PARAMS, ni),  # mail_ins
        (N_SLOTS, N_OUT_PARAMS, no),  # mail_outs
        (N_SLOTS, S_IN, 5, ni),  # mail_bq_in
        (N_SLOTS, S_OUT, 5, nl),  # mail_bq_out
        (N_SLOTS, ni + 1, nm),  # mail_mix
        (TAP_RING, no),  # taps
        (3, nm, MTX_LANES),  # mtx: first-stage outputs into the matrices
        (3, S_OUT, 5, MTX_LANES),  # bq_mtx
        (S_OUT, 2, MTX_LANES),  # bq_mtx_z
        (S_OUT,),  # bq_mtx_ramp
        (blk, MTX_LANES),  # work_mtx
        (N_SLOTS, nm, MTX_LANES),  # mail_mtx
        (N_SLOTS, S_OUT, 5, MTX_LANES),  # mail_bq_mtx
        (na, 2),  # afc_map
        (na, N_AFC_CTL),  # afc_ctl
        (na, N_AFC_METER),  # afc_meter
        (na, ap, ak),  # afc_w
        (na, ap, ak),  # afc_x
        (na, ap, ak),  # afc_xw
        (na, ak),  # afc_power
        (na, ab),  # afc_u_last
        (na, ab),  # afc_uw_last
        (na, AFC_ORDER),  # afc_zu
        (na, AFC_ORDER),  # afc_ze
        (na, AFC_ORDER + 1),  # afc_a
        (na, AFC_FRAME),  # afc_frame
        (na, AFC_FRAME),  # afc_window
        (na, AFC_FRAME),  # afc_wframe
        (na, AFC_ORDER + 1),  # afc_r
        (na, AFC_ORDER + 1),  # afc_lev
        (na, ab // 2),  # afc_tw
        (na, ab),  # afc_rev
        (na, ak),  # afc_split
        (na, ab),  # afc_z
        (na, 2, ak),  # afc_spec
        (na, 2 * ab),  # afc_t
        (na, ab),  # afc_work
        (na, afc.N_PARAMS),  # afc_params
        (na, afc.N_COUNTERS),  # afc_counters
        (na, hdr[H_AFC_DELAY]),  # afc_dline
        (na, 3),  # afc_guard
    )


@dataclass(frozen=True)
class Dims:
    """Sizes fixed when the engine starts."""

    n_in: int = 32
    n_bus: int = 16
    sample_rate: int = 48000
    max_block: int = 1024
    phys_in: int = 32
    phys_out: int = 20
    lookahead_ms: float = 1.0
    max_delay_ms: float = 500.0
    # Per output, a shorter limiter lookahead than ``lookahead_ms`` (an
    # in-ear mix); () gives every output ``lookahead_ms``.
    out_lookahead_ms: tuple[float, ...] = ()
    # Adaptive feedback cancellers: (mic input channel, output) per path,
    # both 0-based, and their partition (a power of two): the audio plane
    # then runs in chunks of ``afc_block`` frames.
    afc_paths: tuple[tuple[int, int], ...] = ()
    afc_block: int = 64

    @property
    def n_out(self) -> int:
        """Outputs: the buses, main L, main R, cue L, cue R, mono, matrices.

        Every output runs the same chain (EQ, notches, gain, limiter,
        delay), so outputs with the same lookahead carry the same latency
        and stay aligned (a matrix takes its sources before their limiter
        and delay, so it adds no latency of theirs).
        """
        return n_outputs(self.n_bus)

    @property
    def n_mix(self) -> int:
        """Mix columns: the first stage's outputs (all but the matrices)."""
        return self.n_out - N_MTX

    @property
    def n_out_lanes(self) -> int:
        """The first stage's filter-bank width: whole vectors, so no scalar
        tail loop (the matrices have a bank of their own)."""
        return -(-self.n_mix // 8) * 8

    @property
    def mono(self) -> int:
        return mono_output(self.n_bus)

    @property
    def main_l(self) -> int:
        return main_outputs(self.n_bus)[0]

    @property
    def cue_l(self) -> int:
        return cue_outputs(self.n_bus)[0]

    @property
    def lookahead(self) -> int:
        """Limiter latency in samples, at least the true-peak detector's:
        every output's unless ``out_lookahead_ms`` says otherwise."""
        return self._samples(self.lookahead_ms)

    @property
    def lookaheads(self) -> tuple[int, ...]:
        """Each output's limiter latency in samples."""
        ms = self.out_lookahead_ms or (self.lookahead_ms,) * self.n_out
        return tuple(self._samples(m) for m in ms)

    def _samples(self, ms: float) -> int:
        return max(TP_DELAY + 1, round(ms * self.sample_rate / 1000))


@dataclass
class EngineMemory:
    """Every array the audio plane touches, allocated once."""

    dims: Dims
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    hdr: np.ndarray = field(default_factory=lambda: np.zeros(N_HDR, np.int64))

    def __post_init__(self) -> None:
        d = self.dims
        ni = d.n_in
        dly = _pow2_at_least(round(d.max_delay_ms * d.sample_rate / 1000) + 2)
        if d.out_lookahead_ms and len(d.out_lookahead_ms) != d.n_out:
            raise ValueError(f"out_lookahead_ms: {d.n_out} outputs, "
                             f"{len(d.out_lookahead_ms)} values")  # fmt: skip
        longest = max(d.lookaheads)
        la = _pow2_at_least(longest + TP_TAPS + 2)
        h = self.hdr
        h[H_NI], h[H_NB] = ni, d.n_bus
        h[H_PHYS_IN], h[H_PHYS_OUT] = d.phys_in, d.phys_out
        h[H_MAX_BLOCK], h[H_DLY_RING], h[H_LA_RING] = d.max_block, dly, la
        h[H_N_LANES] = d.n_out_lanes
        h[H_AFC_PATHS], h[H_AFC_BLOCK] = len(d.afc_paths), d.afc_block
        h[H_AFC_DELAY] = round(AFC_DELAY_S * d.sample_rate) if d.afc_paths else 0
        shapes = array_shapes(h)
        for name, shape in zip(ARRAYS, shapes, strict=True):
            dtype = ARRAY_DTYPES.get(name, np.float64)
            self.arrays[name] = np.zeros(tuple(int(n) for n in shape), dtype)
        h[H_RNG] = 0x2545F4914F6CDD1D
        h[H_CB_MIN] = np.iinfo(np.int64).max
        for k, name in enumerate(ARRAYS):
            h[H_ADDR + k] = self.arrays[name].ctypes.data
        a = self.arrays
        a["in_map"][:] = [c if c < ni else -1 for c in range(d.phys_in)]
        a["out_map"][:] = [o if o < d.n_out else -1 for o in range(d.phys_out)]
        a["tp_fir"][:] = true_peak_fir()
        g = a["glob"]
        g[G_SR] = d.sample_rate
        g[G_GAIN_RAMP] = max(1, round(GAIN_RAMP_S * d.sample_rate))
        g[G_COEF_RAMP] = max(1, round(COEF_RAMP_S * d.sample_rate))
        g[G_LOOKAHEAD] = longest
        g[G_TP_DELAY] = TP_DELAY
        g[G_MS_COEF] = 1.0 - np.exp(-1.0 / (0.3 * d.sample_rate))
        g[G_GATE_FALL] = 1.0 - np.exp(-1.0 / (GATE_DETECT_S * d.sample_rate))
        for bank in ("bq_in", "bq_out", "bq_mtx"):
            a[bank][:, :, 0, :] = 1.0  # identity filters: b0 = 1
            a[bank][C_STEP] = 0.0
            a[f"mail_{bank}"][:, :, 0, :] = 1.0

        a["outs"][OM_LIM_GR] = 1.0
        a["ins"][IM_GATE_GR] = 1.0
        a["ins"][IS_GATE_G] = 1.0  # a gate starts open, never from silence
        a["outs"][OS_LIM_G] = 1.0
        a["outs"][OS_CEIL] = 1.0
        a["outs"][OS_CLIP] = 1.0
        a["outs"][OS_LA] = d.lookaheads
        a["outs"][OS_BOX] = a["outs"][OS_LA] - TP_DELAY + 1
        a["la_g"][:] = 1.0
        a["la_h"][:] = 1.0
        a["la_s"][:] = 1.0
        a["outs"][OP_LIM_LINK] = -1
        a["mail_outs"][:, OP_LIM_LINK] = -1
        self._init_afc()

    def _init_afc(self) -> None:
        """Each path's canceller as ``afc.make_state`` makes it, on."""
        d, a = self.dims, self.arrays
        if not d.afc_paths:
            return
        if d.afc_block > d.max_block:
            raise ValueError(f"afc_block {d.afc_block}: at most {d.max_block}")
        partitions = int(array_shapes(self.hdr)[A_AFC_W][1])
        # A block that is not a power of two is refused here (ValueError).
        fresh = afc.make_state(d.afc_block, partitions, order=AFC_ORDER,
                               frame=AFC_FRAME, delay=int(self.hdr[H_AFC_DELAY]),
                               cold_partitions=afc_partitions(AFC_COLD_TAPS, d.afc_block))  # fmt: skip
        for name, value in zip(AfcState._fields, fresh, strict=True):
            a[f"afc_{name}"][:] = value
        a["afc_map"][:] = d.afc_paths
        a["afc_ctl"][:, AC_ON] = 1
        a["afc_meter"][:, AM_COEF] = 1.0 - np.exp(
            -d.afc_block / (AFC_METER_S * d.sample_rate)
        )

    def state(self) -> tuple:
        """The arrays in ARRAYS order, as the kernels take them."""
        return tuple(self.arrays[name] for name in ARRAYS)

    @property
    def latency(self) -> int:
        """Samples from input to the outputs at the engine's lookahead (all
        of them unless some have a shorter one; alignment delays excluded)."""
        return self.dims.lookahead

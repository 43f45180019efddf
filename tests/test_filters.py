"""Biquad design against the RBJ cookbook, and the engine running those filters.

(a) ``livesound.audio.design`` against the textbook: an independent numpy
implementation of the Audio EQ Cookbook formulas, and the analytic answers
(gain at the centre of a bell, half the shelf gain at the shelf frequency,
-3.01 dB at a Butterworth cutoff, notch depth and width).
(b) The engine really runs those filters: impulse responses through the real
compiled callback, compared with the textbook response of what was set.
"""

import math

import numpy as np
import pytest
from dsp_helpers import (
    SAMPLE_RATES,
    biquad_db,
    biquad_response,
    db,
    impulse_response,
    make_engine,
    outs_of,
)
from scipy.optimize import brentq
from scipy.signal import butter, freqz

from livesound.audio import design
from livesound.audio import layout as L
from livesound.control import derive
from livesound.control.registry import EQ_TYPES, HPF_SLOPES

BUTTERWORTH_Q = 1.0 / math.sqrt(2.0)
BUTTERWORTH4_Q = (
    1.0 / (2.0 * math.cos(math.pi / 8.0)),
    1.0 / (2.0 * math.cos(3.0 * math.pi / 8.0)),
)
MINUS_3DB = 10.0 * math.log10(0.5)  # -3.0103 dB

# ---------------------------------------------------------------------------
# The textbook: Robert Bristow-Johnson, "Cookbook formulae for audio EQ biquad
# filter coefficients", written out again here in numpy.
# ---------------------------------------------------------------------------


def rbj(kind: str, fs: float, f0: float, gain_db: float = 0.0, q: float = 0.7071):
    """Normalised ``[b0, b1, b2, a1, a2]`` straight from the cookbook."""
    big_a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * f0 / fs
    cs, sn = np.cos(w0), np.sin(w0)
    alpha = sn / (2.0 * q)
    sq = 2.0 * np.sqrt(big_a) * alpha
    if kind == "lpf":
        b = [(1 - cs) / 2, 1 - cs, (1 - cs) / 2]
        a = [1 + alpha, -2 * cs, 1 - alpha]
    elif kind == "hpf":
        b = [(1 + cs) / 2, -(1 + cs), (1 + cs) / 2]
        a = [1 + alpha, -2 * cs, 1 - alpha]
    elif kind == "peaking":
        b = [1 + alpha * big_a, -2 * cs, 1 - alpha * big_a]
        a = [1 + alpha / big_a, -2 * cs, 1 - alpha / big_a]
    elif kind == "lowshelf":
        ap, am = big_a + 1, big_a - 1
        b = [
            big_a * (ap - am * cs + sq),
            2 * big_a * (am - ap * cs),
            big_a * (ap - am * cs - sq),
        ]
        a = [ap + am * cs + sq, -2 * (am + ap * cs), ap + am * cs - sq]
    elif kind == "highshelf":
        ap, am = big_a + 1, big_a - 1
        b = [
            big_a * (ap + am * cs + sq),
            -2 * big_a * (am + ap * cs),
            big_a * (ap + am * cs - sq),
        ]
        a = [ap - am * cs + sq, 2 * (am - ap * cs), ap - am * cs - sq]
    else:
        raise ValueError(kind)
    return np.array([b[0], b[1], b[2], a[1], a[2]]) / a[0]


def rbj_band(kind: str, fs: float, f0: float, gain_db: float, q: float):
    """One X32 EQ band type, from the cookbook (cut bands are Butterworth)."""
    return {
        "LCut": lambda: rbj("hpf", fs, f0, q=BUTTERWORTH_Q),
        "HCut": lambda: rbj("lpf", fs, f0, q=BUTTERWORTH_Q),
        "LShv": lambda: rbj("lowshelf", fs, f0, gain_db, q),
        "HShv": lambda: rbj("highshelf", fs, f0, gain_db, q),
        "PEQ": lambda: rbj("peaking", fs, f0, gain_db, q),
        "VEQ": lambda: rbj("peaking", fs, f0, gain_db, q),
    }[kind]()


def rbj_notch(fs: float, f0: float, depth_db: float, width_oct: float):
    """A peaking cut ``width_oct`` wide between its half-depth points, with
    RBJ's BW -> Q relation for the bilinear transform (the w0/sin(w0) term)."""
    w0 = 2.0 * np.pi * f0 / fs
    q = 1.0 / (2.0 * np.sinh(np.log(2.0) / 2.0 * width_oct * w0 / np.sin(w0)))
    return rbj("peaking", fs, f0, -abs(depth_db), q)


def rbj_hpf(fs: float, f0: float, slope: str):
    """The textbook high-pass of a slope (12, 18 or 24 dB/oct): scipy's
    Butterworth of order slope/6, as [b0, b1, b2, a1, a2] sections."""
    sos = butter(int(slope) // 6, f0, "highpass", fs=fs, output="sos")
    return sos[:, [0, 1, 2, 4, 5]] / sos[:, [3]]


def centre_freqs(fs: float) -> list[float]:
    grid = (20.0, 47.0, 100.0, 320.0, 1000.0, 2500.0, 6300.0, 12000.0, 16000.0)
    return [f for f in grid + (20000.0,) if f < 0.45 * fs]


GAINS = (-15.0, -6.0, -1.0, 0.5, 6.0, 15.0)
QS = (0.3, 0.7, 2.0, 10.0)


# ---------------------------------------------------------------------------
# (a) design functions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_coefficients_match_the_cookbook(fs):
    for f0 in centre_freqs(fs):
        for q in QS:
            np.testing.assert_allclose(
                design.high_pass(fs, f0, q), rbj("hpf", fs, f0, q=q), 1e-12, 1e-14
            )
            np.testing.assert_allclose(
                design.low_pass(fs, f0, q), rbj("lpf", fs, f0, q=q), 1e-12, 1e-14
            )
            for g in GAINS:
                for name, fn in (
                    ("peaking", design.peaking),
                    ("lowshelf", design.low_shelf),
                    ("highshelf", design.high_shelf),
                ):
                    np.testing.assert_allclose(
                        fn(fs, f0, g, q),
                        rbj(name, fs, f0, g, q),
                        rtol=1e-12,
                        atol=1e-14,
                        err_msg=f"{name} f0={f0} g={g} q={q}",
                    )


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_peaking_gain_at_centre_and_unity_far_away(fs):
    for f0 in centre_freqs(fs):
        for g in GAINS:
            for q in QS:
                c = design.peaking(fs, f0, g, q)
                at = biquad_db(c, [f0, 0.0, fs / 2], fs)
                assert at[0] == pytest.approx(g, abs=0.01), (f0, g, q)
                # The bell returns to 0 dB at DC and Nyquist.
                assert at[1:] == pytest.approx([0.0, 0.0], abs=0.01), (f0, g, q)


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_shelf_full_gain_far_away_and_half_gain_at_f0(fs):
    for f0 in centre_freqs(fs):
        for g in GAINS:
            for q in (0.3, 0.7071, 1.0, 2.0):
                lo = biquad_db(design.low_shelf(fs, f0, g, q), [0.0, f0, fs / 2], fs)
                hi = biquad_db(design.high_shelf(fs, f0, g, q), [0.0, f0, fs / 2], fs)
                assert lo == pytest.approx([g, g / 2, 0.0], abs=0.01), (f0, g, q)
                assert hi == pytest.approx([0.0, g / 2, g], abs=0.01), (f0, g, q)


def butterworth_db(f, f0, fs, order, high):
    """Bilinear-transform Butterworth magnitude (prewarped at f0), dB."""
    ratio = np.tan(np.pi * np.asarray(f) / fs) / np.tan(np.pi * f0 / fs)
    ratio = 1.0 / ratio if high else ratio
    return -10.0 * np.log10(1.0 + ratio ** (2 * order))


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize("high", [True, False], ids=["hpf", "lpf"])
def test_butterworth_cutoff_and_slope(fs, high):
    fn = design.high_pass if high else design.low_pass
    for f0 in [f for f in centre_freqs(fs) if f >= 47.0]:
        two = fn(fs, f0, design.BUTTERWORTH2_Q)
        four = np.array([fn(fs, f0, q) for q in design.BUTTERWORTH4_Q])
        # -3.01 dB at f0, for the 2nd order and for the two 4th-order sections.
        assert biquad_db(two, f0, fs)[0] == pytest.approx(MINUS_3DB, abs=0.01)
        assert biquad_db(four, f0, fs)[0] == pytest.approx(MINUS_3DB, abs=0.01)
        # The whole response is the textbook (bilinear) Butterworth.
        f = np.geomspace(10.0, 0.49 * fs, 200)
        for order, c in ((2, two), (4, four)):
            want = butterworth_db(f, f0, fs, order, high)
            ok = want > -200.0
            np.testing.assert_allclose(biquad_db(c, f[ok], fs), want[ok], atol=1e-6)
        # 12 / 24 dB per octave far into the stop band (where the bilinear
        # frequency warping is still negligible).
        if high and 320.0 <= f0 <= 1000.0:
            for order, c in ((2, two), (4, four)):
                a, b = biquad_db(c, [f0 / 16, f0 / 8], fs)
                assert b - a == pytest.approx(6.0206 * order, abs=0.1)
        if not high and f0 <= 50.0:
            for order, c in ((2, two), (4, four)):
                a, b = biquad_db(c, [8 * f0, 16 * f0], fs)
                assert a - b == pytest.approx(6.0206 * order, abs=0.1)


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_first_order_high_pass_is_butterworth(fs):
    for f0 in [f for f in centre_freqs(fs) if f >= 47.0]:
        c = design.high_pass_1(fs, f0)
        assert c[2] == c[4] == 0.0  # a first-order section in a biquad slot
        b, a = butter(1, f0, "highpass", fs=fs)
        f = np.geomspace(10.0, 0.45 * fs, 40)
        _, want = freqz(b, a, worN=f, fs=fs)
        np.testing.assert_allclose(biquad_db(c, f, fs), db(want), atol=1e-6)


def test_butterworth4_section_qs():
    np.testing.assert_allclose(design.BUTTERWORTH4_Q, BUTTERWORTH4_Q, rtol=1e-12)
    np.testing.assert_allclose(design.BUTTERWORTH2_Q, BUTTERWORTH_Q, rtol=1e-12)


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_derived_input_hpf_is_butterworth(fs):
    v = {"/ch/01/preamp/hpon": 1, "/ch/01/preamp/hpf": 120.0}
    for k, slope in enumerate(HPF_SLOPES):
        v["/ch/01/preamp/hpslope"] = k
        c = derive.hpf_coeffs(v, 0, fs)
        order = int(slope) // 6
        f = np.geomspace(20.0, 20000.0, 50)
        np.testing.assert_allclose(
            biquad_db(c, f, fs), butterworth_db(f, 120.0, fs, order, True), atol=1e-6
        )


NOTCH_WIDTHS = (1 / 80, 1 / 40, 1 / 10, 1 / 3, 1.0)
NOTCH_DEPTHS = (-6.0, -20.0, -40.0)


def notch_grid(fs):
    for f0 in (100.0, 1000.0, 4000.0, 8000.0, 12000.0, 16000.0):
        for width in NOTCH_WIDTHS:
            # RBJ's own digital BW formula holds to ~1% up to 1/3 octave
            # anywhere below 16 kHz; a whole octave only up to 8 kHz.
            if width == 1.0 and f0 > 8000.0:
                continue
            for depth in NOTCH_DEPTHS:
                yield f0, width, depth


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_notch_depth_at_centre(fs):
    for f0, width, depth in notch_grid(fs):
        c = design.notch(fs, f0, depth, width)
        assert biquad_db(c, f0, fs)[0] == pytest.approx(depth, abs=0.01)


def measured_width_oct(c, f0, depth, fs):
    """Octaves between the two frequencies where the cut is depth/2 (RBJ BW)."""

    def excess(f):
        return biquad_db(c, f, fs)[0] - depth / 2

    lo = brentq(excess, f0 / 4, f0, xtol=1e-9)
    hi = brentq(excess, f0, min(0.4999 * fs, 4 * f0), xtol=1e-9)
    return math.log2(hi / lo)


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_notch_width_in_octaves(fs):
    """Width between the -depth/2 points == the requested octaves (2 %)."""
    worst = []
    for f0, width, depth in notch_grid(fs):
        c = design.notch(fs, f0, depth, width)
        got = measured_width_oct(c, f0, depth, fs)
        worst.append((abs(got / width - 1.0), f0, width, depth, got))
    err, f0, width, depth, got = max(worst)
    assert err < 0.02, (
        f"f0={f0} Hz, asked {width:.4f} oct at {depth} dB, got {got:.4f} oct"
    )


# ---------------------------------------------------------------------------
# (b) the engine runs those filters
# ---------------------------------------------------------------------------

IR_LEN = 1 << 15
LO_HZ, HI_HZ = 30.0, 16000.0


def measure(engine, out: int, channel: int = 1):
    """(freqs, engine response in dB) of output ``out`` over 30 Hz..16 kHz."""
    ir = impulse_response(engine, IR_LEN, channel=channel)
    lim_gr = engine.core.arrays["outs"][L.OM_LIM_GR]
    assert np.all(lim_gr == 1.0), "the limiter acted: the measurement is invalid"
    fs = engine.dims.sample_rate
    freqs = np.fft.rfftfreq(IR_LEN, 1.0 / fs)
    band = (freqs >= LO_HZ) & (freqs <= HI_HZ)
    return freqs[band], in_band(ir[:, out], fs), ir


def in_band(ir, fs):
    """|FFT| in dB of an impulse response over 30 Hz..16 kHz."""
    freqs = np.fft.rfftfreq(IR_LEN, 1.0 / fs)
    band = (freqs >= LO_HZ) & (freqs <= HI_HZ)
    return db(np.fft.rfft(ir)[band])


def expected_db(stages, freqs, fs, gain_db=0.0):
    return biquad_db(np.array(stages), freqs, fs) + gain_db


INPUT_EQ = {  # band -> (type, f, gain)
    1: ("LShv", 200.0, 3.0),
    2: ("PEQ", 800.0, -4.0),
    3: ("VEQ", 2500.0, 6.0),
    4: ("HShv", 8000.0, -5.0),
}
BUS_EQ = {
    1: ("LCut", 40.0, 0.0),
    2: ("PEQ", 400.0, -6.0),
    3: ("PEQ", 1200.0, 9.0),
    4: ("LShv", 150.0, 4.0),
    5: ("HShv", 6000.0, 2.0),
    6: ("HCut", 14000.0, 0.0),
}
NOTCHES = {1: (1000.0, -24.0, 1 / 10), 2: (2500.0, -12.0, 1 / 40)}
DEFAULT_Q = 2.0


def eq_settings(prefix, bands):
    out = {}
    for k, (kind, f0, g) in bands.items():
        out[f"{prefix}/eq/{k}/type"] = kind
        out[f"{prefix}/eq/{k}/f"] = f0
        out[f"{prefix}/eq/{k}/g"] = g
    return out


def eq_stages(fs, bands, q=DEFAULT_Q):
    return [rbj_band(kind, fs, f0, g, q) for kind, f0, g in bands.values()]


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize("slope", HPF_SLOPES)
def test_engine_runs_input_hpf_and_eq(fs, slope):
    e = make_engine(fs)
    e.mixer.set_many(
        {
            "/ch/01/mix/fader": 0.0,
            "/ch/01/mix/01/level": 0.0,
            "/ch/01/preamp/hpon": 1,
            "/ch/01/preamp/hpf": 60.0,
            "/ch/01/preamp/hpslope": slope,
            **eq_settings("/ch/01", INPUT_EQ),
        }
    )
    freqs, got, _ = measure(e, outs_of(e).bus(1))
    stages = [*rbj_hpf(fs, 60.0, slope), *eq_stages(fs, INPUT_EQ)]
    want = expected_db(stages, freqs, fs)
    np.testing.assert_allclose(got, want, atol=0.05)
    # The design path the mixer uses agrees with the textbook too.
    v = e.mixer.values
    derived = [*derive.hpf_coeffs(v, 0, fs), *derive.eq_coeffs(v, "/ch/01", 4, fs)]
    np.testing.assert_allclose(expected_db(derived, freqs, fs), want, atol=1e-6)


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_engine_runs_bus_eq_and_notches(fs):
    e = make_engine(fs)
    settings = {
        "/ch/01/mix/fader": 0.0,
        "/ch/01/mix/01/level": 0.0,
        "/ch/01/preamp/hpon": 1,
        "/ch/01/preamp/hpf": 20.0,
        **eq_settings("/bus/01", BUS_EQ),
    }
    for k, (f0, depth, width) in NOTCHES.items():
        n = f"/ls/bus/01/notch/{k:02d}"
        settings |= {f"{n}/on": 1, f"{n}/f": f0, f"{n}/depth": depth}
        settings[f"{n}/width"] = width
    e.mixer.set_many(settings)
    freqs, got, _ = measure(e, outs_of(e).bus(1))
    notches = [rbj_notch(fs, f0, d, w) for f0, d, w in NOTCHES.values()]
    stages = [*rbj_hpf(fs, 20.0, "12"), *eq_stages(fs, BUS_EQ), *notches]
    np.testing.assert_allclose(got, expected_db(stages, freqs, fs), atol=0.05)
    # The notch really is there: -24 dB at 1 kHz (the FFT bin nearest to it).
    k = np.argmin(np.abs(freqs - 1000.0))
    expect_at_bin = expected_db(stages, freqs[k : k + 1], fs)[0]
    assert got[k] == pytest.approx(expect_at_bin, abs=0.05)
    assert got[k] < -15.0


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_engine_eq_off_is_flat(fs):
    e = make_engine(fs)
    e.mixer.set_many(
        {
            "/ch/01/mix/fader": 0.0,
            "/ch/01/mix/01/level": 0.0,
            "/ch/01/preamp/hpon": 1,
            "/ch/01/preamp/hpf": 20.0,
            **eq_settings("/ch/01", INPUT_EQ),
            **eq_settings("/bus/01", BUS_EQ),
            "/ch/01/eq/on": 0,
            "/bus/01/eq/on": 0,
        }
    )
    freqs, got, _ = measure(e, outs_of(e).bus(1))
    want = expected_db(rbj_hpf(fs, 20.0, "12"), freqs, fs)
    np.testing.assert_allclose(got, want, atol=0.05)


def test_every_eq_type_is_known_to_the_textbook():
    assert set(EQ_TYPES) == {"LCut", "LShv", "PEQ", "VEQ", "HShv", "HCut"}


@pytest.mark.parametrize("q", [0.3, 1.0, 4.0, 10.0])
def test_engine_runs_the_band_q(q):
    fs = 48000
    e = make_engine(fs)
    e.mixer.set_many(
        {
            "/ch/01/mix/fader": 0.0,
            "/ch/01/mix/01/level": 0.0,
            "/ch/01/preamp/hpon": 1,
            "/ch/01/preamp/hpf": 20.0,
            "/ch/01/eq/2/g": 9.0,
            "/ch/01/eq/2/f": 1500.0,
            "/ch/01/eq/2/q": q,
        }
    )
    freqs, got, _ = measure(e, outs_of(e).bus(1))
    stages = [*rbj_hpf(fs, 20.0, "12"), rbj("peaking", fs, 1500.0, 9.0, q)]
    np.testing.assert_allclose(got, expected_db(stages, freqs, fs), atol=0.05)


@pytest.mark.parametrize("fs", [48000])
def test_engine_runs_main_eq_and_notch_on_both_sides(fs):
    e = make_engine(fs)
    o = outs_of(e)
    e.mixer.set_many(
        {
            "/ch/01/mix/fader": 0.0,
            "/ch/01/preamp/hpon": 1,
            "/ch/01/preamp/hpf": 20.0,
            "/main/st/eq/3/g": 6.0,
            "/main/st/eq/3/f": 2000.0,
            "/ls/main/st/notch/01/on": 1,
            "/ls/main/st/notch/01/depth": -18.0,
            "/ls/main/st/notch/01/f": 500.0,
        }
    )
    freqs, left, ir = measure(e, o.main_l)
    right = in_band(ir[:, o.main_r], fs)
    stages = [
        *rbj_hpf(fs, 20.0, "12"),
        rbj("peaking", fs, 2000.0, 6.0, DEFAULT_Q),
        rbj_notch(fs, 500.0, -18.0, 0.1),  # the default width
    ]
    want = expected_db(stages, freqs, fs, gain_db=MINUS_3DB)  # centre pan
    np.testing.assert_allclose(left, want, atol=0.05)
    np.testing.assert_allclose(right, want, atol=0.05)


def test_response_helper_matches_lfilter():
    """Sanity of the measurement itself: freqz of a cascade vs its FFT."""
    from scipy.signal import lfilter

    fs = 48000
    stages = eq_stages(fs, BUS_EQ)
    x = np.zeros(IR_LEN)
    x[0] = 1.0
    for c in stages:
        x = lfilter(c[:3], np.r_[1.0, c[3:]], x)
    freqs = np.fft.rfftfreq(IR_LEN, 1 / fs)
    h = biquad_response(np.array(stages), freqs, fs)
    np.testing.assert_allclose(np.fft.rfft(x), h, atol=1e-9)

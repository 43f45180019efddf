"""Dynamics: the compressor's static curve, the gate, and the fast log/exp.

The static curve is checked against the soft-knee formula of Giannoulis,
Massberg and Reiss ("Digital Dynamic Range Compressor Design - A Tutorial
and Analysis", JAES 2012, eq. 4), first as a kernel, then through the engine.
Through the engine, a processor's gain is measured as the ratio of two
renders, with and without it: every later stage is linear.
"""

import math

import numpy as np
import pytest
from dsp_helpers import (
    SAMPLE_RATES,
    db,
    gain_track,
    make_engine,
    outs_of,
    sine,
    undb,
)

from livesound.audio import layout as L
from livesound.audio.kernels import compressor_curve, fast_exp2, fast_log2
from livesound.audio.meters import read_meters
from livesound.control.registry import DYN_RATIOS


def giannoulis_gain_db(x_db, thr, ratio, knee):
    """Static gain (dB) of a soft-knee compressor, GMR 2012 eq. (4)."""
    over = x_db - thr
    if 2.0 * over < -knee or (knee == 0.0 and over <= 0.0):
        y = x_db
    elif 2.0 * abs(over) <= knee:
        y = x_db + (1.0 / ratio - 1.0) * (over + knee / 2.0) ** 2 / (2.0 * knee)
    else:
        y = thr + over / ratio
    return y - x_db


RATIOS = tuple(float(r) for r in DYN_RATIOS)
KNEES = (0.0, 0.1, 1.0, 2.0, 5.0)


def test_compressor_curve_is_the_textbook_soft_knee():
    levels = np.arange(-100.0, 20.0001, 0.125)
    for thr in (-60.0, -37.5, -20.0, -6.0, 0.0):
        for ratio in RATIOS:
            for knee in KNEES:
                # Levels on and right next to the knee edges, too.
                edges = thr + np.array([-1, 1]) * knee / 2
                grid = np.concatenate([levels, edges, edges + 1e-9, edges - 1e-9])
                for x in grid:
                    want = giannoulis_gain_db(x, thr, ratio, knee)
                    got = compressor_curve(x, thr, ratio, knee)
                    assert got == pytest.approx(want, abs=1e-9), (x, thr, ratio, knee)


def test_compressor_curve_is_continuous_and_monotone():
    x = np.linspace(-40.0, 10.0, 20001)
    for ratio in (1.1, 4.0, 100.0):
        for knee in (0.0, 2.0, 5.0):
            out = np.array([v + compressor_curve(v, -20.0, ratio, knee) for v in x])
            assert np.all(np.diff(out) >= -1e-12)  # output level never falls
            assert np.abs(np.diff(out)).max() < 0.01  # no jump at the knee


def test_fast_log2_accuracy():
    x = np.geomspace(1e-300, 1e300, 200001)
    got = np.array([fast_log2(v) for v in x])
    assert np.abs(got - np.log2(x)).max() < 2e-6
    # Exact at powers of two (the exponent is taken from the bits).
    for k in range(-1000, 1001, 37):
        assert fast_log2(2.0**k) == k


def test_fast_exp2_accuracy():
    y = np.linspace(-999.0, 999.0, 200001)
    got = np.array([fast_exp2(v) for v in y])
    assert np.abs(got / np.exp2(y) - 1.0).max() < 1e-8
    # A dB value survives the round trip the compressor makes (level -> gain).
    for d in np.linspace(-120.0, 24.0, 1001):
        g = fast_exp2(d / 6.020599913279624)
        back = 6.020599913279624 * fast_log2(g)
        assert back == pytest.approx(d, abs=1e-4)


# ---------------------------------------------------------------------------
# The compressor through the engine
# ---------------------------------------------------------------------------


def nyquist_tone(n: int, level_db: float) -> np.ndarray:
    """(-1)^t at ``level_db``: |x| is constant, and the (switched-off) input
    high-pass passes Nyquist at exactly unity, so the detector sees a steady
    level whatever its attack and release: a DC-like test signal."""
    return undb(level_db) * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def compressor_settings(c, thr, ratio, knee, makeup, attack=10.0, release=100.0):
    p = f"/ch/{c:02d}"
    return {
        f"{p}/dyn/on": 1,
        f"{p}/dyn/thr": thr,
        f"{p}/dyn/ratio": ratio,
        f"{p}/dyn/knee": knee,
        f"{p}/dyn/mgain": makeup,
        f"{p}/dyn/attack": attack,
        f"{p}/dyn/release": release,
    }


def strips_to_buses(n: int) -> dict:
    """Input c -> bus c at unity (post-fader send, fader 0 dB), limiters off."""
    s = {}
    for c in range(1, n + 1):
        s[f"/ch/{c:02d}/mix/fader"] = 0.0
        s[f"/ch/{c:02d}/mix/st"] = 0
        s[f"/ch/{c:02d}/mix/{c:02d}/level"] = 0.0
        s[f"/ls/bus/{c:02d}/limiter/on"] = 0
    return s


STATIC_CASES = [
    # (threshold, ratio, knee, level - threshold, makeup)
    (thr, ratio, knee, rel, makeup)
    for thr in (-40.0, -20.0, -8.0)
    for ratio in ("1.5", "4.0", "10", "100")
    for knee in (0.0, 2.0, 5.0)
    for rel, makeup in ((-10.0, 0.0), (-1.0, 3.0), (0.0, 0.0), (1.5, 6.0), (7.0, 2.0))
    if thr + rel <= -1.0
]


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_compressor_steady_state_gain_matches_the_curve(fs):
    n = fs // 4
    settle = n - fs // 20
    for i in range(0, len(STATIC_CASES), 4):
        cases = STATIC_CASES[i : i + 4]
        e_on, e_off = make_engine(fs), make_engine(fs)
        base = strips_to_buses(4)
        on = dict(base)
        x = np.zeros((n, 4))
        for c, (thr, ratio, knee, rel, makeup) in enumerate(cases, start=1):
            on |= compressor_settings(c, thr, ratio, knee, makeup)
            x[:, c - 1] = nyquist_tone(n, thr + rel)
        e_on.mixer.set_many(on)
        e_off.mixer.set_many(base)
        y_on, y_off = e_on.render(x, 1024), e_off.render(x, 1024)
        meter = e_on.core.arrays["ins"][L.IM_COMP_GR]
        for c, (thr, ratio, knee, rel, makeup) in enumerate(cases, start=1):
            want = giannoulis_gain_db(thr + rel, thr, float(ratio), knee)
            _, g = gain_track(y_on[settle:, c - 1], y_off[settle:, c - 1], 1e-6)
            case = (fs, thr, ratio, knee, rel, makeup)
            err = np.abs(db(g) - (want + makeup)).max()
            assert err < 0.1, (case, err)
            assert meter[c - 1] == pytest.approx(want, abs=0.1), case


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize(
    ("thr", "ratio", "knee"), [(-30.0, "4.0", 0.0), (-18.0, "2.0", 5.0)]
)
def test_compressor_on_a_steady_sine(fs, thr, ratio, knee):
    """Peak detector, instant attack, 4 s release: the gain at the crests of a
    steady sine is the static curve at its peak level."""
    n = fs // 2
    f = fs / 64  # a crest falls exactly on a sample
    level = -6.0
    e_on, e_off = make_engine(fs), make_engine(fs)
    base = strips_to_buses(1)
    e_on.mixer.set_many(base | compressor_settings(1, thr, ratio, knee, 4.0, 0.0, 4000))
    e_off.mixer.set_many(base)
    x = np.zeros((n, 4))
    x[:, 0] = sine(n, f, fs, undb(level))
    y_on, y_off = e_on.render(x, 256)[:, 0], e_off.render(x, 256)[:, 0]
    crests = np.arange(n // 2, n - e_on.latency - 64, 64) + 16 + e_on.latency
    gain = db(y_on[crests] / y_off[crests])
    want = giannoulis_gain_db(level, thr, float(ratio), knee) + 4.0
    assert gain == pytest.approx(np.full(crests.size, want), abs=0.1)


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_compressor_off_reports_no_gain_reduction(fs):
    e = make_engine(fs)
    e.mixer.set_many(strips_to_buses(1) | {"/ch/01/dyn/thr": -60.0})
    x = np.zeros((fs // 10, 4))
    x[:, 0] = nyquist_tone(fs // 10, -3.0)
    e.render(x, 256)
    assert e.core.arrays["ins"][L.IM_COMP_GR, 0] == 0.0


# ---------------------------------------------------------------------------
# Gate
# ---------------------------------------------------------------------------


def gate_renders(fs, x, gate, meters_from=0):
    """Gate on and gate off renders of ``x`` on input 1 (to bus 1).

    The meters of the gated engine are reset (read) at ``meters_from``.
    """
    e_on, e_off = make_engine(fs), make_engine(fs)
    base = strips_to_buses(1)
    e_on.mixer.set_many(base | {f"/ch/01/gate/{k}": v for k, v in gate.items()})
    e_off.mixer.set_many(base)
    inp = np.zeros((len(x), 4))
    inp[:, 0] = x
    first = e_on.render(inp[:meters_from], 128)
    read_meters(e_on.core)
    y_on = np.concatenate([first, e_on.render(inp[meters_from:], 128)])
    return y_on[:, 0], e_off.render(inp, 128)[:, 0], e_on


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize("gate_range", [3.0, 20.0, 40.0, 60.0])
def test_gate_open_above_and_range_below_threshold(fs, gate_range):
    thr = -40.0
    n = fs  # 0.5 s above, 0.5 s below
    half = n // 2
    x = np.concatenate(
        [sine(half, 997.0, fs, undb(thr + 6)), sine(n - half, 997.0, fs, undb(thr - 6))]
    )
    gate = {"on": 1, "thr": thr, "range": gate_range, "hold": 10.0, "release": 20.0}
    y_on, y_off, e = gate_renders(fs, x, gate, meters_from=half)
    lat = e.latency
    idx, g = gain_track(y_on, y_off, undb(thr - 20))
    open_part = (idx > fs // 10 + lat) & (idx < half + lat)
    closed_part = idx > half + lat + round(0.35 * fs)  # hold + 12 release consts
    assert db(g[open_part]) == pytest.approx(np.zeros(open_part.sum()), abs=0.01)
    assert db(g[closed_part]) == pytest.approx(
        np.full(closed_part.sum(), -gate_range), abs=0.1
    )
    assert db(e.core.arrays["ins"][L.IM_GATE_GR, 0]) == pytest.approx(
        -gate_range, abs=0.1
    )


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_gate_hold_keeps_it_open(fs):
    """After the signal falls below threshold the gate stays fully open for
    the hold time, then closes; with a short hold it closes much earlier."""
    thr, hold_ms = -30.0, 150.0
    loud = fs // 4
    n = loud + fs // 2
    x = np.concatenate(
        [
            sine(loud, 997.0, fs, undb(thr + 20)),
            sine(n - loud, 997.0, fs, undb(thr - 20)),
        ]
    )
    gate = {"on": 1, "thr": thr, "range": 40.0, "release": 5.0, "attack": 0.5}
    lat = make_engine(fs).latency
    # Release 5 ms: the detector falls below threshold within ~25 ms.
    open_until = loud + lat + round(hold_ms / 1000 * fs)
    probe_open = np.arange(loud + lat + round(0.03 * fs), open_until - 10)
    probe_closed = np.arange(open_until + round(0.08 * fs), n)

    y_on, y_off, _ = gate_renders(fs, x, gate | {"hold": hold_ms})
    idx, g = gain_track(y_on, y_off, undb(thr - 30))
    gain = dict(zip(idx.tolist(), g.tolist(), strict=True))
    held = np.array([gain[i] for i in probe_open if i in gain])
    closed = np.array([gain[i] for i in probe_closed if i in gain])
    assert held.size > 100 and closed.size > 100
    assert db(held) == pytest.approx(np.zeros(held.size), abs=0.01)
    assert db(closed) == pytest.approx(np.full(closed.size, -40.0), abs=0.1)

    y_on, y_off, _ = gate_renders(fs, x, gate | {"hold": 1.0})
    idx, g = gain_track(y_on, y_off, undb(thr - 30))
    gain = dict(zip(idx.tolist(), g.tolist(), strict=True))
    short = np.array([gain[i] for i in probe_open[len(probe_open) // 2 :] if i in gain])
    assert db(short).max() < -20.0


def test_gate_off_is_unity():
    fs = 48000
    x = sine(fs // 4, 997.0, fs, undb(-70.0))
    y_on, y_off, _ = gate_renders(fs, x, {"on": 0, "thr": 0.0, "range": 60.0})
    np.testing.assert_array_equal(y_on, y_off)


def test_outputs_used():
    """The routing helper sends input c to bus c only."""
    e = make_engine()
    e.mixer.set_many(strips_to_buses(4))
    o = outs_of(e)
    x = np.zeros((512, 4))
    x[10, 2] = 0.5
    y = e.render(x)
    hit = np.abs(y).max(axis=0) > 0.1
    assert hit.tolist() == [o.bus(3) == k for k in range(e.dims.phys_out)]
    assert math.isclose(np.abs(y[:, 2]).max(), 0.5, rel_tol=1e-3)


@pytest.mark.parametrize("gate_range", [3.0, 20.0])
def test_gate_never_cuts_deeper_than_its_range(gate_range):
    """From the very first sample (the gate switched on in the first set),
    through opening and closing, the gain stays within [range, 0 dB]."""
    fs = 48000
    thr = -40.0
    n = fs // 2
    x = sine(n, 997.0, fs, undb(thr + 10)) * (np.arange(n) < n // 2)
    x += sine(n, 997.0, fs, undb(thr - 10))
    gate = {"on": 1, "thr": thr, "range": gate_range, "hold": 5.0, "release": 10.0}
    y_on, y_off, e = gate_renders(fs, x, gate, meters_from=n)
    _, g = gain_track(y_on, y_off, undb(thr - 20))
    assert db(g).min() >= -gate_range - 0.01
    assert db(g).max() <= 0.01
    assert db(e.core.arrays["ins"][L.IM_GATE_GR, 0]) >= -gate_range - 0.01

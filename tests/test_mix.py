"""Mixing: pan law, send taps, solo/cue, linked pairs, oscillator, delays, ramps.

Path gains are measured with impulses (``gain_matrix``: one impulse per
input, read at every output after the engine's latency); absolute tolerance
1e-3 covers the switched-off 1 Hz input high-pass's tail.
"""

import math

import numpy as np
import pytest
from dsp_helpers import (
    SAMPLE_RATES,
    db,
    gain_matrix,
    gain_track,
    make_engine,
    mono_input,
    outs_of,
    sine,
    sine_amplitude,
    undb,
)
from scipy.signal import lfilter, welch

from livesound.audio import design
from livesound.control import derive
from livesound.control.derive import pan_gains
from livesound.control.registry import PRE_FADER_TYPES, X32_SEND_TYPES

TOL = 1e-3
MINUS_3DB = 10.0 * math.log10(0.5)

# ---------------------------------------------------------------------------
# Pan law
# ---------------------------------------------------------------------------


def test_pan_law_is_constant_power():
    pans = np.linspace(-100.0, 100.0, 2001)
    lr = np.array([pan_gains(p) for p in pans])
    np.testing.assert_allclose((lr**2).sum(axis=1), 1.0, rtol=1e-12)
    assert db(pan_gains(0.0)) == pytest.approx([MINUS_3DB, MINUS_3DB], abs=1e-3)
    assert pan_gains(-100.0) == pytest.approx((1.0, 0.0), abs=1e-15)
    assert pan_gains(100.0) == pytest.approx((0.0, 1.0), abs=1e-15)
    assert np.all(np.diff(lr[:, 0]) < 0) and np.all(np.diff(lr[:, 1]) > 0)
    # Mirror image: pan p on the left is pan -p on the right.
    np.testing.assert_allclose(lr[:, 0], lr[::-1, 1], atol=1e-15)


@pytest.mark.parametrize("pan", [-100.0, -60.0, 0.0, 25.0, 100.0])
def test_engine_pans_with_the_constant_power_law(pan):
    e = make_engine()
    o = outs_of(e)
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/pan": pan})
    g = gain_matrix(e)[:, 0]
    theta = (pan + 100.0) / 200.0 * math.pi / 2
    assert g[o.main_l] == pytest.approx(math.cos(theta), abs=TOL)
    assert g[o.main_r] == pytest.approx(math.sin(theta), abs=TOL)
    assert g[o.main_l] ** 2 + g[o.main_r] ** 2 == pytest.approx(1.0, abs=2 * TOL)
    if pan == 0.0:
        assert db(g[[o.main_l, o.main_r]]) == pytest.approx([MINUS_3DB] * 2, abs=0.01)
    if abs(pan) == 100.0:  # hard pan: the other side is silent (< -140 dB)
        other = o.main_r if pan < 0 else o.main_l
        assert abs(g[other]) < 1e-7


# ---------------------------------------------------------------------------
# Sends
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("tap", range(len(X32_SEND_TYPES)), ids=X32_SEND_TYPES)
def test_send_taps_pre_and_post_fader(tap):
    fader, level = -12.0, -6.0
    e = make_engine()
    o = outs_of(e)
    e.mixer.set_many(
        {
            "/ch/01/mix/fader": fader,
            "/ch/01/mix/01/type": tap,  # pair 1-2
            "/ch/01/mix/01/level": level,
            "/ch/01/mix/03/type": tap,  # pair 3-4
            "/ch/01/mix/04/level": level + 3.0,
        }
    )
    pre = tap < PRE_FADER_TYPES
    want = level + (0.0 if pre else fader)
    g = gain_matrix(e)[:, 0]
    assert g[o.bus(1)] == pytest.approx(undb(want), abs=TOL)
    assert g[o.bus(4)] == pytest.approx(undb(want + 3.0), abs=TOL)
    assert abs(g[o.bus(2)]) < 1e-9 and abs(g[o.bus(3)]) < 1e-9
    # Moving the fader moves post sends only.
    e.mixer.set("/ch/01/mix/fader", fader - 20.0)
    e.render(np.zeros((2048, 4)))  # let the 10 ms ramp finish
    g2 = gain_matrix(e)[:, 0]
    assert g2[o.bus(1)] == pytest.approx(undb(want - (0.0 if pre else 20.0)), abs=TOL)
    # Muting the channel kills pre and post sends alike.
    e.mixer.set("/ch/01/mix/on", 0)
    e.render(np.zeros((2048, 4)))
    assert np.abs(gain_matrix(e)[:, 0]).max() < 1e-9


def test_send_switch_and_level_off():
    e = make_engine()
    o = outs_of(e)
    e.mixer.set_many(
        {
            "/ch/01/mix/fader": 0.0,
            "/ch/01/mix/01/level": 0.0,
            "/ch/01/mix/01/on": 0,
            "/ch/01/mix/02/level": -math.inf,
            "/ch/01/mix/03/level": 0.0,
        }
    )
    g = gain_matrix(e)[:, 0]
    assert abs(g[o.bus(1)]) < 1e-9 and abs(g[o.bus(2)]) < 1e-9
    assert g[o.bus(3)] == pytest.approx(1.0, abs=TOL)


# ---------------------------------------------------------------------------
# Solo and the cue bus
# ---------------------------------------------------------------------------

TWO_CHANNELS = {
    "/ch/01/mix/fader": -6.0,
    "/ch/01/mix/pan": -40.0,
    "/ch/02/mix/fader": 3.0,
    "/ch/02/mix/pan": 50.0,
    "/config/solo/level": -4.0,
}


def test_cue_carries_the_main_mix_when_nothing_is_soloed():
    e = make_engine()
    o = outs_of(e)
    e.mixer.set_many(TWO_CHANNELS)
    g = gain_matrix(e)
    np.testing.assert_array_equal(g[o.cue_l], g[o.main_l])
    np.testing.assert_array_equal(g[o.cue_r], g[o.main_r])
    assert g[o.main_l, 1] == pytest.approx(undb(3.0) * pan_gains(50.0)[0], abs=TOL)


@pytest.mark.parametrize("mode", ["PFL", "AFL"])
def test_solo_to_cue(mode):
    e = make_engine()
    o = outs_of(e)
    e.mixer.set_many(TWO_CHANNELS | {"/config/solo/chmode": mode})
    before = gain_matrix(e)
    e.mixer.set("/-stat/solosw/01", 1)
    e.render(np.zeros((2048, 4)))
    g = gain_matrix(e)
    level = undb(-4.0)
    if mode == "PFL":  # before the fader, mono
        want = (level, level)
    else:  # after fader and pan
        pl, pr = pan_gains(-40.0)
        want = (undb(-6.0) * pl * level, undb(-6.0) * pr * level)
    assert g[[o.cue_l, o.cue_r], 0] == pytest.approx(want, abs=TOL)
    # Only the soloed channel is in the cue; the main mix is untouched.
    assert np.abs(g[[o.cue_l, o.cue_r], 1:]).max() < TOL
    np.testing.assert_allclose(g[: o.main_r + 1], before[: o.main_r + 1], atol=TOL)
    # Solo off: the cue is the main mix again.
    e.mixer.set("/-stat/solosw/01", 0)
    e.render(np.zeros((2048, 4)))
    g = gain_matrix(e)
    np.testing.assert_array_equal(g[[o.cue_l, o.cue_r]], g[[o.main_l, o.main_r]])


# ---------------------------------------------------------------------------
# Stereo-linked bus pair
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("pan", [-100.0, -30.0, 0.0, 70.0, 100.0])
def test_linked_bus_pair_pans_the_send(pan):
    e = make_engine()
    o = outs_of(e)
    e.mixer.set_many(
        {
            "/config/buslink/1-2": 1,
            "/ch/01/mix/fader": -3.0,
            "/ch/01/mix/01/level": -6.0,
            "/ch/01/mix/01/pan": pan,
            "/ch/01/mix/02/level": 10.0,  # the even side's own send is ignored
            "/bus/01/mix/fader": -2.0,
            "/bus/02/mix/fader": -40.0,  # ... and so is its own fader
        }
    )
    g = gain_matrix(e)[:, 0]
    pl, pr = pan_gains(pan)
    level = undb(-3.0 - 6.0 - 2.0)  # post-fader send, odd bus's fader on both
    assert g[[o.bus(1), o.bus(2)]] == pytest.approx([level * pl, level * pr], abs=TOL)
    # Unlinked, the two buses are independent mono mixes again.
    e.mixer.set("/config/buslink/1-2", 0)
    e.render(np.zeros((2048, 4)))
    g = gain_matrix(e)[:, 0]
    assert g[o.bus(1)] == pytest.approx(undb(-11.0), abs=TOL)
    assert g[o.bus(2)] == pytest.approx(undb(-3.0 + 10.0 - 40.0), abs=TOL)


# ---------------------------------------------------------------------------
# Oscillator
# ---------------------------------------------------------------------------


def osc_render(fs, settings, seconds=0.25):
    e = make_engine(fs)
    e.mixer.set_many({"/ls/osc/on": 1} | settings)
    n = round(seconds * fs)
    return e, e.render(np.zeros((n, 4)), block=512)[e.latency :].astype(np.float64)


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize(
    ("f1", "level", "dest"),
    [(1000.0, -20.0, "L+R"), (440.0, -6.0, "MixBus2"), (63.0, -12.0, "L"),
     (12500.0, -3.0, "R"), (20000.0, -30.0, "MixBus4")],
)  # fmt: skip
def test_oscillator_sine_frequency_level_and_destination(fs, f1, level, dest):
    e, y = osc_render(fs, {"/config/osc/f1": f1, "/config/osc/level": level,
                           "/config/osc/dest": dest})  # fmt: skip
    o = outs_of(e)
    targets = {
        "L+R": [o.main_l, o.main_r, o.cue_l, o.cue_r],
        "L": [o.main_l, o.cue_l],
        "R": [o.main_r, o.cue_r],
        "MixBus2": [o.bus(2)],
        "MixBus4": [o.bus(4)],
    }[dest]
    n = len(y)
    spectrum_bins = np.fft.rfftfreq(n, 1.0 / fs)
    for out in range(e.dims.phys_out):
        if out not in targets:
            assert np.abs(y[:, out]).max() == 0.0, out
            continue
        spectrum = np.abs(np.fft.rfft(y[:, out] * np.hanning(n)))
        peak = spectrum_bins[np.argmax(spectrum)]
        assert abs(peak - f1) <= fs / n, (out, peak)
        assert db(sine_amplitude(y[:, out], f1, fs)) == pytest.approx(level, abs=0.1)
        assert db(np.abs(y[:, out]).max()) <= level + 0.01


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_oscillator_pink_noise_has_equal_power_per_octave(fs):
    e, y = osc_render(
        fs,
        {"/config/osc/type": "pink", "/config/osc/dest": "MixBus1",
         "/config/osc/level": -10.0},
        seconds=2.0,
    )  # fmt: skip
    f, p = welch(y[:, 0], fs, nperseg=8192)
    bands = []
    for fc in 125.0 * 2.0 ** np.arange(7):  # 125 Hz .. 8 kHz octaves
        sel = (f >= fc / math.sqrt(2)) & (f < fc * math.sqrt(2))
        bands.append(10 * np.log10(p[sel].sum()))
    bands = np.array(bands)
    assert np.ptp(bands) < 2.0, np.round(bands - bands.mean(), 2)
    assert np.abs(y[:, 1:]).max() == 0.0


# ---------------------------------------------------------------------------
# Delays
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_input_and_output_delays_are_exact(fs):
    ch_ms, bus_ms = 2.5, 4.0
    e = make_engine(fs)
    o = outs_of(e)
    e.mixer.set_many(
        {
            "/ch/01/mix/fader": 0.0,
            "/ch/01/mix/01/level": 0.0,
            "/ch/01/delay/on": 1,
            "/ch/01/delay/time": ch_ms,
            "/ls/bus/01/delay/time": bus_ms,
        }
    )
    x = np.zeros(fs // 2)
    at = fs // 10  # long after any crossfade
    x[at] = 0.5
    y = e.render(mono_input(e, x), block=64)
    d_ch, d_bus = round(ch_ms * fs / 1000), round(bus_ms * fs / 1000)
    assert np.argmax(np.abs(y[:, o.main_l])) == at + e.latency + d_ch
    assert np.argmax(np.abs(y[:, o.bus(1)])) == at + e.latency + d_ch + d_bus


def test_first_parameter_set_delay_lands_at_once():
    fs = 48000
    e = make_engine(fs)
    o = outs_of(e)
    e.mixer.set_many(
        {"/ch/01/mix/fader": 0.0, "/ch/01/delay/on": 1, "/ch/01/delay/time": 2.0}
    )
    x = np.zeros(4096)
    x[0] = 0.5
    y = e.render(mono_input(e, x), block=64)
    d = round(2.0 * fs / 1000)
    assert abs(y[e.latency, o.main_l]) < 1e-3, "undelayed impulse leaked"
    assert y[e.latency + d, o.main_l] == pytest.approx(0.5 / math.sqrt(2), abs=TOL)


# ---------------------------------------------------------------------------
# The main section acts on both sides
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "value", "gain_db"),
    [("/main/st/mix/fader", -20.0, -20.0), ("/main/st/mix/on", 0, -math.inf)],
)
def test_main_fader_and_mute_act_on_both_sides(address, value, gain_db):
    e = make_engine()
    o = outs_of(e)
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, address: value})
    g = gain_matrix(e)[:, 0]
    want = undb(gain_db + MINUS_3DB)
    assert g[[o.main_l, o.main_r]] == pytest.approx([want, want], abs=TOL)


# ---------------------------------------------------------------------------
# Ramps: click-free mutes and fader moves
# ---------------------------------------------------------------------------

UNITY = {
    "/ch/01/mix/fader": 0.0,
    "/ch/01/mix/pan": -100.0,  # all of it on main L
    "/ch/01/mix/01/level": 0.0,
}
RAMPS = [
    # (address, from, to, output name, linear gain from, gain to)
    ("/ch/01/mix/fader", 0.0, -math.inf, "main_l", 1.0, 0.0),
    ("/ch/01/mix/fader", -20.0, 6.0, "main_l", undb(-20.0), undb(6.0)),
    ("/ch/01/mix/on", 1, 0, "main_l", 1.0, 0.0),
    ("/ch/01/mix/on", 0, 1, "main_l", 0.0, 1.0),
    ("/ch/01/mix/01/level", 0.0, -12.0, "bus1", 1.0, undb(-12.0)),
    ("/bus/01/mix/fader", 0.0, -30.0, "bus1", 1.0, undb(-30.0)),
    ("/bus/01/mix/on", 1, 0, "bus1", 1.0, 0.0),
]


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize("block", [16, 64, 256])
@pytest.mark.parametrize(
    ("address", "start", "end", "out", "g0", "g1"),
    RAMPS,
    ids=[f"{r[0]}:{r[1]}->{r[2]}" for r in RAMPS],
)
def test_gain_changes_ramp_linearly_over_10ms(fs, block, address, start, end, out,
                                               g0, g1):  # fmt: skip
    amp = 0.2
    n = fs // 4
    change = (fs // 10) // block * block
    x = mono_input(make_engine(fs), sine(n, 31.0, fs, amp))
    ref = make_engine(fs)
    ref.mixer.set_many(UNITY)
    y_ref = ref.render(x, block=block)
    e = make_engine(fs)
    e.mixer.set_many(UNITY | {address: start})
    y = np.concatenate(
        [
            e.render(x[:change], block=block),
            (e.mixer.set(address, end), e.render(x[change:], block=block))[1],
        ]
    )
    col = {"main_l": outs_of(e).main_l, "bus1": outs_of(e).bus(1)}[out]
    y, y_ref = y[:, col].astype(np.float64), y_ref[:, col].astype(np.float64)
    ramp = round(0.010 * fs)
    t0 = change + e.latency  # first output sample of the ramp
    idx, g = gain_track(y, y_ref, 0.2 * amp)
    # Before the change: the old gain; after 10 ms: the new one, exactly.
    assert np.abs(g[idx < t0] - g0).max() < 1e-5
    assert np.abs(g[idx >= t0 + ramp + block] - g1).max() < 1e-5
    # In between: a straight line from g0 to g1 over the ramp.
    mid = (idx >= t0) & (idx < t0 + ramp)
    line = g0 + (g1 - g0) * (idx[mid] - t0 + 1) / ramp
    assert np.abs(g[mid] - line).max() < 1e-4 + abs(g1 - g0) * 1e-3
    # Done within 10 ms (+- one block).
    unsettled = idx[np.abs(g - g1) > 1e-5 * max(g0, g1)]
    done = unsettled.max() + 1 - t0
    assert abs(done - ramp) <= block, done
    # No click: the biggest sample-to-sample step is what a 10 ms linear ramp
    # of this signal allows (a jump here would be ~100x that).
    window = slice(t0 - 1, t0 + ramp + 1)
    step = np.abs(np.diff(y[window])).max()
    bound = (
        max(g0, g1) * np.abs(np.diff(y_ref)).max()
        + np.abs(y_ref).max() * abs(g1 - g0) / ramp
    )
    assert step <= bound * 1.001 + 1e-7


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize("block", [16, 256])
def test_trim_ramps_linearly_over_10ms(fs, block):
    """The trim sits before the input high-pass (which has memory), so the
    output is compared with the textbook chain: linear 10 ms gain ramp,
    then the switched-off 1 Hz Butterworth high-pass."""
    amp, g0, g1 = 0.2, 1.0, undb(-9.0)
    n = fs // 5
    change = (fs // 20) // block * block
    x = sine(n, 31.0, fs, amp)
    e = make_engine(fs)
    e.mixer.set_many(UNITY)
    inp = mono_input(e, x)
    first = e.render(inp[:change], block=block)
    e.mixer.set("/ch/01/preamp/trim", -9.0)
    y = np.concatenate([first, e.render(inp[change:], block=block)])
    ramp = round(0.010 * fs)
    g = np.full(n, g1)
    g[:change] = g0
    g[change : change + ramp] = g0 + (g1 - g0) * np.arange(1, ramp + 1) / ramp
    hp = design.high_pass(fs, derive.BYPASS_CUT_HZ, design.BUTTERWORTH2_Q)
    want = lfilter(hp[:3], np.r_[1.0, hp[3:]], x * g)
    lat = e.latency
    np.testing.assert_allclose(y[lat:, outs_of(e).bus(1)], want[:-lat], atol=1e-6)

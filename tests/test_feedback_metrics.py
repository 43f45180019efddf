"""The feedback benchmark's measures against analytic and textbook results."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, signal

from livesound.audio import design
from livesound.virtual.metrics import (
    delta_msg_db,
    forward_response,
    howl_fraction,
    howling,
    limiting_bin,
    msg_db,
    path_response,
    recovery_times,
    ringing_share,
    spectral_distortion_db,
)
from livesound.virtual.sources import speech
from livesound.virtual.stage import render_stage

SR = 48000
NO_NOTCHES = np.empty((0, 5))


def white(seconds: float, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(round(seconds * SR))


def room_ir(seed: int = 3) -> np.ndarray:
    """Direct path after 2 ms plus a 0.25 s exponentially decaying tail (T60 0.3 s)."""
    rng = np.random.default_rng(seed)
    n = round(0.25 * SR)
    t = np.arange(n) / SR
    ir = 0.02 * rng.standard_normal(n) * 10 ** (-3 * t / 0.3)
    ir[:96] = 0.0
    ir[96] = 0.5
    return ir


# --- frequency responses -----------------------------------------------------------


def test_forward_response_matches_scipy_freqz_of_the_same_sections():
    n_fft, latency, gain_db = 8192, 150, -4.5
    notches = np.stack(
        [
            design.notch(SR, 1000.0, 9.0, 1 / 10),
            design.notch(SR, 3150.0, 18.0, 1 / 80),
            design.peaking(SR, 250.0, 4.0, 0.7),
        ]
    )
    w = 2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft
    expected = 10 ** (gain_db / 20) * np.exp(-1j * w * latency)
    for b0, b1, b2, a1, a2 in notches:
        expected *= signal.freqz([b0, b1, b2], [1.0, a1, a2], worN=w)[1]
    got = forward_response(notches, gain_db, latency, n_fft)
    assert got.shape == (n_fft // 2 + 1,)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_forward_response_without_notches_is_gain_and_delay():
    got = forward_response(NO_NOTCHES, 6.0, 0, 1024)
    np.testing.assert_allclose(got, 10 ** (6 / 20), rtol=1e-12)


def test_path_response_is_the_rfft_and_refuses_a_short_grid():
    ir = room_ir()[:1000]
    np.testing.assert_allclose(path_response(ir, 4096), np.fft.rfft(ir, 4096))
    with pytest.raises(ValueError, match="shorter than the IR"):
        path_response(ir, 512)


# --- maximum stable gain -----------------------------------------------------------


@pytest.mark.parametrize("gain", [0.05, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("delay", [1, 37, 480])
def test_msg_of_a_pure_delay_loop_is_the_inverse_gain(gain, delay):
    n_fft = 8192
    ir = np.zeros(delay + 1)
    ir[delay] = 1.0
    loop = path_response(ir, n_fft) * forward_response(
        NO_NOTCHES, 20 * math.log10(gain), 64, n_fft
    )
    assert msg_db(loop) == pytest.approx(-20 * math.log10(gain), abs=0.01)


def brute_force_msg(a: float, b: float, d1: int, d2: int) -> float:
    """MSG of L(ω) = a·e^{-jωd1} + b·e^{-jωd2} without the phase: roots of Im L."""

    def im(w: float) -> float:
        return -(a * math.sin(w * d1) + b * math.sin(w * d2))

    grid = np.linspace(0.0, math.pi, 200_001)
    values = np.array([im(w) for w in grid])
    roots = [0.0, math.pi]  # a real loop is real at DC and Nyquist
    for i in np.flatnonzero(values[:-1] * values[1:] < 0):
        roots.append(optimize.brentq(im, grid[i], grid[i + 1], xtol=1e-14))
    peak = max(
        abs(a + b * np.exp(-1j * w * (d2 - d1)))
        for w in roots
        if (a * math.cos(w * d1) + b * math.cos(w * d2)) > 0
    )
    return -20 * math.log10(peak)


@pytest.mark.parametrize(
    ("a", "b", "d1", "d2"),
    [
        (0.5, 0.3, 10, 17),  # both positive: DC limits the loop
        (-0.5, 0.3, 10, 17),
        (0.8, -0.6, 5, 41),
        (0.3, -0.25, 3, 4),
        (-0.7, -0.2, 7, 30),
    ],
)
def test_msg_of_a_two_tap_echo_matches_the_analytic_maximum(a, b, d1, d2):
    ir = np.zeros(d2 + 1)
    ir[d1], ir[d2] = a, b
    n_fft = 16 * 1024
    got = msg_db(path_response(ir, n_fft))
    assert got == pytest.approx(brute_force_msg(a, b, d1, d2), abs=0.01)


def test_msg_is_infinite_when_no_frequency_meets_the_phase_condition():
    # A loop that is negative real everywhere never rings up.
    assert msg_db(np.full(513, -0.5 + 0j)) == math.inf
    assert math.isnan(limiting_bin(np.full(513, -0.5 + 0j)))


def test_a_notch_at_the_limiting_frequency_raises_msg_and_a_far_one_does_not():
    ir, latency, n_fft = room_ir(), 64, 1 << 16
    loop = path_response(ir, n_fft) * forward_response(NO_NOTCHES, 0, latency, n_fft)
    f0 = limiting_bin(loop) * SR / n_fft
    at_peak = design.notch(SR, f0, 12.0, 1 / 10)[None, :]
    assert delta_msg_db(ir, at_peak, latency, n_fft) > 0.5
    far_hz = f0 * 4 if f0 < 4000 else f0 / 4
    far = design.notch(SR, far_hz, 12.0, 1 / 10)[None, :]
    assert abs(delta_msg_db(ir, far, latency, n_fft)) < 0.1


def test_delta_msg_of_no_notches_is_zero():
    assert delta_msg_db(room_ir(), NO_NOTCHES, 64, 1 << 16) == 0.0


# --- spectral distortion -----------------------------------------------------------


def test_sd_of_identical_signals_is_zero():
    x = white(2.0)
    assert spectral_distortion_db(x, x.copy(), SR) == 0.0


def test_sd_of_a_doubled_signal_is_six_db():
    ref = white(2.0)
    assert spectral_distortion_db(2 * ref, ref, SR) == pytest.approx(6.0206, abs=0.05)


def test_sd_of_an_added_loud_sine_is_positive():
    ref = white(2.0)
    t = np.arange(ref.size) / SR
    x = ref + 0.5 * np.sin(2 * np.pi * 1234.5 * t)
    assert spectral_distortion_db(x, ref, SR) > 0.5


def test_sd_skips_silent_reference_frames():
    # Loud noise where the reference is silent is not counted at all.
    ref = white(2.0)
    ref[SR:] = 0.0
    x = ref.copy()
    x[SR + 4096 :] = white(2.0, seed=1)[SR + 4096 :]
    assert spectral_distortion_db(x, ref, SR) == 0.0


def test_sd_refuses_signals_of_different_length():
    with pytest.raises(ValueError, match="equally long"):
        spectral_distortion_db(white(1.0), white(1.1), SR)


@settings(max_examples=25, deadline=None)
@given(
    gain=st.floats(0.3, 3.0),
    scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_sd_of_a_gain_change_is_its_size_in_db_whatever_the_level(gain, scale, seed):
    ref = scale * white(0.5, seed)
    sd = spectral_distortion_db(gain * ref, ref, SR, frame=2048, hop=1024)
    assert sd == pytest.approx(abs(20 * math.log10(gain)), abs=0.01)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), level=st.floats(0.01, 1.0))
def test_sd_is_non_negative_and_nearly_symmetric(seed, level):
    ref = white(0.5, seed)
    x = ref + level * white(0.5, seed + 1)
    forward = spectral_distortion_db(x, ref, SR, frame=2048, hop=1024)
    backward = spectral_distortion_db(ref, x, SR, frame=2048, hop=1024)
    assert forward >= 0.0
    assert backward >= 0.0
    assert forward == pytest.approx(backward, rel=0.1)


# --- howling, HOP, TRI -------------------------------------------------------------


def music_reference() -> np.ndarray:
    return render_stage(SR, 6.0).astype(float).sum(axis=1)


def test_a_synthetic_howl_on_music_is_flagged_only_while_it_sounds():
    ref = music_reference()
    t = np.arange(ref.size) / SR
    # Grows 20 dB/s from 2 s, caught at 4 s, gone 50 ms later.
    envelope = np.where(t < 4.0, 10 ** (t - 4.0), 10 ** (-(t - 4.0) / 0.05)) * (
        t >= 2.0
    )
    howl = np.max(np.abs(ref)) * envelope * np.sin(2 * np.pi * 2987.0 * t)
    x = ref + howl
    flags = howling(x, ref, SR)
    frame_start = np.arange(flags.size) * 1024 / SR
    frame_end = frame_start + 4096 / SR
    # Even at -40 dB re the music's peak a lone sine stands 20 dB above the
    # music in its bin: the flags start with the howl, not when it gets loud.
    assert not flags[frame_end <= 2.0].any(), "flagged before the howl began"
    assert flags[(frame_start >= 2.5) & (frame_end <= 4.0)].all()
    assert not flags[frame_start > 4.1].any(), "flagged after the howl was gone"
    assert 0.25 < howl_fraction(flags) < 0.4
    assert not howling(ref, ref, SR).any()
    assert not howling(1.5 * ref, ref, SR).any(), "louder is not howling"


def test_a_tone_where_the_reference_is_silent_howls_but_silence_does_not():
    ref = np.zeros(SR)
    t = np.arange(SR) / SR
    assert howling(0.1 * np.sin(2 * np.pi * 1000 * t), ref, SR).all()
    assert not howling(np.zeros(SR), ref, SR).any()
    # DC is no howl.
    assert not howling(np.full(SR, 0.1), ref, SR).any()


def closed_loop(source: np.ndarray, ir: np.ndarray, gain: float, latency: int):
    """Output of gain·delay closed around ``ir`` (y = g·z^-latency·(s + ir * y)),
    and the same forward path without feedback, by scipy's IIR filter."""
    den = np.zeros(latency + ir.size)
    den[0] = 1.0
    den[latency:] -= gain * ir
    num = np.zeros(latency + 1)
    num[latency] = gain
    return signal.lfilter(num, den, source), signal.lfilter(num, [1.0], source)


@pytest.fixture(scope="module")
def small_room():
    """16 kHz: a 0.1 s room IR, 2 ms latency, and the loop's MSG."""
    sr, latency, n_fft = 16000, 32, 1 << 14
    rng = np.random.default_rng(3)
    t = np.arange(round(0.1 * sr)) / sr
    ir = 0.05 * rng.standard_normal(t.size) * 10 ** (-3 * t / 0.3)
    ir[:32], ir[32] = 0.0, 0.5
    loop = path_response(ir, n_fft) * forward_response(NO_NOTCHES, 0, latency, n_fft)
    return sr, ir, latency, msg_db(loop)


@pytest.mark.parametrize(("margin_db", "runs_away"), [(-0.3, False), (0.3, True)])
def test_msg_is_where_a_simulated_loop_starts_to_run_away(
    small_room, margin_db, runs_away
):
    sr, ir, latency, msg = small_room
    noise = np.random.default_rng(0).standard_normal(6 * sr)
    y, _ = closed_loop(noise, ir, 10 ** ((msg + margin_db) / 20), latency)
    rms_db = 10 * np.log10(np.mean(y.reshape(-1, sr) ** 2, axis=1))
    growth = rms_db[-1] - rms_db[1]
    assert growth > 30 if runs_away else abs(growth) < 3


def test_persistence_keeps_runaway_howls_and_drops_a_stable_loop_s_ringing(small_room):
    sr, ir, latency, msg = small_room
    s = speech(sr, 8.0)
    kw = {"frame": 1024, "hop": 256}
    y, ref = closed_loop(s, ir, 10 ** ((msg - 6) / 20), latency)
    literal = howl_fraction(howling(y, ref, sr, **kw))
    persistent = howl_fraction(howling(y, ref, sr, min_frames=5, **kw))
    assert persistent < 0.5 * literal
    y, ref = closed_loop(s, ir, 10 ** ((msg + 1) / 20), latency)
    flags = howling(y, ref, sr, min_frames=5, **kw)
    assert howl_fraction(flags) > 0.9
    assert recovery_times(flags, 256 / sr)[-1] == math.inf


def test_persistence_flags_a_long_burst_from_its_first_frame_and_no_short_one():
    t = np.arange(3 * SR) / SR
    bursts = ((t >= 0.5) & (t < 0.51)) | ((t >= 1.5) & (t < 2.0))
    x = 0.1 * np.sin(2 * np.pi * 1500 * t) * bursts
    # 8 frames span 7 hops and a frame: 234 ms; the 10 ms burst touches 4.
    flags = howling(x, np.zeros_like(x), SR, min_frames=8)
    frame_start = np.arange(flags.size) * 1024 / SR
    frame_end = frame_start + 4096 / SR
    assert not flags[frame_start < 1.2].any(), "the 10 ms burst is no howl"
    assert flags[(frame_end > 1.51) & (frame_start < 1.99)].all()
    assert not flags[(frame_end < 1.5) | (frame_start > 2.0)].any()


def test_howl_fraction():
    assert howl_fraction(np.array([0, 1, 1, 0], bool)) == 0.5
    assert howl_fraction(np.array([], bool)) == 0.0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], []),
        ([0, 0, 0], []),
        ([1, 0, 0], [1.0]),
        ([0, 1, 1, 1, 0, 0, 1, 0], [3.0, 1.0]),
        ([0, 1, 1, 0, 1, 1], [2.0, math.inf]),
        ([1, 1, 1], [math.inf]),
    ],
)
def test_recovery_times_are_the_lengths_of_the_howling_runs(flags, expected):
    assert recovery_times(np.array(flags, bool), 0.5) == [0.5 * e for e in expected]


# --- residual ringing ------------------------------------------------------------------


def tone_over_noise(tone_s: float, tone_db: float, at_s: float = 15.0,
                    seconds: float = 20.0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A white-noise floor (the dry reference) and the same with a 1 kHz tone
    ``tone_db`` over the floor's power per 2048-point bin, for ``tone_s`` from
    ``at_s``."""
    ref = white(seconds, seed=7)
    t = np.arange(ref.size) / SR
    # White noise of variance σ² puts σ²·Σw² in every bin of a Hann frame; a
    # sine of amplitude A puts (A·Σw/2)² at its bin.
    w = np.hanning(2048)
    bin_power = 0.1**2 * np.sum(w**2)
    amplitude = 2 * np.sqrt(bin_power * 10 ** (tone_db / 10)) / np.sum(w)
    on = (t >= at_s) & (t < at_s + tone_s)
    return ref + on * amplitude * np.sin(2 * np.pi * 1000.0 * t), ref


def test_ringing_share_is_the_tone_s_length_over_the_last_ten_seconds():
    """1 s of a tone 40 dB over the floor in the last 10 s: the frames that
    start within its span, less the ones whose window leaves it (a bin 20 dB
    over its reference needs most of the window), over the last 10 s."""
    x, ref = tone_over_noise(1.0, 40.0)
    share = ringing_share(x, ref, SR)
    assert share == pytest.approx(0.10, abs=0.005)
    # Outside the last 10 s it does not count.
    x, ref = tone_over_noise(1.0, 40.0, at_s=5.0)
    assert ringing_share(x, ref, SR) == 0.0


def test_a_short_blip_a_weak_tone_and_noise_are_not_ringing():
    # Held 130 ms: flagged in 13 frames 512 apart; a 43 ms window sees a
    # tone a little before and after it, so 100 ms is not enough, 150 ms is.
    assert ringing_share(*tone_over_noise(0.1, 40.0), SR) == 0.0
    assert ringing_share(*tone_over_noise(0.15, 40.0), SR) > 0.01
    assert ringing_share(*tone_over_noise(1.0, 15.0), SR) == 0.0  # under 20 dB
    # Broadband: noise 30 dB over the reference in its quiet last 5 s is no tone.
    ref = white(20.0, seed=7)
    ref[-5 * SR :] *= 10 ** (-30 / 20)
    x = white(20.0, seed=8)
    assert ringing_share(x, ref, SR) == 0.0

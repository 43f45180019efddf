"""The output limiter: ceiling, true peak, latency.

Adversarial inputs come from hypothesis. The engine meters every output's
peak *before* its final safety clip (``OM_PEAK``) and counts the samples the
clip had to touch (``OM_CLIPS``): the limiter alone must hold the ceiling,
the clip is only a last resort.
"""

import numpy as np
import pytest
from dsp_helpers import (
    SAMPLE_RATES,
    band_limited_noise,
    db,
    make_engine,
    mono_input,
    outs_of,
    sine,
    true_peak_db,
    undb,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.signal import lfilter

from livesound.audio import design
from livesound.audio import layout as L
from livesound.audio.meters import read_meters
from livesound.audio.settings import ConfigError
from livesound.control import derive
from livesound.enginehost import parse_out_lookahead

KINDS = ("noise", "impulses", "square", "clipped_sine", "jumps", "dc")
N_BUS = 4
LIMITED = N_BUS + 1  # buses 1-4 and main L carry their own settings


def adversarial(kind: str, n: int, amp: float, fs: int, seed: int) -> np.ndarray:
    """A nasty input of peak ``amp`` (the engine treats >= 1e4 as broken)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    if kind == "noise":
        return rng.uniform(-amp, amp, n)
    if kind == "impulses":
        x = np.zeros(n)
        hits = rng.integers(0, n, size=max(1, n // 200))
        x[hits] = amp * rng.choice([-1.0, 1.0], size=hits.size)
        return x
    if kind == "square":
        f = rng.uniform(20.0, fs / 3)
        return amp * np.sign(np.sin(2 * np.pi * f * t / fs) + 1e-9)
    if kind == "clipped_sine":
        f = rng.uniform(20.0, fs / 3)
        return np.clip(8.0 * amp * np.sin(2 * np.pi * f * t / fs), -amp, amp)
    if kind == "jumps":
        edges = np.sort(rng.integers(0, n, size=12))
        levels = rng.uniform(-amp, amp, size=13)
        return levels[np.searchsorted(edges, t, side="right")]
    return np.full(n, amp * rng.choice([-1.0, 1.0]))  # dc


@st.composite
def scenarios(draw):
    fs = draw(st.sampled_from(SAMPLE_RATES))
    n = draw(st.integers(500, 5000))
    amp = 10.0 ** draw(st.floats(-1.0, 4.0))  # 0.1 .. 1e4 (+80 dBFS)
    x1 = adversarial(
        draw(st.sampled_from(KINDS)), n, amp, fs, draw(st.integers(0, 2**32 - 1))
    )
    x2 = adversarial(
        draw(st.sampled_from(KINDS)), n, amp, fs, draw(st.integers(0, 2**32 - 1))
    )
    # A hand-made stretch that hypothesis can shrink, spliced into ch 1.
    splice = draw(arrays(np.float64, st.integers(0, 48), elements=st.floats(-1e4, 1e4)))
    at = draw(st.integers(0, n - 1))
    x1[at : at + splice.size] = splice[: n - at]
    ceilings = draw(st.lists(st.floats(-20.0, 0.0), min_size=5, max_size=5))
    s = {
        "/ch/01/mix/fader": draw(st.floats(-10.0, 10.0)),
        "/ch/02/mix/fader": draw(st.floats(-10.0, 10.0)),
        "/ch/01/preamp/trim": draw(st.floats(-18.0, 18.0)),
        "/ch/02/mix/pan": draw(st.floats(-100.0, 100.0)),
        "/config/buslink/1-2": int(draw(st.booleans())),
        "/ls/main/st/limiter/ceiling": ceilings[4],
        "/ls/main/st/limiter/truepeak": int(draw(st.booleans())),
        "/ls/main/st/limiter/release": draw(st.floats(1.0, 2000.0)),
        "/ch/01/eq/3/g": draw(st.floats(-15.0, 15.0)),
    }
    for b in range(1, N_BUS + 1):
        lim = f"/ls/bus/{b:02d}/limiter"
        s[f"{lim}/ceiling"] = ceilings[b - 1]
        s[f"{lim}/truepeak"] = int(draw(st.booleans()))
        s[f"{lim}/release"] = draw(st.floats(1.0, 2000.0))
        s[f"/ch/01/mix/{b:02d}/level"] = draw(st.floats(-10.0, 10.0))
        s[f"/ch/02/mix/{b:02d}/level"] = draw(st.floats(-10.0, 10.0))
        s[f"/bus/{b:02d}/mix/fader"] = draw(st.floats(-10.0, 10.0))
    block = draw(st.sampled_from([1, 7, 64, 333, 1024]))
    # Each stereo pair (buses 1-2, 3-4, main, cue) its own lookahead, and
    # the mono bus and each matrix theirs.
    pairs = draw(st.lists(st.floats(0.05, 2.5), min_size=4, max_size=4))
    singles = draw(st.lists(st.floats(0.05, 2.5), min_size=1 + L.N_MTX,
                            max_size=1 + L.N_MTX))  # fmt: skip
    lookaheads = tuple(ms for ms in pairs for _ in range(2)) + tuple(singles)
    return fs, np.column_stack([x1, x2]), s, block, lookaheads


def run_scenario(fs, x, s, block, lookaheads):
    e = make_engine(fs, n_bus=N_BUS, out_lookahead_ms=lookaheads)
    e.mixer.set_many(s)
    inp = np.zeros((len(x), e.dims.phys_in))
    inp[:, :2] = x
    y = e.render(inp, block=block)
    outs = e.core.arrays["outs"]
    return e, y, outs[L.OP_LIM_CEIL].copy(), outs[L.OM_PEAK].copy(), outs[L.OM_CLIPS]


FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(scenarios())
def test_no_sample_above_the_ceiling(scenario):
    e, y, ceil, pre_clip_peak, _ = run_scenario(*scenario)
    assert np.all(np.isfinite(y))
    peak = np.abs(y).max(axis=0)
    # The output, and the limiter's own output before the safety clip.
    assert np.all(peak <= ceil * (1 + 1e-6)), (peak / ceil).tolist()
    assert np.all(pre_clip_peak <= ceil * (1 + 1e-6)), (pre_clip_peak / ceil).tolist()


@FAST
@given(scenarios())
def test_safety_clip_never_has_to_act(scenario):
    e, y, ceil, pre_clip_peak, clips = run_scenario(*scenario)
    assert np.all(clips == 0), (
        f"clips {clips.tolist()}, pre-clip peak / ceiling - 1: "
        f"{(pre_clip_peak / ceil - 1).tolist()}"
    )


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_safety_clip_idle_on_a_loud_sine(fs):
    """Minimal repro: a 997 Hz sine 20 dB over a -1 dBFS bus ceiling."""
    e = make_engine(fs)
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": 0.0})
    e.render(mono_input(e, sine(fs // 2, 997.0, fs, 9.0)), block=64)
    outs = e.core.arrays["outs"]
    assert outs[L.OM_LIM_GR, 0] < 0.2  # it was limiting
    assert outs[L.OM_CLIPS, 0] == 0, outs[L.OM_PEAK, 0] / outs[L.OP_LIM_CEIL, 0] - 1


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_a_lowered_ceiling_holds_within_one_lookahead(fs):
    """Samples already in the lookahead were detected against the old
    ceiling: the new one is in force one lookahead later, and in between the
    limiter hands over without the safety clip hard-clipping anything."""
    old, new = -1.0, -12.0
    e = make_engine(fs)
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": 0.0})
    x = mono_input(e, sine(fs // 2, 997.0, fs, undb(old + 6.0)))
    e.render(x[: fs // 4], block=64)
    e.mixer.set("/ls/bus/01/limiter/ceiling", new)
    read_meters(e.core)  # meters restart in the block the new ceiling lands
    y = e.render(x[fs // 4 :], block=64)[:, 0]
    lat = e.latency
    assert np.abs(y[: lat + 1]).max() <= undb(old) * (1 + 1e-6)
    assert np.abs(y[lat + 1 :]).max() <= undb(new) * (1 + 1e-6)
    assert e.core.arrays["outs"][L.OM_CLIPS, 0] == 0


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_limiter_is_transparent_below_the_ceiling(fs):
    e = make_engine(fs)
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": 0.0})
    x = sine(fs // 4, 440.0, fs, undb(-1.5))  # just under the -1 dBFS ceiling
    y = e.render(mono_input(e, x), block=64)
    lat = e.latency
    outs = e.core.arrays["outs"]
    assert outs[L.OM_LIM_GR, 0] == 1.0
    assert outs[L.OM_CLIPS, 0] == 0
    # Only the switched-off input high-pass (a 1 Hz Butterworth) and float32
    # rounding separate in and out.
    hp = design.high_pass(fs, derive.BYPASS_CUT_HZ, design.BUTTERWORTH2_Q)
    want = lfilter(hp[:3], np.r_[1.0, hp[3:]], x)
    np.testing.assert_allclose(y[lat:, 0], want[:-lat], rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------
# True peak
# ---------------------------------------------------------------------------


def inter_sample_overs(kind: str, n: int, fs: int) -> np.ndarray:
    if kind == "fs4_45deg":
        # Samples at +-0.707, the waveform between them reaches 1.0 (+3 dB).
        return sine(n, fs / 4, fs, 1.0, np.pi / 4)
    if kind == "noise_0.3fs":
        # Loud material well inside the band of any 4x interpolator.
        return band_limited_noise(n, fs, seed=3, top_hz=0.3 * fs)
    # Loud program material filling the audio band (to 20 kHz).
    return band_limited_noise(n, fs, seed=3, top_hz=20000.0)


def render_true_peak(fs, kind, ceiling_db, truepeak):
    e = make_engine(fs)
    e.mixer.set_many(
        {
            "/ch/01/mix/fader": 0.0,
            "/ch/01/mix/01/level": 0.0,
            "/ls/bus/01/limiter/ceiling": ceiling_db,
            "/ls/bus/01/limiter/truepeak": truepeak,
        }
    )
    x = inter_sample_overs(kind, fs // 2, fs) * undb(ceiling_db + 4.0)
    y = e.render(mono_input(e, x), block=64)
    return y[fs // 10 :, 0]  # after the 1 Hz bypass high-pass settled


TRUE_PEAK_CASES = [
    (fs, kind)
    for fs in SAMPLE_RATES
    for kind in ("fs4_45deg", "noise_0.3fs", "noise_20k")
]


@pytest.mark.parametrize(("fs", "kind"), TRUE_PEAK_CASES)
@pytest.mark.parametrize("ceiling_db", [-1.0, -6.0])
def test_true_peak_mode_holds_the_true_peak(fs, kind, ceiling_db):
    y = render_true_peak(fs, kind, ceiling_db, truepeak=1)
    assert true_peak_db(y) <= ceiling_db + 0.1
    assert db(np.abs(y).max()) <= ceiling_db + 1e-5


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize("kind", ["fs4_45deg", "noise_0.3fs"])
@pytest.mark.parametrize("ceiling_db", [-1.0, -6.0])
def test_sample_peak_mode_lets_inter_sample_overs_through(fs, kind, ceiling_db):
    """The same signals do exceed the ceiling without true-peak detection."""
    y = render_true_peak(fs, kind, ceiling_db, truepeak=0)
    assert db(np.abs(y).max()) <= ceiling_db + 1e-5
    assert true_peak_db(y) > ceiling_db + 0.1


# ---------------------------------------------------------------------------
# Latency
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize("lookahead_ms", [0.05, 1.0, 2.5])
@pytest.mark.parametrize(
    ("on", "truepeak"), [(1, 0), (1, 1), (0, 0)], ids=["sample", "truepeak", "off"]
)
def test_reported_latency_is_the_delay_of_an_impulse(fs, lookahead_ms, on, truepeak):
    e = make_engine(fs, lookahead_ms=lookahead_ms)
    o = outs_of(e)
    settings_ = {"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": 0.0}
    for pre in ("/ls/bus/01", "/ls/main/st"):
        settings_[f"{pre}/limiter/on"] = on
        settings_[f"{pre}/limiter/truepeak"] = truepeak
    e.mixer.set_many(settings_)
    assert e.latency == max(L.TP_DELAY + 1, round(lookahead_ms * fs / 1000))
    x = np.zeros(4096)
    x[100] = 0.5
    y = e.render(mono_input(e, x), block=64)
    for out in (o.bus(1), o.main_l, o.cue_l, o.cue_r):
        assert np.argmax(np.abs(y[:, out])) == 100 + e.latency, out
    # Every output, used or not, carries the same latency: nothing arrives early.
    assert np.all(y[: 100 + e.latency] == 0.0)


@pytest.mark.parametrize("fs", SAMPLE_RATES)
def test_each_output_is_as_late_as_its_own_lookahead(fs):
    # In-ear mixes on buses 1-2 at 0.25 ms, the rest at the default 1 ms.
    short = (0.25, 0.25) + (1.0,) * (L.n_outputs(4) - 2)
    e = make_engine(fs, out_lookahead_ms=short)
    o = outs_of(e)
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": 0.0,
                      "/ch/01/mix/02/level": 0.0, "/ch/01/mix/03/level": 0.0,
                      "/ls/bus/01/limiter/truepeak": 1})  # fmt: skip
    x = np.zeros(4096)
    x[100] = 0.5
    y = e.render(mono_input(e, x), block=64)
    samples = [max(L.TP_DELAY + 1, round(ms * fs / 1000)) for ms in short]
    assert e.dims.lookaheads == tuple(samples)
    for out, late in ((o.bus(1), samples[0]), (o.bus(2), samples[1]),
                      (o.bus(3), samples[2]), (o.main_l, samples[4])):  # fmt: skip
        assert np.argmax(np.abs(y[:, out])) == 100 + late, out
    assert samples[0] < samples[2]
    # A pair keeps one lookahead: both sides of the in-ear mix stay aligned.
    np.testing.assert_array_equal(y[:, o.bus(1)], y[:, o.bus(2)])


def test_out_lookahead_specs_name_outputs_and_keep_pairs_together():
    ms = parse_out_lookahead(["1-4=0.25", "L,R=0.5"], 8, 1.0)
    assert ms == (0.25,) * 4 + (1.0,) * 4 + (0.5, 0.5) + (1.0,) * (3 + L.N_MTX)
    for bad, says in (("3=0.25", "3 and 4 are a stereo pair"),
                      ("L=0.5", "L and R are a stereo pair"),
                      ("9-10=0.25", "'9-10' is not an output"),
                      ("1-2=0.1", "use 0.2 to 5.0 ms"),
                      ("1-2", "write OUTPUTS=MS")):  # fmt: skip
        with pytest.raises(ConfigError, match=says):
            parse_out_lookahead([bad], 8, 1.0)

"""The adaptive feedback canceller (livesound.audio.afc): its FFT, its
predictor, identification of a known path, a closed loop it keeps stable,
and the audio plane's rule that the per-block functions never allocate."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import scipy.signal

from livesound.audio import afc
from livesound.bench import feedback
from livesound.control.offline import BlockEngine
from livesound.virtual import metrics, sources
from livesound.virtual.sim import (
    AfcLoop,
    FeedbackLoop,
    Path,
    engine_response,
    margin_db,
    stage_path,
)

SR = 48000
BLOCK = 64


@pytest.mark.parametrize("n", [4, 8, 64, 128, 1024])
def test_real_fft_matches_numpy(n):
    rng = np.random.default_rng(n)
    tw, rev, split = afc.fft_tables(n)
    z = np.zeros(n // 2, complex)
    for _ in range(5):
        x = rng.standard_normal(n)
        spec = np.zeros(n // 2 + 1, complex)
        afc.rfft_into(x, spec, z, tw, rev, split)
        want = np.fft.rfft(x)
        assert np.max(np.abs(spec - want)) <= 1e-12 * np.max(np.abs(want))
        back = np.zeros(n)
        afc.irfft_into(want, back, z, tw, rev, split)
        assert np.max(np.abs(back - x)) <= 1e-12 * np.max(np.abs(x))


def test_complex_fft_matches_numpy():
    rng = np.random.default_rng(1)
    tw, rev, _ = afc.fft_tables(256)
    z = rng.standard_normal(128) + 1j * rng.standard_normal(128)
    want = np.fft.fft(z)
    afc.fft_inplace(z, tw, rev)
    assert np.max(np.abs(z - want)) <= 1e-12 * np.max(np.abs(want))


def test_fft_size_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        afc.fft_tables(96)


def _ar2(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An AR(2) process with a resonance (poles 0.95 at ±0.2π) and its
    prediction-error filter."""
    a = np.array([1.0, -2 * 0.95 * np.cos(0.2 * np.pi), 0.95**2])
    noise = np.random.default_rng(seed).standard_normal(n)
    return scipy.signal.lfilter([1.0], a, noise), a


def test_levinson_solves_the_normal_equations():
    x, _ = _ar2(48000)
    order = 12
    r = np.array([x[lag:] @ x[: len(x) - lag] for lag in range(order + 1)])
    a = np.zeros(order + 1)
    err = afc.levinson(r, a, np.zeros(order + 1))
    # The Yule-Walker equations: R·a[1:] = -r[1:].
    want = scipy.linalg.solve_toeplitz(r[:order], -r[1:])
    np.testing.assert_allclose(a[1:], want, rtol=1e-9, atol=1e-12)
    assert a[0] == 1.0
    assert err == pytest.approx(r[0] + r[1:] @ a[1:], rel=1e-9)


def _flatness_db(x: np.ndarray) -> float:
    """Largest deviation (dB) of the Welch spectrum from its median."""
    _, psd = scipy.signal.welch(x, nperseg=256)
    level = 10 * np.log10(psd[1:-1])
    return float(np.max(np.abs(level - np.median(level))))


def test_predictor_whitens_an_ar2_process():
    """The canceller's own predictor, fed the AR(2) process as its corrected
    mic signal, finds the process's filter, and that filter leaves a flat
    residual (within 3 dB of its median: the fit of one 20 ms frame at order
    16 has its estimation noise) where the process itself spans over 20 dB."""
    x, a_true = _ar2(4 * SR)
    st = afc.make_state(BLOCK, 4, order=16)
    for b in range(len(x) // BLOCK):
        afc.afc_adapt(st, x[b * BLOCK : (b + 1) * BLOCK])
    # One 20 ms frame's fit: the higher orders carry its estimation noise.
    np.testing.assert_allclose(st.a[:3], a_true, atol=0.05)
    assert _flatness_db(x) > 20.0
    assert _flatness_db(scipy.signal.lfilter(st.a, [1.0], x)) < 3.0


def _known_path(seed: int = 0) -> np.ndarray:
    """A loudspeaker-to-mic FIR inside the filter's reach: direct sound at 2 ms,
    a decaying tail to 60 ms."""
    rng = np.random.default_rng(seed)
    f = np.zeros(3000)
    f[96] = 0.5
    f[97] = 0.2
    tail = np.arange(2800)
    f[200:] = 0.05 * rng.standard_normal(tail.size) * np.exp(-tail / 500.0)
    return f


def _misalignment_db(path: np.ndarray, estimate: np.ndarray) -> float:
    size = max(len(path), len(estimate))
    a, b = np.zeros(size), np.zeros(size)
    a[: len(path)] = path
    b[: len(estimate)] = estimate
    return 20 * np.log10(np.linalg.norm(a - b) / np.linalg.norm(a))


def test_identifies_a_known_path_from_white_noise():
    """Open loop: white noise played, the mic hears it through a known path
    plus a quiet near-end source. After 3 s F̂ is within −25 dB of F, and the
    corrected mic signal is the source again (the feedback 25 dB down)."""
    f = _known_path()
    rng = np.random.default_rng(2)
    n = 3 * SR
    played = 0.1 * rng.standard_normal(n)
    near = 1e-3 * rng.standard_normal(n)
    mic = np.convolve(played, f)[:n] + near
    st = afc.make_state(BLOCK, 64, mu=0.2)
    out = np.zeros(n)
    last = np.zeros(BLOCK)
    for b in range(n // BLOCK):
        cut = slice(b * BLOCK, (b + 1) * BLOCK)
        block = mic[cut].copy()
        afc.afc_block(st, block, last)
        out[cut] = block
        last = played[cut]
    assert _misalignment_db(f, afc.impulse_response(st)) < -25.0
    second = slice(2 * SR, 3 * SR)
    feedback = mic[second] - near[second]
    left = out[second] - near[second]
    assert 20 * np.log10(np.linalg.norm(left) / np.linalg.norm(feedback)) < -25.0
    assert st.counters[afc.I_RESETS] == 0  # the guard leaves a learning F̂ alone


def test_a_diverged_estimate_starts_over_and_its_block_passes_uncorrected():
    """F̂ gone wild (here: 30 dB over the real path, as a step too large for
    a long-quiet bin leaves it): the corrected mic stands far over what was
    heard, so within the guard's smoothing the canceller starts over, counts
    it, and that block passes as heard; then it learns the path again."""
    f = _known_path()
    rng = np.random.default_rng(4)
    st = afc.make_state(BLOCK, 64, mu=0.2, guard_blocks=32)
    st.w[:] = 30.0 * (
        rng.standard_normal(st.w.shape) + 1j * rng.standard_normal(st.w.shape)
    )
    n = 3 * SR
    played = 0.1 * rng.standard_normal(n)
    mic = np.convolve(played, f)[:n] + 1e-3 * rng.standard_normal(n)
    last = np.zeros(BLOCK)
    reset_at = None
    for b in range(n // BLOCK):
        cut = slice(b * BLOCK, (b + 1) * BLOCK)
        block = mic[cut].copy()
        afc.afc_block(st, block, last)
        if reset_at is None and st.counters[afc.I_RESETS]:
            reset_at = b
            heard = mic[cut]
            # Passed uncorrected (then through no delay: this state has none).
            np.testing.assert_allclose(block, heard, rtol=0, atol=1e-12)
        last = played[cut]
    assert reset_at is not None and reset_at < 64
    assert st.counters[afc.I_RESETS] == 1
    assert _misalignment_db(f, afc.impulse_response(st)) < -20.0


def test_reset_forgets_the_path():
    st = afc.make_state(BLOCK, 8)
    rng = np.random.default_rng(3)
    for _ in range(50):
        afc.afc_block(st, rng.standard_normal(BLOCK), rng.standard_normal(BLOCK))
    assert np.any(afc.impulse_response(st))
    afc.reset(st)
    assert not np.any(afc.impulse_response(st))
    assert st.a[0] == 1.0 and not np.any(st.a[1:])


def test_settings_are_checked():
    with pytest.raises(ValueError, match="step size"):
        afc.make_state(BLOCK, 8, mu=0.0)
    with pytest.raises(ValueError, match="constrain"):
        afc.make_state(BLOCK, 8, constrain_per_block=9)


def _engine() -> BlockEngine:
    """A vocal mic sent pre-fader to its wedge, no suppressor: only the
    canceller stands between the loop and a howl."""
    engine = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=6, sample_rate=SR)
    engine.mixer.set_many({"/ch/01/preamp/hpon": 1, "/ch/01/preamp/hpf": 100.0,
                           "/ch/01/mix/01/type": 3, "/ls/bus/01/fbs/mode": "off",
                           "/ch/01/mix/01/level": 0.0})  # fmt: skip
    return engine


def _closed_loop(cancel: bool, path: np.ndarray, send_db: float, seconds: float):
    """Speech into the loop at ``send_db``; the wedge's signal, its reference
    (no room), and the loop."""
    source = sources.speech(SR, seconds)
    engine = _engine()
    engine.mixer.set("/ch/01/mix/01/level", send_db)
    loop_type = AfcLoop if cancel else FeedbackLoop
    loop = loop_type(engine, [Path(0, 0, path)])
    dry = _engine()
    dry.mixer.set("/ch/01/mix/01/level", send_db)
    x = np.zeros((BLOCK, 2))
    out, ref = np.zeros(len(source)), np.zeros(len(source))
    for b in range(len(source) // BLOCK):
        cut = slice(b * BLOCK, (b + 1) * BLOCK)
        x[:, 0] = source[cut]
        out[cut] = loop.process(x)[:, 0]
        ref[cut] = dry.process(x)[:, 0]
    return out, ref, loop


def test_closed_loop_stays_stable_above_msg_with_the_canceller():
    """A short, damped room, the send 3 dB over its MSG from the start: the
    loop alone howls to the end, held at the limiter; with the canceller the
    same loop howls only while F̂ converges (about 1.5 s here): its second
    half has no howl, its last 2 s stay well under the limiter, and the loop
    F̂ leaves has margin."""
    path = stage_path(SR, 1.5, 0.15, drr_db=0.0, seed=4, length_s=0.08)
    msg = margin_db(_engine(), Path(0, 0, path), 1 << 16)
    seconds = 6.0
    last = slice(-2 * SR, None)
    out, ref, _ = _closed_loop(False, path, msg + 3.0, seconds)
    howls = metrics.howling(out, ref, SR, min_frames=5, quiet_db=20.0)
    assert np.all(howls[len(howls) // 2 :]), "the loop alone should howl on"
    assert np.max(np.abs(out[last])) > 0.8
    out, ref, loop = _closed_loop(True, path, msg + 3.0, seconds)
    assert np.all(np.isfinite(out))
    howls = metrics.howling(out, ref, SR, min_frames=5, quiet_db=20.0)
    assert not np.any(howls[len(howls) // 2 :])
    assert np.max(np.abs(out[last])) < 2 * np.max(np.abs(ref[last]))
    residual = path - loop.estimate(0)[: len(path)]
    engine = _engine()
    engine.mixer.set("/ch/01/mix/01/level", msg + 3.0)
    assert margin_db(engine, Path(0, 0, residual), 1 << 16) > 0.0


def _two_wedges() -> BlockEngine:
    """The vocal mic (input 1) in two wedges (buses 1 and 2); bus 2 also
    carries a band (input 2), so the wedges play different signals."""
    engine = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=6, sample_rate=SR)
    engine.mixer.set_many({"/ch/01/preamp/hpon": 1, "/ch/01/preamp/hpf": 100.0,
                           "/ch/01/mix/01/type": 3, "/ch/02/mix/01/type": 3,
                           "/ch/01/mix/01/level": 0.0, "/ch/01/mix/02/level": 0.0,
                           "/ch/02/mix/01/level": -90.0, "/ch/02/mix/02/level": 0.0,
                           "/ls/bus/01/fbs/mode": "off",
                           "/ls/bus/02/fbs/mode": "off"})  # fmt: skip
    return engine


def test_two_wedges_into_one_mic_each_get_a_canceller():
    """Two paths into one mic, the sends 3 dB over the MSG of the loop they
    make together: alone it howls throughout, held at the limiter; with a
    canceller per path (adapting on the one corrected mic) it settles in
    about 4 s, rings only now and then after words in the second half, its
    last 2 s stay at the dry signal's level, and the loop the two
    estimates leave has margin."""
    n_fft = 1 << 16
    paths = [Path(0, 0, stage_path(SR, 1.5, 0.15, seed=4, length_s=0.08)),
             Path(1, 0, stage_path(SR, 2.2, 0.15, seed=8, length_s=0.08))]  # fmt: skip
    forward = [engine_response(_two_wedges(), n_fft, mic=0, output=p.output)
               for p in paths]  # fmt: skip

    def msg(irs: list[np.ndarray]) -> float:
        return metrics.msg_db(sum(g * metrics.path_response(ir, n_fft)
                                  for g, ir in zip(forward, irs, strict=True)))  # fmt: skip

    send = msg([p.ir for p in paths]) + 3.0
    seconds = 8.0
    voice = sources.speech(SR, seconds)
    band = 0.5 * sources.music(SR, seconds, seed=1)
    runs = {}
    for cancel in (False, True):
        engine, dry = _two_wedges(), _two_wedges()
        for e in (engine, dry):
            e.mixer.set_many({"/ch/01/mix/01/level": send, "/ch/01/mix/02/level": send})
        loop = (AfcLoop if cancel else FeedbackLoop)(engine, paths)
        x = np.zeros((BLOCK, 2))
        out, ref = np.zeros(len(voice)), np.zeros(len(voice))
        for b in range(len(voice) // BLOCK):
            cut = slice(b * BLOCK, (b + 1) * BLOCK)
            x[:, 0], x[:, 1] = voice[cut], band[cut]
            out[cut] = loop.process(x)[:, 0]
            ref[cut] = dry.process(x)[:, 0]
        howls = metrics.howling(out, ref, SR, min_frames=5, quiet_db=20.0)
        last = slice(-2 * SR, None)
        peak = np.max(np.abs(out[last])) / np.max(np.abs(ref[last]))
        runs[cancel] = np.mean(howls[len(howls) // 2 :]), peak, loop
    share, peak, _ = runs[False]
    assert share == 1.0 and peak > 5.0, "two wedges over their MSG should howl on"
    share, peak, loop = runs[True]
    assert share < 0.5
    assert peak < 2.0
    left = [p.ir - loop.estimate(i)[: len(p.ir)] for i, p in enumerate(paths)]
    assert msg(left) > send


# Compiled afresh in a child with an empty numba cache (code loaded from the
# cache has no IR to inspect): for every function compiled into each per-block
# function's module, and into the engine's callback (which runs the
# cancellers), the runtime and Python API functions it calls.
_CALLS = r"""
import json, re, sys
import numpy as np
from numba import njit
from livesound.audio import afc, kernels
from livesound.bench import feedback

@njit
def allocates(n):
    return np.zeros(n)

allocates(3)
st = afc.make_state(64, 8)
b = np.zeros(64)
afc.afc_block(st, b.copy(), b)
afc.afc_push(st, b)
afc.afc_estimate(st, b)
afc.afc_adapt(st, b)
calls = {}
for f in (allocates, afc.afc_block, afc.afc_push, afc.afc_estimate, afc.afc_adapt,
          kernels.run_callback):
    ir = "\n".join(f.inspect_llvm().values())
    for m in re.finditer(r'^define [^\n]*?@("[^"]+"|[\w.$]+)\(.*?^}', ir, re.M | re.S):
        called = re.findall(r'call [^@\n]*@"?(NRT_\w+|numba_\w+|Py\w+)', m.group(0))
        calls[m.group(1)] = sorted(set(called))
json.dump(calls, sys.stdout)
"""
# Python's C-API wrappers (``cpython``, ``cfunc``) box and unbox arguments for
# calls from Python; the audio callback calls the bodies.
_WRAPPERS = ("_ZN7cpython", "cfunc.", "__excinfo")
_FORBIDDEN = ("NRT_MemInfo_alloc", "NRT_Allocate", "numba_gil_ensure", "Py")


def test_per_block_functions_do_not_allocate(tmp_path):
    """The audio plane's rule, checked on the compiled code: nothing compiled
    into the per-block functions calls numba's allocator or takes the GIL
    (reference counts on views of the state are not allocations). A function
    that allocates is caught by the same check, so the check can fail."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _CALLS], env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    calls = json.loads(done.stdout)
    bodies = {name: called for name, called in calls.items()
              if not name.startswith(_WRAPPERS)}  # fmt: skip
    allocating = [name for name, called in bodies.items()
                  if any(c.startswith(_FORBIDDEN) for c in called)]  # fmt: skip
    assert any("allocates" in name for name in allocating)
    ours = [name for name in bodies if "3afc" in name]
    assert any("afc_block" in name for name in ours)
    assert any("levinson" in name for name in ours)
    assert any("run_callback" in name for name in bodies)
    assert any("afc_cancel" in name for name in bodies)
    assert any("afc_played" in name for name in bodies)
    assert [name for name in allocating if "allocates" not in name] == []


def test_bench_scores_the_loop_the_canceller_leaves():
    """The bench's cancelled loop is F − F̂: no estimate leaves the loop's own
    MSG, a perfect one leaves nothing to howl, half of it 6 dB more gain."""
    path = stage_path(SR, 1.5, 0.3, seed=5, length_s=0.1)
    msg0 = feedback.msg_db(path, {})
    assert feedback.msg_db(feedback._residual(path, None), {}) == msg0
    assert feedback.msg_db(feedback._residual(path, path), {}) == np.inf
    half = feedback._residual(path, 0.5 * path[:1000])
    assert len(half) == len(path)
    whole = feedback.msg_db(feedback._residual(path, 0.5 * path), {})
    assert whole == pytest.approx(msg0 + 20 * np.log10(2), abs=1e-6)


def test_learning_takes_the_large_step_and_every_partition_then_keeps_it():
    """A canceller learning (``I_LEARN``) from its test signal: white noise at
    ``learn_rms`` added to what it is given to play, F̂ learnt on all its
    partitions with ``mu_learn`` (a known path to within -20 dB in 2 s, open
    loop); ended, it keeps F̂ with ``mu_learnt``; a reset forgets it and the
    cold step and partitions come back. Not learning, nothing is added."""
    f = _known_path()
    st = afc.make_state(BLOCK, 128, cold_partitions=32)
    assert (afc.step(st), afc.partitions(st)) == (0.01, 32)
    silent = np.zeros(BLOCK)
    afc.learn_signal(st, silent)
    assert not silent.any()
    st.counters[afc.I_LEARN] = 1
    played = np.zeros(2 * SR)
    for b in range(len(played) // BLOCK):
        afc.learn_signal(st, played[b * BLOCK : (b + 1) * BLOCK])
    assert np.sqrt(np.mean(played**2)) == pytest.approx(0.1, rel=0.02)
    mic = np.convolve(played, f)[: len(played)]
    for b in range(1, len(played) // BLOCK):
        afc.afc_push(st, played[(b - 1) * BLOCK : b * BLOCK].copy())
        block = mic[b * BLOCK : (b + 1) * BLOCK].copy()
        afc.afc_cancel(st, block)
        afc.afc_adapt(st, block)
    assert _misalignment_db(f, afc.impulse_response(st)) < -20.0
    assert (afc.step(st), afc.partitions(st)) == (0.7, 128)
    st.counters[afc.I_LEARN] = 0
    assert (afc.step(st), afc.partitions(st)) == (0.0003, 128)
    afc.reset(st)
    assert (afc.step(st), afc.partitions(st)) == (0.01, 32)


def test_bench_level_is_the_last_frames_against_the_reference():
    """Twice the reference over the frames judged reads +6.02 dB whatever
    came before them; the same signal reads 0; a silent run reads its floor,
    not an error."""
    rng = np.random.default_rng(3)
    ref = rng.standard_normal(4 * SR)
    out = ref.copy()
    out[: 3 * SR] *= 100.0  # a howl early on, recovered
    out[3 * SR :] *= 2.0
    assert feedback.level_re_db(out, ref, SR) == pytest.approx(20 * np.log10(2))
    assert feedback.level_re_db(ref, ref, SR) == 0.0
    assert feedback.level_re_db(np.zeros(SR), ref, SR) < -150.0
    with pytest.raises(ValueError, match="takes must be 1 or more"):
        feedback.run(emit=lambda _line: None, takes=0)


def test_non_finite_signals_never_poison_the_filter():
    """A non-finite block played, or a mic block, is passed over: F̂ keeps
    what it learnt (or starts over), and the corrected mic is finite again
    at the next finite block."""
    f = _known_path()
    rng = np.random.default_rng(6)
    st = afc.make_state(BLOCK, 64, mu=0.2)
    played = 0.1 * rng.standard_normal(SR)
    mic = np.convolve(played, f)[: len(played)]
    last = np.zeros(BLOCK)
    for b in range(len(played) // BLOCK):
        cut = slice(b * BLOCK, (b + 1) * BLOCK)
        block = mic[cut].copy()
        if b == 300:
            block[5] = np.nan
        if b == 400:
            last = last.copy()
            last[7] = np.inf
        afc.afc_block(st, block, last)
        if b not in (300, 400):
            assert np.all(np.isfinite(block)), b
        last = played[cut]
    assert np.all(np.isfinite(afc.impulse_response(st)))
    assert np.all(np.isfinite(st.power)) and np.all(np.isfinite(st.a))
    assert _misalignment_db(f, afc.impulse_response(st)) < -10.0


def test_the_decorrelation_delay_is_a_ring_across_blocks():
    """``afc_delay``: the block comes out ``delay`` samples late across block
    edges (a delay longer than a block too); not applied, the block is left
    as it is and the line still fills, so switching on plays no silence; a
    reset forgets F̂ but not the sound on its way."""
    rng = np.random.default_rng(5)
    signal = rng.standard_normal(BLOCK * 12)
    for delay in (0, 37, 240):
        st = afc.make_state(BLOCK, 8, delay=delay)
        out = signal.copy()
        for b in range(12):
            block = out[b * BLOCK : (b + 1) * BLOCK]
            if b == 6:
                afc.reset(st)
            afc.afc_delay(st, block, b >= 3)
        expected = np.concatenate([np.zeros(delay), signal])[: len(signal)]
        np.testing.assert_array_equal(out[3 * BLOCK :], expected[3 * BLOCK :])
        np.testing.assert_array_equal(out[: 3 * BLOCK], signal[: 3 * BLOCK])
    with pytest.raises(ValueError, match="delay"):
        afc.make_state(BLOCK, 8, delay=-1)

"""Source material for the feedback tests and benchmark: speech, music, held notes."""

import numpy as np
import pytest
from scipy import signal

from livesound.virtual import sources

SR = 48000
SECONDS = 12.0
FRAME, HOP = 4096, 1024


@pytest.fixture(scope="module")
def rendered() -> dict[str, np.ndarray]:
    return {
        "speech": sources.speech(SR, SECONDS, seed=1),
        "music": sources.music(SR, SECONDS, seed=1),
        "sustained": sources.sustained_notes(SR, SECONDS, seed=1),
        "held": sources.held_notes(SR, SECONDS, seed=1),
    }


def power_frames(x: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    return np.abs(np.fft.rfft(frames * np.hanning(FRAME), axis=-1)) ** 2


@pytest.mark.parametrize("kind", ["speech", "music", "sustained", "held"])
def test_exact_length_level_and_not_silent(rendered, kind):
    x = rendered[kind]
    assert x.dtype == np.float64
    assert x.shape == (round(SECONDS * SR),)
    assert 20 * np.log10(np.max(np.abs(x))) == pytest.approx(sources.PEAK_DBFS)
    assert 20 * np.log10(np.sqrt(np.mean(x**2))) > sources.PEAK_DBFS - 20
    assert np.all(np.isfinite(x))


@pytest.mark.parametrize(
    "render",
    [sources.speech, sources.music, sources.sustained_notes, sources.held_notes],
)
@pytest.mark.parametrize(("rate", "seconds"), [(44100, 0.5), (16000, 1.37)])
def test_any_rate_and_length_is_exact(render, rate, seconds):
    x = render(rate, seconds)
    assert x.shape == (round(seconds * rate),)
    assert np.max(np.abs(x)) == pytest.approx(10 ** (sources.PEAK_DBFS / 20))


def test_same_seed_same_material_other_seed_other_material():
    for render in (sources.speech, sources.music, sources.sustained_notes,
                   sources.held_notes):  # fmt: skip
        a, b = render(SR, 3.0, seed=4), render(SR, 3.0, seed=4)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, render(SR, 3.0, seed=5))


def test_speech_has_pauses_between_words(rendered):
    x = rendered["speech"]
    block = SR // 50  # 20 ms, shorter than a syllable
    level = 10 * np.log10(
        np.mean(x[: x.size // block * block].reshape(-1, block) ** 2, axis=1) + 1e-20
    )
    quiet = level < level.max() - 40
    # Talk and pause alternate: plenty of both, and many separate pauses.
    assert 0.1 < quiet.mean() < 0.6
    pauses = np.count_nonzero(np.diff(quiet.astype(int)) == 1)
    assert pauses >= SECONDS  # at least one a second


def test_speech_sits_in_the_voice_range(rendered):
    power = power_frames(rendered["speech"]).sum(axis=0)
    f = np.fft.rfftfreq(FRAME, 1 / SR)
    centroid = np.sum(f * power) / np.sum(power)
    assert 300 < centroid < 3000


def test_speech_cache_hands_out_copies():
    a = sources.speech(SR, 2.0)
    a[:] = 0.0
    assert np.any(sources.speech(SR, 2.0))


def test_missing_espeak_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="Debian package espeak-ng"):
        # Arguments no other test uses, so the cache cannot answer.
        sources.speech(SR, 0.123, seed=99)


def held_seconds(x: np.ndarray) -> np.ndarray:
    """Per bin, the longest time a spectral peak stands 30 dB over its frame's
    median in that bin or a neighbour, in seconds."""
    db = 10 * np.log10(power_frames(x) + 1e-20)
    inner = db[:, 1:-1]
    peaks = np.zeros(db.shape, dtype=bool)
    peaks[:, 1:-1] = (inner > db[:, :-2]) & (inner >= db[:, 2:])
    peaks &= db > np.median(db, axis=1, keepdims=True) + 30
    held = peaks.copy()
    held[:, 1:] |= peaks[:, :-1]
    held[:, :-1] |= peaks[:, 1:]
    run = np.zeros(held.shape[1], dtype=int)
    longest = run
    for frame in held:
        run = np.where(frame, run + 1, 0)
        longest = np.maximum(longest, run)
    return longest * HOP / SR


def test_the_flute_is_an_almost_pure_sine_held_for_seconds_in_the_music(rendered):
    db = 10 * np.log10(power_frames(rendered["sustained"]) + 1e-20)
    f = np.fft.rfftfreq(FRAME, 1 / SR)
    # The held material opens with the flute: one peak, its second harmonic
    # 30 dB or more down.
    opening = db[20]
    k = np.argmax(opening)
    assert 700 < f[k] < 1300
    assert opening[2 * k - 2 : 2 * k + 3].max() < opening[k] - 30
    # It stands still for seconds, alone and over the band.
    assert held_seconds(rendered["sustained"])[k] >= 2.5
    assert held_seconds(rendered["music"])[k] >= 2.5


@pytest.mark.parametrize(
    ("rate_in", "rate_out"), [(22050, 48000), (48000, 16000), (22050, 44100)]
)
@pytest.mark.parametrize("n", [22050, 22051])
def test_resampling_matches_scipy_and_keeps_a_sine_s_frequency(rate_in, rate_out, n):
    freq = 1234.5
    x = np.sin(2 * np.pi * freq * np.arange(n) / rate_in)
    y = sources.resample(x, rate_in, rate_out)
    n_out = round(n * rate_out / rate_in)
    np.testing.assert_allclose(y, signal.resample(x, n_out), atol=1e-9)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(n_out), 16 * n_out))
    measured = np.argmax(spectrum) * rate_out / (16 * n_out)
    assert measured == pytest.approx(freq, abs=1.0)


def test_held_notes_span_100_hz_to_4_khz():
    """Over a few seeds the held notes' fundamentals (each event's lowest strong
    peak) reach below 200 Hz and above 2 kHz, and none leaves 100 Hz-4 kHz."""
    lowest = []
    for seed in range(4):
        frames = power_frames(sources.held_notes(SR, 30.0, seed=seed))[::20]
        for p in frames:
            if p.max() < 1e-3 * frames.max():
                continue
            strong = np.flatnonzero(p >= p.max() * 10 ** (-20 / 10))
            lowest.append(strong.min() * SR / FRAME)
    lowest = np.array(lowest)
    assert lowest.min() < 200.0 and lowest.max() > 2000.0
    assert lowest.min() > 90.0 and lowest.max() < 4100.0

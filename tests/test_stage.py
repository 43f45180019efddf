"""Tests for the built-in virtual stage (livesound.virtual.stage)."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from livesound.virtual.stage import STAGE_CHANNELS, render_stage

SR = 48000
SHORT = 4.8  # two bars at exactly 100 BPM
TONAL = ("Bass", "Keys", "Lead vox", "Back vox")


def ch(name: str) -> int:
    return STAGE_CHANNELS.index(name)


@pytest.fixture(scope="module")
def band() -> np.ndarray:
    return render_stage(SR, SHORT, seed=0)


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    """The default 16 s loop (seven bars, so the tempo is bent to 105 BPM)."""
    return render_stage(44100)


def power_fraction(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    """Share of the signal's power between ``lo`` and ``hi`` Hz."""
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(x.shape[0], 1.0 / sr)
    return float(power[(freqs >= lo) & (freqs < hi)].sum() / power.sum())


def yin(frame: np.ndarray, sr: int, fmin: float = 140.0, fmax: float = 800.0) -> float:
    """Fundamental of ``frame`` in Hz by YIN (de Cheveigné & Kawahara), NaN if none."""
    tmin, tmax = int(sr / fmax), int(sr / fmin) + 1
    width = frame.shape[0] - tmax - 1
    lagged = sliding_window_view(frame, width)[: tmax + 2]
    diff = np.sum((lagged - frame[:width]) ** 2, axis=1)
    cmnd = np.ones_like(diff)
    cmnd[1:] = (
        diff[1:] * np.arange(1, tmax + 2) / np.maximum(np.cumsum(diff[1:]), 1e-30)
    )
    below = np.flatnonzero(cmnd[tmin : tmax + 1] < 0.15)
    if below.size == 0:
        return float("nan")
    lag = int(below[0]) + tmin
    while lag < tmax and cmnd[lag + 1] < cmnd[lag]:
        lag += 1
    a, b, c = cmnd[lag - 1 : lag + 2]
    return sr / (lag + 0.5 * (a - c) / (a - 2 * b + c))


def pitch_track(x: np.ndarray, sr: int, hop: float = 0.01) -> np.ndarray:
    """YIN fundamental every ``hop`` seconds over ~25 ms windows (NaN if quiet)."""
    n, step = int(0.025 * sr), int(hop * sr)
    frames = sliding_window_view(x.astype(np.float64), n)[::step]
    loud = np.sqrt(np.mean(frames**2, axis=1)) > 0.1 * np.abs(x).max()
    return np.array(
        [yin(f, sr) if v else np.nan for f, v in zip(frames, loud, strict=True)]
    )


def held_notes(track: np.ndarray, min_frames: int) -> list[slice]:
    """Runs of the pitch track that stay on one note for at least ``min_frames``."""
    # Averaging over about one vibrato cycle leaves the note; NaNs (silence) spread
    # so that a run never touches a gap.
    smooth = np.convolve(12 * np.log2(track), np.ones(18) / 18, mode="same")
    labels = np.round(smooth)
    runs, start = [], 0
    for i in range(1, labels.shape[0] + 1):
        if i == labels.shape[0] or labels[i] != labels[start]:
            if i - start >= min_frames and not np.isnan(labels[start]):
                runs.append(slice(start, i))
            start = i
    return runs


def vibrato_fit(f: np.ndarray, hop: float) -> tuple[float, float, float]:
    """Best sinusoid (plus a linear drift) through pitch track ``f``.

    Returns its rate in Hz, its depth in Hz either way, and the share of the
    detrended wobble it explains.
    """
    t = np.arange(f.shape[0]) * hop
    rates = np.arange(2.0, 12.0, 0.05)
    w = 2 * np.pi * rates[:, None] * t
    basis = np.stack([np.sin(w), np.cos(w), np.broadcast_to(t, w.shape)], axis=2)
    basis = np.concatenate([basis, np.ones_like(basis[..., :1])], axis=2)
    coef = np.linalg.pinv(basis) @ f
    residual = np.sum((np.einsum("rnk,rk->rn", basis, coef) - f) ** 2, axis=1)
    best = int(np.argmin(residual))
    wobble = f - np.polyval(np.polyfit(t, f, 1), t)
    explained = 1.0 - residual[best] / np.sum(wobble**2)
    return float(rates[best]), float(np.hypot(*coef[best, :2])), float(explained)


# --- shape, determinism, levels ----------------------------------------------------


def test_channel_names() -> None:
    assert STAGE_CHANNELS == (
        "Kick",
        "Snare",
        "Hi-hat",
        "Bass",
        "Guitar",
        "Keys",
        "Lead vox",
        "Back vox",
    )


@pytest.mark.parametrize(
    ("sample_rate", "seconds"), [(44100, 3.3), (48000, SHORT), (96000, 2.5)]
)
def test_shape_dtype_and_levels(sample_rate: int, seconds: float) -> None:
    x = render_stage(sample_rate, seconds)
    assert x.shape == (round(seconds * sample_rate), len(STAGE_CHANNELS))
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))
    peaks_db = 20 * np.log10(np.abs(x).max(axis=0))
    assert np.all(peaks_db >= -20.0), peaks_db
    assert np.all(peaks_db <= -3.0), peaks_db
    assert np.all(np.abs(x.mean(axis=0)) < 1e-3)


def test_default_song_levels(song: np.ndarray) -> None:
    assert song.shape == (16 * 44100, 8)
    peaks_db = 20 * np.log10(np.abs(song).max(axis=0))
    assert np.all((peaks_db >= -20.0) & (peaks_db <= -3.0)), peaks_db
    assert np.all(np.abs(song.mean(axis=0)) < 1e-3)
    # Every channel plays through the song, not just at the start.
    quarters = np.abs(song).reshape(4, -1, 8).max(axis=1)
    assert np.all(quarters > 0.1 * np.abs(song).max(axis=0))


def test_deterministic_per_seed(band: np.ndarray) -> None:
    np.testing.assert_array_equal(render_stage(SR, SHORT, seed=0), band)
    other = render_stage(SR, SHORT, seed=1)
    assert not np.array_equal(other, band)


@pytest.mark.parametrize(("sample_rate", "seconds"), [(0, 16.0), (48000, 0.5)])
def test_rejects_bad_arguments(sample_rate: int, seconds: float) -> None:
    with pytest.raises(ValueError):
        render_stage(sample_rate, seconds)


# --- the loop ----------------------------------------------------------------------


@pytest.mark.parametrize("name", TONAL)
def test_loop_seam_is_continuous(band: np.ndarray, song: np.ndarray, name: str) -> None:
    for x in (band[:, ch(name)], song[:, ch(name)]):
        seam = abs(float(x[0]) - float(x[-1]))
        assert seam <= np.abs(np.diff(x)).max()
        # Nor is it a jump compared with the signal right around it.
        around = np.concatenate([x[-48:], x[:48]])
        assert seam <= 1.5 * np.abs(np.diff(around)).max() + 1e-6


@pytest.mark.parametrize(
    ("fixture", "sr", "beat"), [("band", SR, 0.6), ("song", 44100, 16 / 28)]
)
def test_loop_is_whole_bars(
    request: pytest.FixtureRequest, fixture: str, sr: int, beat: float
) -> None:
    """Kick intervals across the wrap match those inside: the loop ends on a bar."""
    x = request.getfixturevalue(fixture)[:, ch("Kick")].astype(np.float64)
    # The beater's click marks each onset; the boom below it can land on the tail
    # of the kick before and peak a cycle late.
    click = signal.sosfiltfilt(
        signal.butter(4, 1000, "highpass", fs=sr, output="sos"), x
    )
    # Roll so no kick straddles the ends; intervals are taken round the loop.
    click = np.roll(np.abs(click), x.shape[0] // 3)
    block = int(0.002 * sr)
    env = click[: x.shape[0] // block * block].reshape(-1, block).max(axis=1)
    peaks, _ = signal.find_peaks(env, height=0.3 * env.max(), distance=75)
    gaps = np.diff(np.append(peaks, peaks[0] + env.shape[0])) * block / sr
    bars = round(x.shape[0] / sr / (4 * beat))
    # Kicks on beats 1, 2-and and 3 of every bar.
    expected = np.sort(np.tile(np.array([1.5, 0.5, 2.0]) * beat, bars))
    assert gaps.shape == expected.shape
    np.testing.assert_allclose(np.sort(gaps), expected, atol=0.02)


# --- what each instrument sounds like ----------------------------------------------


@pytest.mark.parametrize("sample_rate", [44100, 48000, 96000])
def test_spectral_balance(sample_rate: int) -> None:
    x = render_stage(sample_rate, 2.5)
    assert power_fraction(x[:, ch("Bass")], sample_rate, 0, 300) > 0.8
    assert power_fraction(x[:, ch("Hi-hat")], sample_rate, 4000, sample_rate) > 0.8
    assert power_fraction(x[:, ch("Kick")], sample_rate, 0, 200) > 0.6


def test_lead_vox_has_fundamental_and_harmonics(band: np.ndarray) -> None:
    x = band[:, ch("Lead vox")].astype(np.float64)
    hop = 0.01
    track = pitch_track(x, SR, hop)
    notes = held_notes(track, min_frames=30)
    assert notes, "no held note found in the lead vocal"
    f0s = [float(np.median(track[n])) for n in notes]
    assert all(150 <= f <= 700 for f in f0s), f0s
    assert len({round(12 * np.log2(f)) for f in f0s}) >= 2, "the melody never moves"

    # Look at the middle of the longest note.
    longest = int(np.argmax([n.stop - n.start for n in notes]))
    f0 = f0s[longest]
    centre = round((notes[longest].start + notes[longest].stop) / 2 * hop * SR)
    frame = x[centre - 2048 : centre + 2048] * np.hanning(4096)
    spec = np.abs(np.fft.rfft(frame))
    freqs = np.fft.rfftfreq(4096, 1 / SR)
    floor = np.median(spec[(freqs > 50) & (freqs < 5000)])
    levels = []
    for k in (1, 2, 3):
        near = np.abs(freqs - k * f0) < 0.03 * k * f0 + 15
        levels.append(spec[near].max())
        assert levels[-1] > 30 * floor, f"harmonic {k} missing"
    # The fundamental is a real peak, not a residue under the formants.
    assert levels[0] > 0.05 * spec[freqs < 5000].max()


@pytest.mark.parametrize(("fixture", "sr"), [("band", SR), ("song", 44100)])
def test_lead_vox_has_vibrato(
    request: pytest.FixtureRequest, fixture: str, sr: int
) -> None:
    hop = 0.01
    track = pitch_track(request.getfixturevalue(fixture)[:, ch("Lead vox")], sr, hop)
    fits = [
        vibrato_fit(track[start : start + 40], hop)
        for note in held_notes(track, min_frames=65)
        # Skip the scoop into each note and the vibrato fading in, then look at
        # 0.4 s (over two vibrato cycles) at a time.
        for start in range(note.start + 25, note.stop - 40, 10)
    ]
    assert len(fits) >= 2, "no notes long enough to show vibrato"
    good = [
        (rate, depth)
        for rate, depth, explained in fits
        if 4.5 <= rate <= 7.0 and 1.0 <= depth <= 15.0 and explained > 0.8
    ]
    # Most stretches of held notes wobble periodically by a few Hz at 5-6 Hz.
    assert len(good) >= 0.75 * len(fits), fits

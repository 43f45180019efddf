"""Howl detection on synthetic howls and on musical notes that are not howls."""

import dataclasses

import numpy as np
import pytest
from scipy import signal

from livesound.feedback.detect import HowlDetector, Settings, candidates
from livesound.feedback.notches import MODES

SR = 48000
T = np.arange(SR * 2) / SR


def detections(x: np.ndarray, s: Settings | None = None) -> list:
    s = s or Settings()
    d = HowlDetector(SR, s)
    found = []
    for i in range(0, len(x) - s.frame, s.hop):
        found += d.analyse(x[i : i + s.frame])
    return found


def noise(level: float, seed: int = 1) -> np.ndarray:
    return level * np.random.default_rng(seed).standard_normal(T.size)


@pytest.mark.parametrize("freq", [312.4, 2013.7, 7777.0])
def test_a_growing_howl_is_found_at_its_frequency(freq):
    howl = 1e-3 * 10 ** (20 * T / 20) * np.sin(2 * np.pi * freq * T) + noise(1e-3)
    found = detections(howl)
    assert found, "the howl was not detected"
    # Quadratic interpolation: far finer than the 11.7 Hz bin.
    assert found[-1].freq_hz == pytest.approx(freq, abs=1.0)
    assert found[-1].slope_db_s > 10


def test_a_sung_vowel_with_vibrato_is_not_a_howl():
    f0 = 220 * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * T))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    vowel = sum((0.3 / h) * np.sin(h * phase) for h in range(1, 12))
    assert detections(vowel) == []


@pytest.mark.parametrize(
    "signal",
    [
        0.3 * np.sin(2 * np.pi * 880 * T),  # a flute-like held sine
        np.sign(np.sin(2 * np.pi * 440 * T)),  # full-scale square wave
        noise(0.1),  # white noise
        np.zeros(T.size),  # silence
        np.full(T.size, 0.5),  # DC
        np.clip(3 * np.sin(2 * np.pi * 1000 * T), -1, 1),  # clipped, harmonic-rich
    ],
    ids=["held-sine", "square", "noise", "silence", "dc", "clipped"],
)
def test_held_notes_and_hostile_signals_are_not_howls(signal):
    assert detections(signal) == []


def test_bass_notes_are_below_the_detector():
    bass = 1e-3 * 10 ** (20 * T / 20) * np.sin(2 * np.pi * 82.4 * T)
    assert detections(bass) == []


def test_candidate_features_tell_a_sine_from_a_harmonic_note():
    frame = np.arange(4096) / SR
    sine = np.sin(2 * np.pi * 1000 * frame)
    note = sum(np.sin(2 * np.pi * 500 * h * frame) / h for h in range(1, 6))
    (top,) = candidates(sine, SR, Settings(candidates=1))
    assert top.phpr_db > 40 and top.pnpr_db > 20 and top.papr_db > 25
    strongest = candidates(note, SR, Settings(candidates=1))[0]
    assert strongest.phpr_db < 10  # its second harmonic is 6 dB down


def bass_heavy() -> np.ndarray:
    """Noise that falls 48 dB/octave above 1.5 kHz onto a floor 80 dB down: a
    mix whose low end sets the spectrum's mean."""
    sos = signal.butter(8, 1500, fs=SR, output="sos")
    return 0.1 * signal.sosfilt(sos, noise(1.0)) + noise(1e-5, seed=2)


def test_a_howl_over_quiet_highs_is_judged_against_its_band():
    """A howl at 5 kHz grows 8 dB/s, the strongest peak by the end and some
    60 dB over the floor around it, yet under 25 dB over the spectrum's mean:
    music's detector judges it against its band and finds it, the mean alone
    does not."""
    howl = 2e-3 * 10 ** (8 * T / 20) * np.sin(2 * np.pi * 5000 * T)
    x = bass_heavy() + howl
    music = MODES["music"].detector
    assert music.local_oct > 0
    global_only = dataclasses.replace(music, local_oct=0.0)
    end = x[-music.frame :]
    (top,) = [c for c in candidates(end, SR, music) if abs(c.freq_hz - 5000) < 5]
    (same,) = [c for c in candidates(end, SR, global_only) if abs(c.freq_hz - 5000) < 5]
    assert same.papr_db < music.papr_db and not same.towers(music)
    assert top.papr_db == same.papr_db and top.band_db > music.papr_db + 40
    assert top.towers(music) and not top.towers(music, limiting=True)
    found = detections(x, music)
    assert found and found[-1].freq_hz == pytest.approx(5000, abs=1.0)
    assert detections(x, global_only) == []


def test_a_held_note_over_quiet_highs_is_no_howl():
    """Judged against its band a held note stands out as much, but it does
    not grow: no howl."""
    note = 0.02 * np.sin(2 * np.pi * 5000 * T)
    x = bass_heavy() + note
    music = MODES["music"].detector
    (top,) = [c for c in candidates(x[-music.frame :], SR, music)
              if abs(c.freq_hz - 5000) < 5]  # fmt: skip
    assert top.towers(music)
    assert detections(x, music) == []

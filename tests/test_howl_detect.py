"""Howl detection on synthetic howls and on musical notes that are not howls."""

import numpy as np
import pytest

from livesound.feedback.detect import HowlDetector, Settings, candidates

SR = 48000
T = np.arange(SR * 2) / SR


def detections(x: np.ndarray) -> list:
    s = Settings()
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

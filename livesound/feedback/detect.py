"""Howl detection on an output's signal: spectral features from the literature.

Each analysis frame gives candidate peaks; each candidate gets the features
van Waterschoot & Moonen (Proc. IEEE 2011) survey for telling acoustic
feedback from sound:

- PAPR, peak-to-average power ratio: a howl towers over the spectrum;
- PHPR, peak-to-harmonic power ratio: a howl is one sine, a sung or played
  note carries harmonics (2f, 3f, 4f) and often a fundamental below;
- PNPR, peak-to-neighbour power ratio: a howl is narrow;
- IPMP, interframe peak magnitude persistence: a howl stays on its bin while
  vibrato moves;
- IMSD, interframe magnitude slope deviation: a howl grows steadily in dB
  (a held note, however pure, does not grow).

The frequency of a peak is refined below the bin by quadratic interpolation
of the log magnitude. This module decides nothing about notches.
"""

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Settings:
    """Detector thresholds (dB unless noted)."""

    frame: int = 4096
    hop: int = 1024
    min_hz: float = 150.0  # the detector's high-pass: no bass or kick notes
    papr_db: float = 25.0
    phpr_db: float = 20.0
    pnpr_db: float = 12.0
    history: int = 8  # frames IPMP and IMSD look back over
    persistence: float = 0.75  # IPMP: share of the history the peak is there
    max_slope_dev_db: float = 1.5  # IMSD: howls grow on a straight line...
    min_growth_db: float = 0.3  # ...upwards, per frame (a held note does not)
    candidates: int = 6  # strongest peaks examined per frame
    floor_db: float = -90.0


@dataclass
class Candidate:
    """One spectral peak of one frame, with its features."""

    bin: int
    freq_hz: float
    level_db: float
    papr_db: float
    phpr_db: float
    pnpr_db: float


@dataclass
class Howl:
    """A confirmed howl: where, how loud, and the evidence."""

    freq_hz: float
    level_db: float
    persistence: float
    slope_db_per_frame: float
    candidate: Candidate


def _interpolate(mag_db: np.ndarray, k: int) -> float:
    """Sub-bin offset of a peak from the parabola through three bins."""
    a, b, c = mag_db[k - 1], mag_db[k], mag_db[k + 1]
    den = a - 2 * b + c
    return 0.0 if den == 0 else 0.5 * (a - c) / den


def candidates(frame: np.ndarray, sample_rate: float, s: Settings) -> list[Candidate]:
    """The strongest peaks of one frame and their spectral features."""
    window = np.hanning(len(frame))
    spectrum = np.fft.rfft(frame * window)
    power = np.abs(spectrum) ** 2 / np.sum(window**2)
    mag_db = 10 * np.log10(power + 1e-20)
    hz = sample_rate / len(frame)
    lo = max(2, int(s.min_hz / hz))
    inner = mag_db[lo:-2]
    peaks = np.flatnonzero(
        (inner > mag_db[lo - 1 : -3]) & (inner >= mag_db[lo + 1 : -1])
    )
    peaks = peaks + lo
    peaks = peaks[mag_db[peaks] > s.floor_db]
    if peaks.size == 0:
        return []
    strongest = peaks[np.argsort(mag_db[peaks])[::-1][: s.candidates]]
    mean_db = 10 * np.log10(np.mean(power[lo:]) + 1e-20)
    out = []
    for k in strongest:
        f = (k + _interpolate(mag_db, k)) * hz
        harmonics = [mag_db[int(round(k * m))] for m in (0.5, 2, 3, 4)
                     if 2 <= k * m < len(mag_db) - 1]  # fmt: skip
        neighbours = [
            mag_db[k + d] for d in (-6, -5, -4, 4, 5, 6) if 0 <= k + d < len(mag_db)
        ]
        out.append(Candidate(
            bin=int(k), freq_hz=float(f), level_db=float(mag_db[k]),
            papr_db=float(mag_db[k] - mean_db),
            phpr_db=float(mag_db[k] - max(harmonics)) if harmonics else 99.0,
            pnpr_db=float(mag_db[k] - max(neighbours)),
        ))  # fmt: skip
    return out


@dataclass
class HowlDetector:
    """Frame-by-frame howl detection for one output."""

    sample_rate: float
    settings: Settings = field(default_factory=Settings)
    _levels: deque = field(default_factory=deque)

    def analyse(self, frame: np.ndarray) -> list[Howl]:
        """Feed one frame (``settings.frame`` samples); returns confirmed howls."""
        s = self.settings
        found = candidates(np.asarray(frame, dtype=float), self.sample_rate, s)
        self._levels.append({c.bin: c.level_db for c in found})
        while len(self._levels) > s.history:
            self._levels.popleft()
        howls = []
        for c in found:
            if c.papr_db < s.papr_db or c.phpr_db < s.phpr_db or c.pnpr_db < s.pnpr_db:
                continue
            track = [self._level_near(levels, c.bin) for levels in self._levels]
            present = [x for x in track if x is not None]
            persistence = len(present) / s.history
            if persistence < s.persistence or len(present) < 3:
                continue
            slopes = np.diff(present)
            if np.std(slopes) > s.max_slope_dev_db or np.mean(slopes) < s.min_growth_db:
                continue
            howls.append(
                Howl(c.freq_hz, c.level_db, persistence, float(np.mean(slopes)), c)
            )
        return howls

    @staticmethod
    def _level_near(levels: dict[int, float], k: int) -> float | None:
        for d in (0, -1, 1):
            if k + d in levels:
                return levels[k + d]
        return None

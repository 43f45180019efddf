"""Howl detection on an output's signal: spectral features from the literature.

Each analysis frame gives candidate peaks; each candidate gets the features
van Waterschoot & Moonen (Proc. IEEE 2011) survey for telling acoustic
feedback from sound:

- PAPR, peak-to-average power ratio: a howl towers over the spectrum (or,
  where music's spectrum falls steeply, over its band: ``Settings.local_oct``);
- PHPR, peak-to-harmonic power ratio: a howl is one sine, a sung or played
  note carries harmonics (2f, 3f, 4f) and often a fundamental below;
- PNPR, peak-to-neighbour power ratio: a howl is narrow;
- IPMP, interframe peak magnitude persistence: a howl stays on its bin while
  vibrato moves;
- IMSD, interframe magnitude slope deviation: a howl grows steadily in dB
  (a held note, however pure, does not grow);
- frequency stability: the loop's phase pins a howl to one frequency to a
  fraction of a bin, while a voice or instrument drifts and wavers.

A loop just past stability grows too slowly (a dB or two a second) for the
frame history to tell it from a held note; a longer track per peak catches
it by its net, steady growth over a second and a half. A loop left right at
the edge of stability does not grow at all: it rings, a pure tone that stands
on one frequency far longer than any held note (``ring_s``).

A howl that has already grown into the output's limiter no longer grows;
it is confirmed instead as a *pinned* tone: a pure, narrow peak that has sat
still for the whole history while the output is held at its ceiling.

The frequency of a peak is refined below the bin by quadratic interpolation
of the log magnitude. This module decides nothing about notches.
"""

import functools
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

# Low down an octave is a few bins: a local band is at least this wide, and
# leaves out the peak's main lobe (the Hann window's is 2 bins either side).
MIN_LOCAL_BINS = 16
LOBE_BINS = 3
# Where a peak's harmonics (and ½f) and its neighbours are, in bins.
_HARMONICS = np.array([0.5, 2, 3, 4])
_NEIGHBOURS = np.array([-6, -5, -4, 4, 5, 6])
# A peak this many times a stronger one's frequency or less, to a bin, is its
# partial; higher up every low peak has a multiple near anything.
MAX_PARTIAL = 8


@dataclass(frozen=True)
class Settings:
    """Detector thresholds (dB unless noted)."""

    frame: int = 4096
    hop: int = 512
    min_hz: float = 150.0  # the detector's high-pass: no bass or kick notes
    papr_db: float = 25.0
    phpr_db: float = 20.0
    pnpr_db: float = 12.0
    history: int = 8  # frames IPMP and IMSD look back over
    persistence: float = 0.75  # IPMP: share of the history the peak is there
    max_slope_dev_db: float = 1.0  # IMSD: howls grow on a straight line...
    min_growth_db_s: float = 10.0  # ...upwards (a held note does not grow)
    pinned_margin_db: float = 6.0  # a pinned tone beats the PHPR threshold by this
    max_drift_bins: float = 0.25  # a howl's frequency wanders less than this
    pinned_spread_db: float = 4.0  # a pinned howl's level, pumped by the limiter
    confirm_frames: int = 1  # growth seen in this many frames running confirms
    slow_window_s: float = 1.5  # a howl just past stability grows slowly...
    slow_growth_db: float = 2.0  # ...but grows this much over the window
    ring_s: float = 6.0  # a pure tone that never moves for this long rings
    candidates: int = 6  # strongest peaks examined per frame
    # A narrow peak may also stand its PAPR over the mean level of this band
    # (octaves) around it, its main lobe left out (``Candidate.band_db``);
    # 0: over the spectrum's mean alone.
    local_oct: float = 0.0
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
    below_db: float  # PHPR against ½f alone: distortion adds 2f, 3f, never ½f
    # Over its band's floor (``Settings.local_oct``); measured only for a
    # narrow peak that the spectrum's mean hides.
    band_db: float = -math.inf

    def towers(self, s: Settings, limiting: bool = False) -> bool:
        """Whether the peak stands ``s.papr_db`` over the spectrum's mean, or
        over its band's floor. Not the band at the limiter: a limited output
        grows narrow peaks of its own (distortion) over quiet bands."""
        return self.papr_db >= s.papr_db or (not limiting and self.band_db >= s.papr_db)


@dataclass
class Howl:
    """A confirmed howl: where, how loud, and the evidence."""

    freq_hz: float
    level_db: float
    persistence: float
    slope_db_s: float
    candidate: Candidate
    pinned: bool = False


@functools.cache
def _window(n: int) -> tuple[np.ndarray, float]:
    """The Hann window of ``n`` points and its power."""
    window = np.hanning(n)
    return window, float(np.sum(window**2))


def spectra_db(frames: np.ndarray) -> np.ndarray:
    """Hann-windowed power spectra in dB of ``[..., frame]`` (one FFT for all)."""
    window, power_sum = _window(frames.shape[-1])
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2 / power_sum
    return 10 * np.log10(power + 1e-20)


def _peaks(mag_db: np.ndarray, lo: int, s: Settings) -> np.ndarray:
    inner = mag_db[lo:-2]
    peaks = np.flatnonzero(
        (inner > mag_db[lo - 1 : -3]) & (inner >= mag_db[lo + 1 : -1])
    )
    peaks = peaks + lo
    peaks = peaks[mag_db[peaks] > s.floor_db]
    return peaks[np.argsort(mag_db[peaks])[::-1][: s.candidates]]


def _band_level_db(mag_db: np.ndarray, k: int, octaves: float) -> float:
    """The mean level (dB) of the band ``octaves`` wide around bin ``k`` (at
    least ``MIN_LOCAL_BINS``), the peak's own main lobe left out: the floor a
    peak there stands on."""
    half = 2 ** (octaves / 2)
    lo = max(1, min(int(k / half), k - MIN_LOCAL_BINS // 2))
    hi = min(len(mag_db), max(math.ceil(k * half) + 1, k + MIN_LOCAL_BINS // 2 + 1))
    a, b = max(lo, k - LOBE_BINS), min(hi, k + LOBE_BINS + 1)
    total = float(np.sum(mag_db[lo:hi]) - np.sum(mag_db[a:b]))
    return total / max(hi - lo - (b - a), 1)


def _partial(freq: list[float], level: list[float], i: int, hz: float) -> bool:
    """Whether peak ``i`` is a harmonic (2f, 3f, ...) of a stronger peak: a
    note's or a clipped howl's partial, which stands over a quiet band too."""
    for j in range(len(freq)):
        n = round(freq[i] / freq[j])
        if (
            level[j] > level[i]
            and 2 <= n <= MAX_PARTIAL
            and abs(freq[i] - n * freq[j]) <= hz
        ):
            return True
    return False


def features(mag_db: np.ndarray, sample_rate: float, s: Settings) -> list[Candidate]:
    """The strongest peaks of one spectrum (``spectra_db``) and their features."""
    n_fft = 2 * (len(mag_db) - 1)
    hz = sample_rate / n_fft
    lo = max(2, int(s.min_hz / hz))
    k = _peaks(mag_db, lo, s)
    if k.size == 0:
        return []
    top = len(mag_db) - 1
    a, b, c = mag_db[k - 1], mag_db[k], mag_db[k + 1]
    den = a - 2 * b + c
    offset = np.where(den == 0, 0.0, 0.5 * (a - c) / np.where(den == 0, 1.0, den))
    mean_db = 10 * np.log10(np.mean(10 ** (mag_db[lo:] / 10)) + 1e-20)
    # Harmonics beyond the spectrum count as silent, not as missing evidence.
    h_bins = np.rint(k[:, None] * _HARMONICS).astype(int)
    h_ok = (h_bins >= 2) & (h_bins < top)
    h_all = np.where(h_ok, mag_db[np.minimum(h_bins, top)], -np.inf)
    h_db, below = h_all.max(axis=1), h_all[:, 0]
    n_db = mag_db[np.minimum(np.maximum(k[:, None] + _NEIGHBOURS, 0), top)].max(axis=1)
    phpr = np.where(np.isfinite(h_db), b - h_db, 99.0)
    below = np.where(np.isfinite(below), b - below, 99.0)
    freq, levels = ((k + offset) * hz).tolist(), b.tolist()
    band = [-math.inf] * k.size
    if s.local_oct:
        # Only a narrow peak that the mean hides needs its band's level.
        for i in np.flatnonzero((b - mean_db < s.papr_db) & (b - n_db >= s.pnpr_db)):
            if not _partial(freq, levels, i, hz):
                band[i] = levels[i] - _band_level_db(mag_db, int(k[i]), s.local_oct)
    return [
        Candidate(*row)
        for row in zip(k.tolist(), freq, levels, (b - mean_db).tolist(),
                       phpr.tolist(), (b - n_db).tolist(), below.tolist(), band,
                       strict=True)
    ]  # fmt: skip


def candidates(frame: np.ndarray, sample_rate: float, s: Settings) -> list[Candidate]:
    """The strongest peaks of one time-domain frame and their spectral features."""
    return features(spectra_db(np.asarray(frame, dtype=float)), sample_rate, s)


def _near_key(tracks: dict[int, object], k: int) -> int | None:
    """The key of ``tracks`` on bin ``k`` or a bin beside it (a peak may
    wander by a bin between frames)."""
    return next((k + d for d in (0, -1, 1) if k + d in tracks), None)


@dataclass
class HowlDetector:
    """Frame-by-frame howl detection for one output."""

    sample_rate: float
    settings: Settings = field(default_factory=Settings)
    _levels: deque = field(default_factory=deque)
    latest: list[Candidate] = field(default_factory=list)
    _slow: dict = field(default_factory=dict)  # bin -> [(level, freq, frame)]
    _frame: int = 0
    _growing: dict = field(default_factory=dict)  # bin -> frames of growth running
    _steady: dict = field(default_factory=dict)  # bin -> [first, last, fmin, fmax]

    def analyse(self, frame: np.ndarray, limiting: bool = False) -> list[Howl]:
        """Feed one frame (``settings.frame`` samples); returns confirmed howls."""
        return self.analyse_spectrum(
            spectra_db(np.asarray(frame, dtype=float)), limiting
        )

    def analyse_spectrum(
        self, mag_db: np.ndarray, limiting: bool = False
    ) -> list[Howl]:
        """Feed one frame's ``spectra_db``; ``limiting``: the output is at its ceiling."""
        s = self.settings
        found = features(mag_db, self.sample_rate, s)
        self.latest = found
        self._frame += 1
        # Long tracks of peaks gone for a while end.
        for k in [k for k, t in self._slow.items() if self._frame - t[-1][2] > 8]:
            del self._slow[k]
        for k in [k for k, t in self._steady.items() if self._frame - t[1] > 8]:
            del self._steady[k]
        self._levels.append({c.bin: (c.level_db, c.freq_hz) for c in found})
        while len(self._levels) > s.history:
            self._levels.popleft()
        frames_per_s = self.sample_rate / s.hop
        howls = []
        growing: dict[int, int] = {}
        for c in found:
            if c.pnpr_db < s.pnpr_db or not c.towers(s, limiting):
                continue
            # A howl held at the limiter is distorted by it: it grows 2f and
            # 3f of its own, but still nothing below it.
            harmonic = c.below_db if limiting else c.phpr_db
            if harmonic < s.phpr_db:
                continue
            track = [self._near(levels, c.bin) for levels in self._levels]
            seen = [x for x in track if x is not None]
            persistence = len(seen) / s.history
            if persistence < s.persistence or len(seen) < 3:
                continue
            present, freqs = np.array(seen).T
            if np.ptp(freqs) > self._max_drift_hz:
                continue
            slopes = np.diff(present)
            growth = float(np.mean(slopes)) * frames_per_s
            # Feedback grows exponentially: a straight line in dB. A note's
            # attack, smeared over the window, rises fast and then slows.
            half = len(slopes) // 2
            straight = np.mean(slopes[half:]) >= 0.5 * np.mean(slopes[:half])
            steady = np.std(slopes) <= s.max_slope_dev_db and straight
            if steady and growth >= s.min_growth_db_s:
                # Two notes beating swell for a few frames; a howl keeps on.
                run = growing[c.bin] = self._run_near(c.bin) + 1
                if run >= s.confirm_frames:
                    howls.append(Howl(c.freq_hz, c.level_db, persistence, growth, c))
            elif self._slow_growth(c) or self._ringing(c):
                howls.append(Howl(c.freq_hz, c.level_db, persistence, growth, c))
            elif (
                limiting
                and persistence == 1.0
                and harmonic - s.phpr_db >= s.pinned_margin_db
                and np.ptp(present) <= s.pinned_spread_db
            ):
                howls.append(Howl(c.freq_hz, c.level_db, 1.0, growth, c, True))
        self._growing = growing
        return howls

    def _run_near(self, k: int) -> int:
        return max(self._growing.get(k + d, 0) for d in (-1, 0, 1))

    def _slow_growth(self, c: Candidate) -> bool:
        """Extend the peak's long track; whether it has grown like a slow howl."""
        s = self.settings
        frames = round(s.slow_window_s * self.sample_rate / s.hop)
        track = self._slow.pop(_near_key(self._slow, c.bin), [])
        track.append((c.level_db, c.freq_hz, self._frame))
        # Music crowds a slow howl out of the strongest peaks now and then:
        # the track keeps what fell in the window, gaps and all.
        track = [t for t in track if t[2] > self._frame - frames]
        self._slow[c.bin] = track
        levels, freqs, when = np.array(track).T
        if len(track) < 0.75 * frames or when[-1] - when[0] < 0.9 * frames:
            return False
        start, q = when[0], frames / 4
        first = np.mean(levels[when < start + q])
        middle = np.mean(levels[(when >= start + 1.5 * q) & (when < start + 2.5 * q)])
        last = np.mean(levels[when >= when[-1] - q])
        grown = last - first >= s.slow_growth_db and first < middle < last
        still = np.ptp(freqs) <= self._max_drift_hz
        if grown and still:
            del self._slow[c.bin]
            return True
        return False

    def _ringing(self, c: Candidate) -> bool:
        """Whether the peak has stood on its frequency for ``ring_s``."""
        s = self.settings
        first, _, lo, hi = self._steady.pop(
            _near_key(self._steady, c.bin), (self._frame, 0, c.freq_hz, c.freq_hz)
        )
        lo, hi = min(lo, c.freq_hz), max(hi, c.freq_hz)
        if hi - lo > self._max_drift_hz:
            first, lo, hi = self._frame, c.freq_hz, c.freq_hz  # it moved: a new tone
        if (self._frame - first) * s.hop >= s.ring_s * self.sample_rate:
            return True  # confirmed; the next confirmation takes as long again
        self._steady[c.bin] = [first, self._frame, lo, hi]
        return False

    def reset(self) -> None:
        """Forget the history (after the output's notches changed a lot)."""
        self._levels.clear()
        self._slow.clear()
        self._steady.clear()

    @property
    def _max_drift_hz(self) -> float:
        return self.settings.max_drift_bins * self.sample_rate / self.settings.frame

    @staticmethod
    def _near(levels: dict[int, tuple], k: int) -> tuple | None:
        return levels.get(_near_key(levels, k))

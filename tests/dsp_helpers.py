"""Helpers shared by the numerical DSP tests (engine set-up, signals, measures).

Import as ``from dsp_helpers import ...`` (``tests/`` is on ``sys.path``).
Everything here is plain numpy/scipy: the engine is only ever driven through
``BlockEngine`` (the real compiled callback) and its ``Mixer``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from unittest import mock

import numpy as np
from scipy import signal

from livesound.audio import core
from livesound.audio.layout import matrix_outputs, mono_output, n_outputs
from livesound.control.offline import BlockEngine

SAMPLE_RATES = (44100, 48000, 96000)


# ---------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outs:
    """Output indices of an engine with ``n_bus`` buses (phys out p = output p)."""

    n_bus: int

    def bus(self, b: int) -> int:
        """Output of bus ``b`` (1-based, as in ``/bus/01``)."""
        return b - 1

    @property
    def main_l(self) -> int:
        return self.n_bus

    @property
    def main_r(self) -> int:
        return self.n_bus + 1

    @property
    def cue_l(self) -> int:
        return self.n_bus + 2

    @property
    def cue_r(self) -> int:
        return self.n_bus + 3

    @property
    def mono(self) -> int:
        return mono_output(self.n_bus)

    def mtx(self, m: int) -> int:
        """Output of matrix ``m`` (1-based, as in ``/mtx/01``)."""
        return matrix_outputs(self.n_bus)[m - 1]


def make_engine(
    sample_rate: int = 48000, n_in: int = 4, n_bus: int = 4, **sizes
) -> BlockEngine:
    """A small ``BlockEngine``: one physical port per input and per output
    (the mono bus and the matrices included).

    The cycle-counter calibration (a 50 ms sleep that only scales callback
    timing statistics) is skipped so that property tests can afford a fresh
    engine per example; audio processing is untouched.
    """
    with mock.patch.object(core, "_tsc_ticks_per_us", lambda: 1000):
        return BlockEngine(
            n_in=n_in,
            n_bus=n_bus,
            sample_rate=sample_rate,
            phys_in=n_in,
            phys_out=n_outputs(n_bus),
            **sizes,
        )


def outs_of(engine: BlockEngine) -> Outs:
    return Outs(engine.dims.n_bus)


def mono_input(engine: BlockEngine, x: np.ndarray, channel: int = 1) -> np.ndarray:
    """A ``[frames, phys_in]`` input with ``x`` on ``channel`` (1-based)."""
    inp = np.zeros((len(x), engine.dims.phys_in))
    inp[:, channel - 1] = x
    return inp


def impulse_response(
    engine: BlockEngine, n: int, amp: float = 0.05, channel: int = 1, block: int = 256
) -> np.ndarray:
    """Every output's response to ``amp`` at sample 0, latency removed, / amp."""
    lat = engine.latency
    x = np.zeros(n + lat)
    x[0] = amp
    y = engine.render(mono_input(engine, x, channel), block=block)
    return y[lat:].astype(np.float64) / amp


# ---------------------------------------------------------------------------
# Units and signals
# ---------------------------------------------------------------------------


def db(x):
    """20*log10(|x|) (amplitude), -inf for 0."""
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(np.abs(x))


def undb(d):
    return 10.0 ** (np.asarray(d, dtype=np.float64) / 20.0)


def sine(n: int, f: float, fs: float, amp: float = 1.0, phase: float = 0.0):
    t = np.arange(n)
    return amp * np.sin(2.0 * np.pi * f * t / fs + phase)


def band_limited_noise(n: int, fs: float, seed: int, top_hz: float) -> np.ndarray:
    """White noise low-passed (8th-order Butterworth) at ``top_hz``, peak 1."""
    rng = np.random.default_rng(seed)
    sos = signal.butter(8, top_hz, fs=fs, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n + 2000))[2000:]
    return x / np.abs(x).max()


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------


def biquad_response(coeffs, freqs, fs: float) -> np.ndarray:
    """Complex response of a cascade of ``[b0, b1, b2, a1, a2]`` rows."""
    coeffs = np.atleast_2d(np.asarray(coeffs, dtype=np.float64))
    h = np.ones(len(freqs), dtype=np.complex128)
    for c in coeffs:
        _, hk = signal.freqz(c[:3], np.r_[1.0, c[3:]], worN=freqs, fs=fs)
        h *= hk
    return h


def biquad_db(coeffs, freqs, fs: float) -> np.ndarray:
    return db(biquad_response(coeffs, np.atleast_1d(freqs), fs))


# ---------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------


def true_peak_db(y: np.ndarray, edge: int = 256) -> float:
    """True peak (4x oversampled with scipy's resample_poly), dBFS.

    ``edge`` samples at each end are dropped: resample_poly pads with
    zeros, and a signal cut off there rings (a measurement artefact).
    """
    up = signal.resample_poly(np.asarray(y, dtype=np.float64), 4, 1)
    return float(db(np.abs(up[4 * edge : -4 * edge]).max()))


def sine_amplitude(y: np.ndarray, f: float, fs: float) -> float:
    """Amplitude of the ``f`` Hz component of ``y`` (least-squares fit)."""
    t = np.arange(len(y))
    w = 2.0 * np.pi * f * t / fs
    basis = np.column_stack([np.sin(w), np.cos(w), np.ones_like(w)])
    (s, c, _), *_ = np.linalg.lstsq(basis, np.asarray(y, np.float64), rcond=None)
    return float(math.hypot(s, c))


def gain_track(y_on, y_ref, min_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample gain ``y_on / y_ref`` where ``|y_ref| >= min_level``.

    ``y_ref`` is the same signal rendered with the processor under test
    bypassed; every later stage is linear, so the ratio is the processor's
    gain at that sample. Returns (sample indices, gains).
    """
    y_on = np.asarray(y_on, np.float64)
    y_ref = np.asarray(y_ref, np.float64)
    idx = np.nonzero(np.abs(y_ref) >= min_level)[0]
    return idx, y_on[idx] / y_ref[idx]


def bypass_hpf_b0(fs: float) -> float:
    """Impulse gain of the switched-off input high-pass (a 1 Hz Butterworth)."""
    from livesound.audio import design
    from livesound.control import derive

    return float(design.high_pass(fs, derive.BYPASS_CUT_HZ, design.BUTTERWORTH2_Q)[0])


def gain_matrix(engine: BlockEngine, amp: float = 0.2, spacing: int = 512):
    """Linear gain from every input to every output, ``[output, input]``.

    One impulse per input, ``spacing`` samples apart; the output sample at
    impulse + latency is that path's gain. Divided by the first tap of the
    switched-off input high-pass, so it assumes input high-passes are off
    and nothing else filters (EQs flat, notches off).
    """
    ni, lat = engine.dims.phys_in, engine.latency
    n = spacing * (ni + 1)
    x = np.zeros((n, ni))
    for c in range(ni):
        x[spacing * (c + 1) - lat // 2, c] = amp
    y = engine.render(x).astype(np.float64)
    b0 = bypass_hpf_b0(engine.dims.sample_rate)
    rows = [spacing * (c + 1) - lat // 2 + lat for c in range(ni)]
    return (y[rows] / (amp * b0)).T

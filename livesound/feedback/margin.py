"""How far an output's loop is from howling, from what the output sounds like.

A loop of gain ``g`` at a frequency where its phase turns a whole number of
times colours everything the output plays by ``1/|1 - g|²`` in power there.
Elsewhere a room's loop gain is mostly far below its peak (its magnitude
response is irregular, and the peak that limits stability stands well over
the rest), so the output is coloured by about 1 there. Over a few seconds of
varied material the source's own fine structure averages out, and the
long-term spectrum's strongest peak over the median of its third of an
octave is ``R = 1/(1 - g)²``: so ``g = 1 - R^(-1/2)``, and the margin is
``-20·log10(g)``.

It is an estimate. Where the loop gain is high everywhere (a comb) the
median rises too and the margin reads a little low; a held note standing in
the average reads as colouration (low); a resonance sharper than the
analysis window's resolution is spread by it (high). It needs ``min_s`` of
sound to begin with (and again after silence), and follows a notch change
within about ``tau_s``. It is shown, not acted on: cutting where it pointed
was measured to spend the notch bank's slots on a voice's steady pitch and
on spectra's edges (issue 12's notes in BENCHMARKS.md).
"""

import math
from dataclasses import dataclass, field

import numpy as np

# The engineer's safe loop: this far below howling, as a wedge is rung out
# to 3 dB under feedback. The bench scores runs by it; the console marks
# estimates under it.
SAFE_MARGIN_DB = 2.0
# Peaks are judged against the median of this band around them; at least this
# many bins wide (low down a third of an octave is only a few bins).
BAND_OCT = 1 / 3
MIN_BAND_BINS = 15


def margin_from_ratio_db(ratio_db: float) -> float:
    """The loop's margin (dB) whose colouration peak stands ``ratio_db`` over
    the median around it (see the module's docstring); inf for no peak."""
    if ratio_db <= 0.0:
        return math.inf
    return -20 * math.log10(1 - 10 ** (-ratio_db / 20))


@dataclass
class MarginEstimator:
    """The long-term spectrum of one output and the margin it shows."""

    sample_rate: float
    hop: int
    tau_s: float = 2.0  # the average's memory
    min_s: float = 2.0  # sound needed before an estimate
    # Where wedges and mains ring. Below, a voice's or a bass's steady pitch
    # stands in the average; above, sources thin out (speech synthesised at
    # 22 kHz ends at 11 kHz), and a band's median over nothing means nothing.
    min_hz: float = 300.0
    max_hz: float = 9500.0
    _power: np.ndarray | None = field(default=None, repr=False)
    _frames: int = 0

    def reset(self) -> None:
        """Start the average anew (the output fell silent)."""
        self._power, self._frames = None, 0

    def update(self, mag_db: np.ndarray) -> None:
        """Add one frame's spectrum (``detect.spectra_db``) to the average."""
        power = 10 ** (mag_db / 10)
        self._frames += 1
        # A plain mean until the exponential average's memory is filled.
        a = max(1 / self._frames, self.hop / (self.tau_s * self.sample_rate))
        self._power = (
            power if self._power is None else self._power + a * (power - self._power)
        )

    def peak(self) -> tuple[float, float] | None:
        """``(freq_hz, margin_db)`` of the strongest colouration, or None while
        the average holds less than ``min_s`` of sound."""
        if (
            self._power is None
            or self._frames * self.hop < self.min_s * self.sample_rate
        ):
            return None
        p = self._power
        n_fft = 2 * (len(p) - 1)
        best = (0.0, 0.0)  # ratio, frequency
        # Bands a sixth of an octave apart, each a third wide: every peak is
        # judged in a band that it sits well inside.
        centre = self.min_hz * 2**BAND_OCT
        while centre * 2 ** (BAND_OCT / 2) < min(self.max_hz, 0.45 * self.sample_rate):
            half = max(centre * (2 ** (BAND_OCT / 2) - 1),
                       MIN_BAND_BINS / 2 * self.sample_rate / n_fft)  # fmt: skip
            lo, hi = (
                round((centre + d) * n_fft / self.sample_rate) for d in (-half, half)
            )
            band = p[lo:hi]
            k = int(np.argmax(band))
            ratio = band[k] / (np.median(band) + 1e-30)
            if ratio > best[0]:
                best = (ratio, (lo + k) * self.sample_rate / n_fft)
            centre *= 2 ** (BAND_OCT / 2)
        return best[1], margin_from_ratio_db(10 * math.log10(max(best[0], 1e-30)))

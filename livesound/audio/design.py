"""Biquad coefficient design (RBJ Audio EQ Cookbook).

Every function returns normalised coefficients ``[b0, b1, b2, a1, a2]``
(a0 divided out) as a float64 array of length 5. Design runs in the control
plane when a parameter changes; the audio plane only interpolates between
coefficient sets and filters.
"""

import math

import numpy as np
from numba import njit

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0, 0.0])


@njit(cache=True)
def _normalise(b0, b1, b2, a0, a1, a2):
    out = np.empty(5)
    out[0] = b0 / a0
    out[1] = b1 / a0
    out[2] = b2 / a0
    out[3] = a1 / a0
    out[4] = a2 / a0
    return out


@njit(cache=True)
def _w0(fs, f0):
    # Keep the centre strictly inside (0, Nyquist) so cos/sin stay well-defined.
    f = min(max(f0, 1.0), 0.49 * fs)
    return 2.0 * math.pi * f / fs


@njit(cache=True)
def peaking(fs: float, f0: float, gain_db: float, q: float) -> np.ndarray:
    """Peaking EQ band: ``gain_db`` at ``f0``, bandwidth set by ``q``."""
    w0 = _w0(fs, f0)
    a = 10.0 ** (gain_db / 40.0)
    alpha = math.sin(w0) / (2.0 * q)
    c = math.cos(w0)
    return _normalise(
        1.0 + alpha * a,
        -2.0 * c,
        1.0 - alpha * a,
        1.0 + alpha / a,
        -2.0 * c,
        1.0 - alpha / a,
    )


@njit(cache=True)
def _shelf(fs, f0, gain_db, q, k):
    """RBJ shelf; ``k`` = 1 for the low shelf, -1 for the high shelf."""
    w0 = _w0(fs, f0)
    a = 10.0 ** (gain_db / 40.0)
    alpha = math.sin(w0) / (2.0 * q)
    c = k * math.cos(w0)
    s = 2.0 * math.sqrt(a) * alpha
    return _normalise(
        a * ((a + 1.0) - (a - 1.0) * c + s),
        2.0 * k * a * ((a - 1.0) - (a + 1.0) * c),
        a * ((a + 1.0) - (a - 1.0) * c - s),
        (a + 1.0) + (a - 1.0) * c + s,
        -2.0 * k * ((a - 1.0) + (a + 1.0) * c),
        (a + 1.0) + (a - 1.0) * c - s,
    )


@njit(cache=True)
def low_shelf(fs: float, f0: float, gain_db: float, q: float) -> np.ndarray:
    """Low shelf: ``gain_db`` below ``f0`` (half of it at ``f0``)."""
    return _shelf(fs, f0, gain_db, q, 1.0)


@njit(cache=True)
def high_shelf(fs: float, f0: float, gain_db: float, q: float) -> np.ndarray:
    """High shelf: ``gain_db`` above ``f0`` (half of it at ``f0``)."""
    return _shelf(fs, f0, gain_db, q, -1.0)


@njit(cache=True)
def _cut(fs, f0, q, k):
    """RBJ second-order high-pass (``k`` = 1) or low-pass (``k`` = -1)."""
    w0 = _w0(fs, f0)
    alpha = math.sin(w0) / (2.0 * q)
    c = math.cos(w0)
    b0 = (1.0 + k * c) / 2.0
    return _normalise(b0, -k * 2.0 * b0, b0, 1.0 + alpha, -2.0 * c, 1.0 - alpha)


@njit(cache=True)
def high_pass(fs: float, f0: float, q: float) -> np.ndarray:
    """Second-order high-pass; ``q = 1/sqrt(2)`` is Butterworth (-3 dB at f0)."""
    return _cut(fs, f0, q, 1.0)


@njit(cache=True)
def low_pass(fs: float, f0: float, q: float) -> np.ndarray:
    """Second-order low-pass; ``q = 1/sqrt(2)`` is Butterworth (-3 dB at f0)."""
    return _cut(fs, f0, q, -1.0)


@njit(cache=True)
def high_pass_1(fs: float, f0: float) -> np.ndarray:
    """First-order high-pass (6 dB/oct, -3 dB at f0), as a biquad with its
    second-order terms zero; prewarped at ``f0`` like the RBJ sections, so
    that it cascades with them into an exact Butterworth."""
    k = math.tan(_w0(fs, f0) / 2.0)
    return _normalise(1.0, -1.0, 0.0, 1.0 + k, k - 1.0, 0.0)


# Q of the two sections of a 4th-order Butterworth (24 dB/oct) high-pass.
BUTTERWORTH4_Q = (0.5411961001461969, 1.3065629648763766)
BUTTERWORTH2_Q = 0.7071067811865476
# A 3rd-order Butterworth (18 dB/oct) is a first-order section and this one.
BUTTERWORTH3_Q = 1.0


def octaves_to_q(
    bandwidth_oct: float, fs: float | None = None, f0: float = 0.0
) -> float:
    """Q of a band ``bandwidth_oct`` octaves wide (RBJ's BW definition).

    With ``fs`` and ``f0`` the bilinear transform's warping is compensated
    (RBJ's ``w0/sin(w0)`` term), so the digital filter has the asked width
    at any centre frequency, not only far below Nyquist.
    """
    warp = 1.0
    if fs:
        w0 = 2.0 * math.pi * min(max(f0, 1.0), 0.49 * fs) / fs
        warp = w0 / math.sin(w0)
    return 1.0 / (2.0 * math.sinh(math.log(2.0) / 2.0 * bandwidth_oct * warp))


def notch(fs: float, f0: float, depth_db: float, bandwidth_oct: float) -> np.ndarray:
    """Feedback notch: a peaking cut of ``depth_db`` (<= 0), ``bandwidth_oct`` wide."""
    return peaking(fs, f0, -abs(depth_db), octaves_to_q(bandwidth_oct, fs, f0))


def response(rows: np.ndarray, freqs_hz, fs: float) -> np.ndarray:
    """Complex response at ``freqs_hz`` of biquads ``[b0, b1, b2, a1, a2]`` in
    series (one row or several)."""
    z = np.exp(-2j * np.pi * np.asarray(freqs_hz) / fs)  # z^-1
    h = np.ones_like(z)
    for b0, b1, b2, a1, a2 in np.reshape(rows, (-1, 5)):
        h *= (b0 + z * (b1 + z * b2)) / (1.0 + z * (a1 + z * a2))
    return h


def response_db(rows: np.ndarray, freqs_hz, fs: float) -> np.ndarray:
    """Magnitude in dB of ``response``, -180 dB at the deepest."""
    return 20.0 * np.log10(np.maximum(np.abs(response(rows, freqs_hz, fs)), 1e-9))


def cascade_response(rows: np.ndarray, n_fft: int) -> np.ndarray:
    """Complex response of biquads in series at the ``n_fft//2 + 1`` rfft bins."""
    return response(rows, np.arange(n_fft // 2 + 1), n_fft)

"""The control plane's side of the audio plane's atomics.

The audio callback publishes counters with release ordering and takes the
control plane's change sets with acquire ordering (``lowlevel``); these are
the matching operations for Python callers, compiled once and cached.
"""

from numba import njit

from livesound.audio.lowlevel import cycle_counter, load_acquire, store_release

_compiled = njit(cache=True)


@_compiled
def read_cycle_counter():
    """The cycle counter the callback times itself with (for calibration)."""
    return cycle_counter()


@_compiled
def bump_sequence(hdr, idx):
    """Publish: ``hdr[idx] += 1`` with release ordering (control plane side)."""
    store_release(hdr, idx, hdr[idx] + 1)


@_compiled
def load_header(hdr, idx):
    """``hdr[idx]`` with acquire ordering (control plane side)."""
    return load_acquire(hdr, idx)


@_compiled
def store_header(hdr, idx, value):
    """``hdr[idx] = value`` with release ordering (control plane side)."""
    store_release(hdr, idx, value)

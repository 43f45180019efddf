"""The audio plane as seen from Python: memory, the compiled callback, stats.

``AudioCore`` owns the engine memory and the C callback. Every way of
running audio (PortAudio, the virtual device, offline render, benchmarks,
tests) calls the same compiled callback with the same user-data pointer.
"""

import ctypes
import functools
import time
from dataclasses import dataclass

import numpy as np

from livesound.audio import kernels
from livesound.audio import layout as L
from livesound.audio.atomics import read_cycle_counter

_CALLBACK_TYPE = ctypes.CFUNCTYPE(
    ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
    ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p,
)  # fmt: skip


@functools.cache
def _tsc_ticks_per_us() -> int:
    """Calibrate the CPU cycle counter against the monotonic clock (once)."""
    read_cycle_counter()
    t0, c0 = time.perf_counter(), read_cycle_counter()
    time.sleep(0.05)
    t1, c1 = time.perf_counter(), read_cycle_counter()
    return max(1, round((c1 - c0) / ((t1 - t0) * 1e6)))


def c_function_address(name: str) -> int:
    """Address of the C library's function ``name``, 0 where there is none."""
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except (AttributeError, OSError):
        return 0
    return ctypes.cast(fn, ctypes.c_void_p).value or 0


@dataclass
class CallbackStats:
    """What the audio plane counted since start."""

    blocks: int
    frames: int
    xruns: int
    faults: int
    min_us: float
    mean_us: float
    max_us: float

    def percentile_us(self, hist: np.ndarray, q: float) -> float:
        """Callback-time percentile from the 1 us histogram."""
        total = hist.sum()
        if total == 0:
            return 0.0
        return float(np.searchsorted(np.cumsum(hist), q / 100.0 * total) + 1)


class AudioCore:
    """Engine memory plus the compiled callback that processes it."""

    def __init__(self, dims: L.Dims) -> None:
        self.dims = dims
        self.memory = L.EngineMemory(dims)
        self.hdr = self.memory.hdr
        self.arrays = self.memory.arrays
        self.hdr[L.H_TSC_MHZ] = _tsc_ticks_per_us()
        self.hdr[L.H_GETTID] = c_function_address("gettid")
        self.callback_address: int = kernels.audio_callback.address
        self._callback = _CALLBACK_TYPE(self.callback_address)
        self.user_data = self.hdr.ctypes.data

    def run(self, inp: np.ndarray, out: np.ndarray, status: int = 0) -> None:
        """Process one block through the real C callback (releases the GIL).

        ``inp`` is float32 ``[frames, phys_in]``, ``out`` float32
        ``[frames, phys_out]``, both C-contiguous.
        """
        self._callback(inp.ctypes.data, out.ctypes.data, out.shape[0], None, status,
                       self.user_data)  # fmt: skip

    def stats(self) -> CallbackStats:
        """Counters and callback timing since start."""
        h = self.hdr
        mhz = max(1, int(h[L.H_TSC_MHZ]))
        blocks = int(h[L.H_BLOCKS])
        return CallbackStats(
            blocks=blocks,
            frames=int(h[L.H_FRAMES]),
            xruns=int(h[L.H_XRUNS]),
            faults=int(h[L.H_FAULTS]),
            min_us=float(h[L.H_CB_MIN]) / mhz if blocks else 0.0,
            mean_us=float(h[L.H_CB_SUM]) / mhz / blocks if blocks else 0.0,
            max_us=float(h[L.H_CB_MAX]) / mhz if blocks else 0.0,
        )

    def audio_thread(self, timeout: float = 1.0) -> int:
        """Kernel thread id of the thread running the callback (0 = unknown)."""
        deadline = time.monotonic() + timeout
        while self.hdr[L.H_AUDIO_TID] == 0 and self.hdr[L.H_GETTID]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)
        return int(self.hdr[L.H_AUDIO_TID])

    def reset_timing(self) -> None:
        """Start a new callback-timing period (the benchmark's warm-up ends)."""
        self.hdr[L.H_CB_MIN] = np.iinfo(np.int64).max
        self.hdr[L.H_CB_MAX] = 0
        self.hdr[L.H_CB_SUM] = 0
        self.hdr[L.H_BLOCKS] = 0
        self.arrays["hist"][:] = 0

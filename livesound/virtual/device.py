"""The virtual sound card: a clocked thread that plays the virtual stage.

It calls the engine's compiled C callback once per period from a loop that
never takes the GIL, and feeds the stage's microphones what the
loudspeakers played through the room's paths (``room``), so pushing a
wedge howls as it would on a real stage.
"""

import threading

import numpy as np
from numba import njit

from livesound.audio import layout as L
from livesound.audio.core import AudioCore, c_function_address
from livesound.audio.devices import DeviceInfo, make_realtime
from livesound.audio.lowlevel import (
    call_stream_callback,
    clock_gettime_at,
    clock_nanosleep_at,
    load_acquire,
)
from livesound.audio.settings import DeviceError, check_settings
from livesound.virtual.room import Room

CLOCK_MONOTONIC = 1
TIMER_ABSTIME = 1
OUTPUT_UNDERFLOW = 0x4  # paOutputUnderflow


@njit(cache=True, error_model="numpy")
def room_feedback(inp, stage, pos, played, w, delays, gains, outs, mics):
    """One block of the virtual stage's microphones: the band plus the room.

    ``inp`` gets ``stage[pos:pos+block]`` plus, for every acoustic path
    ``p``, the loudspeaker output ``outs[p]`` as played (``played``, a ring
    whose next write is at ``w``) through the sparse impulse response
    ``delays[p], gains[p]`` into microphone ``mics[p]``. Every delay is at
    least one block, so only sound already played is heard.
    """
    block = inp.shape[0]
    mask = played.shape[0] - 1
    for j in range(block):
        for c in range(inp.shape[1]):
            inp[j, c] = stage[pos + j, c]
    for p in range(delays.shape[0]):
        o, m = outs[p], mics[p]
        for j in range(block):
            acc = 0.0
            for t in range(delays.shape[1]):
                acc += gains[p, t] * played[(w + j - delays[p, t]) & mask, o]
            inp[j, m] += acc


@njit(cache=True, nogil=True, error_model="numpy")
def virtual_device_loop(callback, hdr, stage, out, block, period_ns, buffer_periods,
                        gettime, nanosleep, ts, inp, played, delays, gains, outs,
                        mics):  # fmt: skip
    """The virtual sound card: call ``callback`` once per period, forever.

    Runs without the GIL from start to stop, so a busy interpreter cannot
    delay it. Blocks are due on an absolute monotonic clock; a thread woken
    late runs the blocks that are due back to back, as a sound card's
    buffer would absorb it, and only past ``buffer_periods`` of lateness is
    the block flagged as an underflow (xrun) and the clock resynchronised.
    ``hdr[H_STOP]`` set by the control plane ends the loop. The stage's
    microphones hear the loudspeakers through ``room_feedback``'s paths.
    """
    frames = stage.shape[0]
    mask = played.shape[0] - 1
    w = 0
    ts_addr = ts.ctypes.data
    clock_gettime_at(gettime, CLOCK_MONOTONIC, ts_addr)
    due = ts[0] * 1_000_000_000 + ts[1]
    pos = 0
    while load_acquire(hdr, L.H_STOP) == 0:
        clock_gettime_at(gettime, CLOCK_MONOTONIC, ts_addr)
        now = ts[0] * 1_000_000_000 + ts[1]
        status = 0
        if now - due > buffer_periods * period_ns:
            status = OUTPUT_UNDERFLOW
            due = now
        room_feedback(inp, stage, pos, played, w, delays, gains, outs, mics)
        call_stream_callback(callback, inp.ctypes.data, out.ctypes.data, block,
                             status, hdr.ctypes.data)  # fmt: skip
        for j in range(block):
            for c in range(out.shape[1]):
                played[(w + j) & mask, c] = out[j, c]
        w += block
        pos += block
        if pos + block > frames:
            pos = 0
        due += period_ns
        ts[0] = due // 1_000_000_000
        ts[1] = due % 1_000_000_000
        clock_nanosleep_at(nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, ts_addr)


def _libc_address(name: str) -> int:
    address = c_function_address(name)
    if not address:
        raise DeviceError(f"the virtual device needs the C library's {name}()")
    return address


class VirtualDevice:
    """A virtual sound card: a clocked thread that plays the virtual stage.

    The thread runs a compiled loop that never takes the GIL (see
    ``virtual_device_loop``): it calls the engine's C callback once
    per period on an absolute clock, with ``BUFFER_PERIODS`` of slack like
    a sound card's buffer, and reports an xrun only when audio would have
    dropped out.
    """

    BUFFER_PERIODS = 4

    def __init__(self, core: AudioCore, block: int, stage: np.ndarray,
                 room: Room | None = None) -> None:  # fmt: skip
        d = core.dims
        check_settings(d.sample_rate, block)
        self.core = core
        self.block = block
        src = np.zeros((stage.shape[0], d.phys_in), np.float32)
        k = min(stage.shape[1], d.phys_in)
        src[:, :k] = stage[:, :k]
        self._stage = np.ascontiguousarray(src[: (src.shape[0] // block) * block])
        self._out = np.zeros((block, d.phys_out), np.float32)
        self._in = np.zeros((block, d.phys_in), np.float32)
        self.room = room or Room.empty()
        longest = int(self.room.delays.max(initial=0)) + block
        self._played = np.zeros((1 << longest.bit_length(), d.phys_out), np.float32)
        self._ts = np.zeros(2, np.int64)
        self._clock = (_libc_address("clock_gettime"), _libc_address("clock_nanosleep"))
        self.realtime = False
        self._thread = threading.Thread(target=self._run, name="virtual-device",
                                         daemon=True)  # fmt: skip
        # Like a card: a block to fill the input, a block to play it out.
        self.info = DeviceInfo("virtual stage", d.sample_rate, block,
                               2000 * block / d.sample_rate)  # fmt: skip

    def start(self) -> None:
        self.core.hdr[L.H_STOP] = 0
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> bool:
        """Stop the loop; False if it did not end within ``timeout`` s."""
        self.core.hdr[L.H_STOP] = 1
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        self.realtime = bool(make_realtime())
        period_ns = round(1e9 * self.block / self.core.dims.sample_rate)
        virtual_device_loop(
            self.core.callback_address, self.core.hdr, self._stage, self._out,
            self.block, period_ns, self.BUFFER_PERIODS, *self._clock, self._ts,
            self._in, self._played, self.room.delays, self.room.gains, self.room.outs,
            self.room.mics,
        )  # fmt: skip

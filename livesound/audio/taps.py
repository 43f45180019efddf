"""Reading the output taps: the newest audio of every output, for analysis.

The audio plane writes each processed frame of every output into a ring
and publishes the running frame count (``H_TAP_W``) with release ordering.
A reader remembers how far it got and copies what is new; if it fell more
than a ring behind, it reports how many frames it missed.
"""

import numpy as np

from livesound.audio import layout as L
from livesound.audio.atomics import load_header
from livesound.audio.core import AudioCore


class TapReader:
    """Incremental reader of the output taps."""

    def __init__(self, core: AudioCore) -> None:
        self.core = core
        self.position = int(core.hdr[L.H_TAP_W])
        self.missed = 0

    def read(self) -> np.ndarray:
        """Frames written since the last read, ``[frames, outputs]`` float32."""
        end = load_header(self.core.hdr, L.H_TAP_W)
        start = self.position
        if end - start > L.TAP_RING - 4096:
            # Leave room for the block being written while we copy.
            self.missed += end - (L.TAP_RING - 4096) - start
            start = end - (L.TAP_RING - 4096)
        self.position = end
        rows = np.arange(start, end) & (L.TAP_RING - 1)
        return self.core.arrays["taps"][rows]

"""Block-by-block engine without a device: offline render, tests, simulation.

``BlockEngine`` runs the same compiled callback as the live engine, one
block at a time, from the calling thread. Parameter changes made through
its ``mixer`` land at the next block boundary, exactly as they do live.
"""

from collections.abc import Callable

import numpy as np

from livesound.audio.core import AudioCore
from livesound.audio.layout import Dims
from livesound.control.afcpaths import AfcPaths
from livesound.control.mixer import Mixer


class BlockEngine:
    """An engine you feed: ``out = engine.process(inp)``."""

    def __init__(self, dims: Dims | None = None, **sizes) -> None:
        self.dims = dims or Dims(**sizes)
        self.core = AudioCore(self.dims)
        self.mixer = Mixer(self.core.memory)
        # The feedback cancellers' switches (``dims.afc_paths``; none by default).
        self.afc = AfcPaths(self.mixer)
        # Called with the audio clock (seconds) before every block: what a
        # live engine's control plane does on its timer (scene fades, ...).
        self.block_hooks: list[Callable[[float], None]] = []
        self.frames = 0

    @property
    def latency(self) -> int:
        """Samples from any input to any output (alignment delays excluded)."""
        return self.core.memory.latency

    def process(self, inp: np.ndarray) -> np.ndarray:
        """One block: ``[frames, phys_in]`` in, float32 ``[frames, phys_out]`` out."""
        inp = np.ascontiguousarray(inp, dtype=np.float32)
        if inp.ndim != 2 or inp.shape[1] != self.dims.phys_in:
            raise ValueError(
                f"input must be [frames, {self.dims.phys_in}], got {inp.shape}"
            )
        out = np.empty((inp.shape[0], self.dims.phys_out), np.float32)
        self._run(inp, out)
        return out

    def _run(self, inp: np.ndarray, out: np.ndarray) -> None:
        now = self.frames / self.dims.sample_rate
        for hook in self.block_hooks:
            hook(now)
        self.core.run(inp, out)
        self.frames += inp.shape[0]

    def render(self, inp: np.ndarray, block: int = 64) -> np.ndarray:
        """Process a whole signal in blocks of ``block`` frames."""
        inp = np.ascontiguousarray(inp, dtype=np.float32)
        out = np.empty((inp.shape[0], self.dims.phys_out), np.float32)
        for start in range(0, inp.shape[0], block):
            self._run(inp[start : start + block], out[start : start + block])
        return out

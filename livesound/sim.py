"""A closed-loop acoustic simulator: loudspeakers, room, microphones, engine.

Loudspeaker-to-microphone paths are room impulse responses (the direct
sound after its travel time, then an exponentially decaying reverberant
tail of the room's T60). ``FeedbackLoop`` closes them around a real engine,
block by block: every block, each microphone hears its source plus every
loudspeaker's past output through its path — so pushing a wedge too hard
really howls, as on a stage. It is the ground for the feedback suppressor's
tests and benchmarks.
"""

from dataclasses import dataclass, field

import numpy as np

from livesound.engine.offline import BlockEngine

SPEED_OF_SOUND = 343.0  # m/s


def room_ir(sample_rate: int, distance_m: float, t60_s: float, *, drr_db: float = 0.0,
            seed: int = 0, length_s: float | None = None) -> np.ndarray:  # fmt: skip
    """Impulse response of one loudspeaker-to-microphone path.

    The direct sound arrives after ``distance_m`` / c with the inverse-distance
    gain (1 at 1 m); the reverberant tail is decaying noise whose energy is
    ``drr_db`` below the direct sound's (direct-to-reverberant ratio) and
    which falls by 60 dB in ``t60_s``.
    """
    if distance_m <= 0 or t60_s <= 0:
        raise ValueError("distance and T60 must be positive")
    length = int(sample_rate * (length_s if length_s is not None else t60_s))
    delay = distance_m / SPEED_OF_SOUND * sample_rate
    n0 = int(delay)
    if n0 + 2 >= length:
        raise ValueError("the impulse response is shorter than the direct path")
    h = np.zeros(length)
    direct = 1.0 / max(distance_m, 0.1)
    frac = delay - n0  # the direct sound between two samples
    h[n0] += direct * (1.0 - frac)
    h[n0 + 1] += direct * frac
    rng = np.random.default_rng(seed)
    t = np.arange(length - n0 - 2) / sample_rate
    tail = rng.standard_normal(t.size) * np.exp(-6.907755 * t / t60_s)
    energy = np.sum(tail**2)
    tail *= direct * 10 ** (-drr_db / 20.0) / np.sqrt(energy)
    h[n0 + 2 :] += tail
    return h


@dataclass
class Path:
    """One acoustic path: from engine output ``output`` into input ``mic``."""

    output: int
    mic: int
    ir: np.ndarray


@dataclass
class FeedbackLoop:
    """Loudspeakers feeding back into microphones around a ``BlockEngine``.

    ``process(sources)`` runs one block: the microphones hear ``sources``
    (``[frames, phys_in]``, what the performers play) plus the room's
    response to everything the loudspeakers played before; the engine then
    turns the inputs into outputs. The loop delay (engine latency plus the
    paths' travel time) must be at least one block, as in any real room.
    """

    engine: BlockEngine
    paths: list[Path]
    history: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        longest = max(len(p.ir) for p in self.paths)
        self.history = np.zeros((longest, self.engine.dims.phys_out))
        self.min_delay = min(int(np.flatnonzero(p.ir)[0]) for p in self.paths)

    def feedback(self, frames: int) -> np.ndarray:
        """What the microphones hear of the loudspeakers in the next ``frames``.

        ``mic[j] = sum_k h[k] out[T + j - k]`` with T the block's first
        sample; every path is at least a block long, so all of it was
        already played (in ``history``).
        """
        if frames > self.min_delay:
            raise ValueError(f"a block of {frames} frames is longer than the shortest "
                             f"path ({self.min_delay} samples): the loop would need "
                             "sound that has not been played yet")  # fmt: skip
        mics = np.zeros((frames, self.engine.dims.phys_in))
        pad = np.zeros(frames)
        for path in self.paths:
            k = len(path.ir)
            x = np.concatenate(
                [self.history[len(self.history) - k + 1 :, path.output], pad]
            )
            windows = np.lib.stride_tricks.sliding_window_view(x, k)
            mics[:, path.mic] += windows @ path.ir[::-1]
        return mics

    def process(self, sources: np.ndarray) -> np.ndarray:
        """One block through the closed loop; returns the engine's outputs."""
        frames = sources.shape[0]
        heard = sources + self.feedback(frames)
        out = self.engine.process(heard.astype(np.float32))
        self.history = np.roll(self.history, -frames, axis=0)
        self.history[-frames:] = out
        return out

"""A closed-loop acoustic simulator: loudspeakers, room, microphones, engine.

Loudspeaker-to-microphone paths are room impulse responses (the direct
sound after its travel time, then an exponentially decaying reverberant
tail of the room's T60). ``FeedbackLoop`` closes them around a real engine,
block by block: every block, each microphone hears its source plus every
loudspeaker's past output through its path — so pushing a wedge too hard
really howls, as on a stage. It is the ground for the feedback suppressor's
tests and benchmarks.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from livesound.audio import afc, design
from livesound.control.derive import notch_coeffs
from livesound.control.offline import BlockEngine
from livesound.virtual import metrics

SPEED_OF_SOUND = 343.0  # m/s
# A path's samples this far below its peak, before its first louder sample, are
# not sound but the noise before the direct sound arrives (a measured
# response's noise floor, a filtered one's pre-ringing).
ONSET_DB = 40.0
# An impulse this small passes every limiter and dynamics processor untouched.
PROBE_LEVEL = 1e-3
# Gains ramp over 10 ms and coefficients over 20 ms: a fresh engine has
# settled on its parameters after this long.
SETTLE_S = 0.05


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


def transducers(sample_rate: int) -> np.ndarray:
    """A stage wedge and a vocal microphone in series, as biquads.

    A 12-inch wedge rolls off below ~70 Hz and above ~12 kHz; its horn and
    a vocal mic's presence rise put a few dB extra around 3-5 kHz, which is
    why wedges ring there first on real stages.
    """
    return np.array([
        design.high_pass(sample_rate, 70.0, 0.707),
        design.low_pass(sample_rate, 12000.0, 0.707),
        design.peaking(sample_rate, 3000.0, 3.0, 1.0),
        design.peaking(sample_rate, 5000.0, 4.0, 1.4),
    ])  # fmt: skip


def image_source_ir(sample_rate: int, room_m: tuple[float, float, float],
                    speaker_m: tuple[float, float, float],
                    mic_m: tuple[float, float, float], absorption: float, *,
                    length_s: float = 0.6) -> np.ndarray:  # fmt: skip
    """Impulse response from a loudspeaker to a mic in a shoebox room, by the
    image-source method (Allen & Berkley, JASA 1979).

    Every mirror image of the loudspeaker in the walls, floor and ceiling
    within ``length_s`` of travel arrives after its distance / c with gain
    1/distance (1 at 1 m) times ``sqrt(1 - absorption)`` per reflection (one
    absorption for every surface); each arrival is split between its two
    neighbouring samples. Its reverberation is that of the room's geometry —
    flutter between parallel walls, a decay that slows as only the grazing
    paths with few reflections are left (12 × 7 × 3.2 m with absorption 0.25
    decays 60 dB in about 1 s, where Sabine's formula says 0.6 s) — not the
    exponentially decaying noise of ``room_ir``.
    """
    room, src, mic = (np.asarray(v, dtype=float) for v in (room_m, speaker_m, mic_m))
    if np.any(room <= 0) or np.any(src <= 0) or np.any(src >= room) \
            or np.any(mic <= 0) or np.any(mic >= room):  # fmt: skip
        raise ValueError("the loudspeaker and the mic must be inside the room")
    if not 0.0 < absorption <= 1.0:
        raise ValueError("absorption must be in (0, 1]")
    length = int(sample_rate * length_s)
    reach = length / sample_rate * SPEED_OF_SOUND
    beta = np.sqrt(1.0 - absorption)
    # Per axis: image coordinates 2·n·L ± x and the reflections each takes.
    axes = []
    for size, x, m in zip(room, src, mic, strict=True):
        n = np.arange(-int(reach // (2 * size)) - 1, int(reach // (2 * size)) + 2)
        pos = np.concatenate([2 * n * size + x, 2 * n * size - x])
        bounces = np.concatenate([2 * np.abs(n), np.abs(2 * n - 1)])
        axes.append((pos - m, bounces))
    (dx, bx), (dy, by), (dz, bz) = axes
    dist = np.sqrt(dx[:, None, None] ** 2 + dy[None, :, None] ** 2
                   + dz[None, None, :] ** 2)  # fmt: skip
    bounces = bx[:, None, None] + by[None, :, None] + bz[None, None, :]
    delay = (dist / SPEED_OF_SOUND * sample_rate).ravel()
    keep = delay < length - 1
    delay = delay[keep]
    gain = (beta ** bounces.ravel()[keep]) / np.maximum(dist.ravel()[keep], 0.1)
    n0 = delay.astype(np.int64)
    frac = delay - n0
    h = np.zeros(length)
    np.add.at(h, n0, gain * (1.0 - frac))
    np.add.at(h, n0 + 1, gain * frac)
    return h


def through_transducers(ir: np.ndarray, sample_rate: int) -> np.ndarray:
    """A room's impulse response heard through a wedge and a vocal mic
    (``transducers``), as long as ``ir``."""
    n_fft = 1 << int(np.ceil(np.log2(len(ir) + sample_rate // 10)))
    shaped = np.fft.irfft(
        np.fft.rfft(ir, n_fft)
        * design.cascade_response(transducers(sample_rate), n_fft),
        n_fft,
    )
    # The filters are causal: nothing arrives before the direct sound.
    shaped[: int(np.flatnonzero(ir)[0])] = 0.0
    return shaped[: len(ir)]


def stage_path(sample_rate: int, distance_m: float, t60_s: float, *, drr_db: float = 0.0,
               seed: int = 0, length_s: float | None = None) -> np.ndarray:  # fmt: skip
    """``room_ir`` heard through a wedge and a vocal mic (``transducers``)."""
    ir = room_ir(sample_rate, distance_m, t60_s, drr_db=drr_db, seed=seed,
                 length_s=length_s)  # fmt: skip
    return through_transducers(ir, sample_rate)


def sparse_path(
    ir: np.ndarray, taps: int = 256, dense: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """A path as ``taps`` (delay, gain) pairs, cheap enough to run in real time.

    The first ``dense`` samples from the direct sound are kept as they are
    (they carry the wedge's and mic's colour); of the tail, the strongest
    taps are kept and scaled to the whole tail's energy, so the room keeps
    its level, its T60 envelope and its irregular response.
    """
    first = int(np.flatnonzero(ir)[0])
    head = np.arange(first, min(first + dense, len(ir)))
    tail = ir[head[-1] + 1 :]
    keep = np.sort(np.argsort(np.abs(tail))[::-1][: max(taps - len(head), 0)])
    scale = np.sqrt(np.sum(tail**2) / max(np.sum(tail[keep] ** 2), 1e-30))
    delays = np.concatenate([head, keep + head[-1] + 1])
    gains = np.concatenate([ir[head], tail[keep] * scale])
    return delays.astype(np.int64), gains


def engine_response(engine: BlockEngine, n_fft: int, *, mic: int = 0,
                    output: int = 0, length: int = 1 << 15,
                    block: int = 64) -> np.ndarray:  # fmt: skip
    """The engine's forward response (rfft, ``n_fft`` points) from physical
    input ``mic`` to physical output ``output``, as ``engine`` is set now.

    Measured, not modelled: whatever the strip and the bus do (sends, filters,
    notch banks, latency) is in it. An impulse runs through a fresh engine of
    the same size given every parameter of ``engine`` (``engine`` itself, its
    filters' state and its clock are left alone); the first ``length``
    samples of the answer are kept. It is the linear part: the impulse is far
    below any limiter, but a gate that is on keeps it out.
    """
    probe = BlockEngine(engine.dims)
    probe.mixer.set_many(engine.mixer.snapshot())
    settle = -(-round(SETTLE_S * engine.dims.sample_rate) // block) * block
    length = min(length, n_fft)
    x = np.zeros((settle + length, engine.dims.phys_in))
    x[settle, mic] = PROBE_LEVEL
    y = probe.render(x, block)[settle:, output].astype(np.float64)
    return np.fft.rfft(y / PROBE_LEVEL, n_fft)


def notch_bank_response(engine: BlockEngine, prefix: str, n_fft: int,
                        bank: Mapping[str, object] | None = None) -> np.ndarray:  # fmt: skip
    """Response (rfft, ``n_fft`` points) of the notch bank at ``prefix``
    (``/ls/bus/NN`` or ``/ls/main/st``) as ``engine`` holds it, or with the
    notch parameters in ``bank`` in place of the engine's.

    The bank's biquads as the engine derives them, by their coefficients: a
    bank's effect on a loop is this times a response measured with the bank
    off (notches are linear filters in series).
    """
    values = {**engine.mixer.snapshot(), **(bank or {})}
    if f"{prefix}/notch/01/on" not in values:
        raise ValueError(f"no notch bank at {prefix}")
    rows = notch_coeffs(values, prefix, engine.mixer.registry.n_notch,
                        engine.dims.sample_rate)  # fmt: skip
    return design.cascade_response(rows, n_fft)


def margin_db(engine: BlockEngine, path: "Path", n_fft: int = 1 << 17) -> float:
    """How many dB more gain the loop through ``path`` takes before it howls,
    with ``engine`` set as it is now (negative: it howls).

    The MSG of the open loop: the engine's measured forward response from
    the path's mic to its loudspeaker (``engine_response``: sends, notches,
    everything) times the path's response; the engine's gain is inside it,
    so this is the MSG minus the gain applied.
    """
    forward = engine_response(engine, n_fft, mic=path.mic, output=path.output)
    return metrics.msg_db(forward * metrics.path_response(path.ir, n_fft))


def onset(ir: np.ndarray) -> int:
    """The first sample of ``ir`` within ``ONSET_DB`` of its peak: where its
    sound arrives."""
    mag = np.abs(np.asarray(ir, dtype=float))
    peak = np.max(mag, initial=0.0)
    if peak == 0.0:
        raise ValueError("a path's impulse response is silent")
    return int(np.argmax(mag >= peak * 10 ** (-ONSET_DB / 20)))


@dataclass
class Path:
    """One acoustic path: from engine output ``output`` into input ``mic``."""

    output: int
    mic: int
    ir: np.ndarray


class _Convolver:
    """One path as a uniformly partitioned overlap-save convolution.

    Partitions are one block long; the first is silent (the path is longer
    than a block), so the next block's microphone signal needs only blocks
    already played. Cost per block: one FFT pair and one multiply-add per
    partition, instead of a block times the whole impulse response.
    """

    def __init__(self, ir: np.ndarray, block: int) -> None:
        self.block = block
        parts = -(-len(ir) // block)
        padded = np.zeros(parts * block)
        padded[: len(ir)] = ir
        spectra = np.fft.rfft(padded.reshape(parts, block), 2 * block, axis=1)
        self.h = spectra[1:][::-1].copy()  # oldest input block meets the last part
        self.n = parts - 1
        # Every spectrum written twice, so the newest n are one contiguous slice.
        self.x = np.zeros((2 * self.n, block + 1), complex)
        self.pos = 0
        self.last = np.zeros(block)

    def next_block(self) -> np.ndarray:
        acc = np.einsum("pk,pk->k", self.x[self.pos : self.pos + self.n], self.h)
        return np.fft.irfft(acc, 2 * self.block)[self.block :]

    def push(self, played: np.ndarray) -> None:
        spectrum = np.fft.rfft(np.concatenate([self.last, played]))
        self.x[self.pos] = self.x[self.pos + self.n] = spectrum
        self.pos = (self.pos + 1) % self.n
        self.last = played


@dataclass
class FeedbackLoop:
    """Loudspeakers feeding back into microphones around a ``BlockEngine``.

    ``process(sources)`` runs one block: the microphones hear ``sources``
    (``[frames, phys_in]``, what the performers play) plus the room's
    response to everything the loudspeakers played before; the engine then
    turns the inputs into outputs. Every block of one loop has the same length.

    Each path's sound must arrive (``onset``: within ``ONSET_DB`` of its
    peak) no sooner than one block, as in any real room: a block's output
    is not played yet while the block is computed. A measured or filtered
    response often has something before that (the measurement's noise floor,
    a filter's pre-ringing): the loop trims it, sets the first block of each
    path to zero, and keeps what it dropped (energy against the whole path,
    dB) in ``trimmed_db``. A path whose sound arrives within the first block
    is refused, never trimmed: that would change the loop, not its noise.
    """

    engine: BlockEngine
    paths: list[Path]
    convolvers: list[_Convolver] = field(init=False, default_factory=list)
    trimmed_db: list[float] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.onsets = [onset(p.ir) for p in self.paths]
        self.min_delay = min(self.onsets)

    def feedback(self, frames: int) -> np.ndarray:
        """What the microphones hear of the loudspeakers in the next ``frames``."""
        if frames > self.min_delay:
            worst = int(np.argmin(self.onsets))
            raise ValueError(f"a block of {frames} frames is longer than the shortest "
                             f"path ({self.min_delay} samples, path {worst}: its "
                             f"sound arrives within {ONSET_DB:.0f} dB of its peak "
                             "there): the loop would need sound that has not been "
                             "played yet; use shorter blocks")  # fmt: skip
        if not self.convolvers:
            self.convolvers = [self._convolver(p.ir, frames) for p in self.paths]
        elif frames != self.convolvers[0].block:
            raise ValueError(f"this loop runs blocks of {self.convolvers[0].block} "
                             f"frames, not {frames}")  # fmt: skip
        mics = np.zeros((frames, self.engine.dims.phys_in))
        for path, conv in zip(self.paths, self.convolvers, strict=True):
            mics[:, path.mic] += conv.next_block()
        return mics

    def _convolver(self, ir: np.ndarray, frames: int) -> _Convolver:
        """The path's convolver, its first block (noise, see above) set to zero."""
        ir = np.array(ir, dtype=float)
        dropped = np.sum(ir[:frames] ** 2)
        self.trimmed_db.append(
            10 * np.log10(dropped / np.sum(ir**2)) if dropped else -np.inf
        )
        ir[:frames] = 0.0
        return _Convolver(ir, frames)

    def process(self, sources: np.ndarray) -> np.ndarray:
        """One block through the closed loop; returns the engine's outputs."""
        heard = sources + self.feedback(sources.shape[0])
        out = self._engine_block(heard)
        for path, conv in zip(self.paths, self.convolvers, strict=True):
            conv.push(out[:, path.output].astype(np.float64))
        return out

    def _engine_block(self, heard: np.ndarray) -> np.ndarray:
        """What the engine plays for what the microphones heard."""
        return self.engine.process(heard.astype(np.float32))


@dataclass
class AfcLoop(FeedbackLoop):
    """A ``FeedbackLoop`` with an adaptive feedback canceller on every path,
    between what the microphones hear and the engine's inputs.

    Each path's canceller (``livesound.audio.afc``, made with ``settings``
    as ``make_state`` keywords at the first block) is fed what the engine
    played on the path's output; every mic's estimates are taken off what
    it heard, and each canceller of that mic adapts on the one corrected
    signal (several loudspeakers into one mic: a multichannel NLMS), which
    goes on to the engine through the decorrelation delay of the mic's first
    path (``delay`` in ``settings``), as in the engine's callback.
    ``estimate(i)`` is path ``i``'s F̂ as taps from lag 0, to score the loop
    by ``path.ir - estimate(i)``.
    """

    settings: dict = field(default_factory=dict)
    # Every path learning from the test signal its output plays (as the
    # engine's ``AfcPaths.learn``; added here after the engine, not before
    # its limiter).
    learning: bool = False
    cancellers: list[afc.AfcState] = field(init=False, default_factory=list)

    def estimate(self, index: int) -> np.ndarray:
        """Path ``index``'s F̂ (taps from lag 0)."""
        return afc.impulse_response(self.cancellers[index])

    def _engine_block(self, heard: np.ndarray) -> np.ndarray:
        """Every path's estimate off its mic, the cancellers adapted on the
        corrected mics, the engine run on them, what it played handed back."""
        frames = heard.shape[0]
        if not self.cancellers:
            self.cancellers = [afc.make_state(frames, **self.settings)
                               for _ in self.paths]  # fmt: skip
        for st in self.cancellers:
            st.counters[afc.I_LEARN] = int(self.learning)
        for path, st in zip(self.paths, self.cancellers, strict=True):
            mic = np.ascontiguousarray(heard[:, path.mic])
            afc.afc_cancel(st, mic)
            heard[:, path.mic] = mic
        for path, st in zip(self.paths, self.cancellers, strict=True):
            afc.afc_adapt(st, np.ascontiguousarray(heard[:, path.mic]))
        delayed = set()
        for path, st in zip(self.paths, self.cancellers, strict=True):
            if path.mic not in delayed:  # the line of the mic's first path
                delayed.add(path.mic)
                mic = np.ascontiguousarray(heard[:, path.mic])
                afc.afc_delay(st, mic, True)
                heard[:, path.mic] = mic
        out = super()._engine_block(heard)
        sounding = set()
        for path, st in zip(self.paths, self.cancellers, strict=True):
            if self.learning and path.output not in sounding:  # its first path
                sounding.add(path.output)
                played = out[:, path.output].astype(np.float64)
                afc.learn_signal(st, played)
                out[:, path.output] = played
        for path, st in zip(self.paths, self.cancellers, strict=True):
            afc.afc_push(st, out[:, path.output].astype(np.float64))
        return out

"""Feedback-control measures of van Waterschoot & Moonen (Proc. IEEE 2011).

The benchmark scores a suppressor the way the literature does:

- MSG, maximum stable gain, from the open-loop response ``L = J·F`` of the
  loudspeaker→mic path ``J`` and the console's forward path ``F``; ΔMSG is what
  the notch bank adds to it;
- SD, frequency-weighted log-spectral distortion of the output against the
  no-feedback reference (what the notches and any howling cost in sound);
- HOP, howling occurrence probability, and TRI, the time to recover from
  instability, from per-frame howling flags;
- the residual-ringing share: how much of a run's end a narrowband tone
  stands over the dry signal (what the audience hears ringing after words).

Everything here is offline numpy on whole signals; nothing runs in the engine.
"""

import math

import numpy as np

from livesound.audio import design

# SD and the howling flags skip frames this far below the loudest frame: there
# is nothing to judge in silence.
_SILENCE_DB = 60.0
# SD compares power spectra down to this far below the reference frame's loudest
# bin; lower bins are clamped to it, so empty bins (a band-limited source, a
# digital pause) read as equal rather than as hundreds of dB apart.
_SD_FLOOR_DB = 80.0
# A howling bin must be this close to the loudest bin of its frame of x.
_HOWL_PROMINENCE_DB = 30.0
# A phase this close to zero meets the phase condition: rounding, not phase.
_ZERO_PHASE = 1e-9
# SD and the howling flags look at the audible band only.
_AUDIBLE_HZ = (20.0, 20000.0)
# A tone's bin is compared with its neighbours this many bins away: past a
# Hann window's main lobe (±2 bins), close enough to be its local floor.
_NEIGHBOURS = np.array([-8, -7, -6, -5, -4, 4, 5, 6, 7, 8])


def _db_to_power(db: float) -> float:
    return 10.0 ** (db / 10.0)


def forward_response(
    notches: np.ndarray, gain_db: float, latency: int, n_fft: int
) -> np.ndarray:
    """Frequency response of the engine's forward path at the rfft frequencies.

    Broadband gain × the cascade of biquads ``notches`` (rows ``b0 b1 b2 a1 a2``,
    a0 = 1, as ``livesound.audio.design`` returns them and the kernels run them)
    × a delay of ``latency`` samples.
    """
    k = np.arange(n_fft // 2 + 1)
    # The delay's phase k·latency/n_fft is reduced modulo one turn in integers,
    # so a long latency loses no precision to a huge angle.
    delay = np.exp(-2j * np.pi * ((k * latency) % n_fft) / n_fft)
    gain = 10.0 ** (gain_db / 20.0)
    return gain * design.cascade_response(notches, n_fft) * delay


def path_response(ir: np.ndarray, n_fft: int) -> np.ndarray:
    """Frequency response (rfft) of a loudspeaker→mic impulse response."""
    ir = np.asarray(ir, dtype=float)
    if n_fft < ir.shape[-1]:
        # A shorter FFT would alias the tail onto the direct sound.
        raise ValueError(f"n_fft={n_fft} is shorter than the IR ({ir.shape[-1]})")
    return np.fft.rfft(ir, n_fft)


def _phase_crossings(loop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional bins where ``∠loop`` = n·2π, and ``|loop|`` there.

    On the grid, the phase condition holds where the wrapped phase is zero
    (to rounding: at DC and Nyquist a real loop is exactly real, but computed
    delay terms carry 1e-16 of imaginary part) or changes sign between
    neighbouring bins. A sign change with a jump of π or more is the ±π wrap
    (the loop is real and *negative* there), not a zero. ``|loop|`` is
    interpolated linearly at the crossing. This assumes the phase moves less
    than π per bin, i.e. ``n_fft`` well above twice the loop's total delay;
    see ``msg_db``.
    """
    loop = np.asarray(loop)
    phase = np.angle(loop)
    mag = np.abs(loop)
    on = np.flatnonzero(np.abs(phase) <= _ZERO_PHASE)
    a, b = phase[:-1], phase[1:]
    i = np.flatnonzero((a * b < 0.0) & (np.abs(b - a) < np.pi))
    t = a[i] / (a[i] - b[i])
    bins = np.concatenate([on, i + t])
    mags = np.concatenate([mag[on], mag[i] + t * (mag[i + 1] - mag[i])])
    return bins, mags


def msg_db(loop: np.ndarray) -> float:
    """Maximum stable gain (dB) of an open-loop response ``L = J·F`` (rfft grid).

    MSG = −20·log10 max |L(ω)| over the frequencies P where ``∠L(ω) = n·2π``
    (Nyquist: the loop goes unstable first where it is real and positive).
    P is found on the grid as the zero crossings of the wrapped phase, with
    ``|L|`` linearly interpolated there (``_phase_crossings``). The grid must
    resolve the loop: the phase turns by 2π·delay/n_fft per bin, so use
    ``n_fft`` of at least 4× the IR length plus latency (zero padding) for
    crossings spaced several bins apart; a coarser grid misses or misplaces
    crossings and reads the peaks of ``|L|`` low, so the MSG comes out
    optimistic. ``inf`` if no frequency meets the condition.
    """
    _, mags = _phase_crossings(loop)
    peak = float(np.max(mags, initial=0.0))
    return math.inf if peak == 0.0 else -20.0 * math.log10(peak)


def limiting_bin(loop: np.ndarray) -> float:
    """Fractional rfft bin of the frequency that limits the MSG (howls first).

    In Hz it is ``limiting_bin(loop) * sample_rate / n_fft``. NaN if no
    frequency meets the phase condition.
    """
    bins, mags = _phase_crossings(loop)
    return float(bins[np.argmax(mags)]) if bins.size else math.nan


def delta_msg_db(
    ir: np.ndarray, notches: np.ndarray, latency: int, n_fft: int
) -> float:
    """MSG gained by the notch bank: MSG with ``notches`` minus MSG without.

    The broadband gain scales both loops alike and cancels, so it is left at
    0 dB; the latency stays, as it sets where the phase condition holds.
    """
    path = path_response(ir, n_fft)
    with_notches = msg_db(path * forward_response(notches, 0.0, latency, n_fft))
    bare = msg_db(path * forward_response(np.empty((0, 5)), 0.0, latency, n_fft))
    return with_notches - bare


def _power_frames(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """Hann-windowed power spectra ``[n_frames, frame // 2 + 1]`` of ``x``.

    A signal shorter than one frame is zero-padded to one frame.
    """
    x = np.asarray(x, dtype=float)
    if x.shape[0] < frame:
        x = np.pad(x, (0, frame - x.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(frame), axis=-1)) ** 2


def _paired_frames(
    x: np.ndarray, ref: np.ndarray, frame: int, hop: int
) -> tuple[np.ndarray, np.ndarray]:
    if np.shape(x) != np.shape(ref) or np.ndim(x) != 1:
        raise ValueError(
            f"x and ref must be mono and equally long, got {np.shape(x)} and {np.shape(ref)}"
        )
    return _power_frames(x, frame, hop), _power_frames(ref, frame, hop)


def _audible(frame: int, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Bin frequencies of a ``frame``-point rfft and the mask of audible ones."""
    f = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    lo, hi = _AUDIBLE_HZ[0], min(_AUDIBLE_HZ[1], sample_rate / 2.0)
    return f, (f >= lo) & (f <= hi)


def _erb_weights(frame: int, sample_rate: float) -> np.ndarray:
    """Per-bin weights ∝ 1/ERB(f) in the audible band, so each ERB counts once.

    The bins are equally spaced, so summing bin width / ERB over a band counts
    the ERBs in it: every ERB band gets the same total weight.
    """
    f, audible = _audible(frame, sample_rate)
    erb = 24.7 * (4.37 * f / 1000.0 + 1.0)
    return np.where(audible, 1.0 / erb, 0.0)


def _loud_frames(
    power: np.ndarray, level: float, quiet_db: float = _SILENCE_DB
) -> np.ndarray:
    """Frames whose energy is less than ``quiet_db`` below ``level``."""
    return power.sum(axis=1) > level * _db_to_power(-quiet_db)


def spectral_distortion_db(
    x: np.ndarray,
    ref: np.ndarray,
    sample_rate: float,
    frame: int = 4096,
    hop: int = 2048,
) -> float:
    """Frequency-weighted log-spectral distortion (dB) of ``x`` against ``ref``.

    Per frame, SD = sqrt(Σ w_k (10·log10(P_x[k] / P_ref[k]))² / Σ w_k) with
    ERB weights w_k (every ERB band between 20 Hz and min(20 kHz, fs/2) counts
    equally); the mean over the frames where ``ref`` is within 60 dB of its
    loudest frame. Powers are clamped to 80 dB below the reference frame's
    loudest bin. 0 if ``ref`` is silent throughout.
    """
    px, pr = _paired_frames(x, ref, frame, hop)
    keep = _loud_frames(pr, pr.sum(axis=1).max())
    px, pr = px[keep], pr[keep]
    if not pr.size:
        return 0.0
    floor = pr.max(axis=1, keepdims=True) * _db_to_power(-_SD_FLOOR_DB)
    log_ratio = 10.0 * np.log10(np.maximum(px, floor) / np.maximum(pr, floor))
    w = _erb_weights(frame, sample_rate)
    per_frame = np.sqrt(log_ratio**2 @ w / w.sum())
    return float(per_frame.mean())


def _run_lengths(cells: np.ndarray) -> np.ndarray:
    """Length of the run of True along axis 0 each True cell belongs to (else 0)."""

    def so_far(c: np.ndarray) -> np.ndarray:
        out = np.zeros(c.shape, dtype=int)
        for i in range(c.shape[0]):
            out[i] = np.where(c[i], out[i - 1] + 1, 0) if i else c[i]
        return out

    return np.where(cells, so_far(cells) + so_far(cells[::-1])[::-1] - 1, 0)


def howling(
    x: np.ndarray,
    ref: np.ndarray,
    sample_rate: float,
    frame: int = 4096,
    hop: int = 1024,
    threshold_db: float = 20.0,
    min_frames: int = 1,
    quiet_db: float = _SILENCE_DB,
    tonal_db: float | None = None,
) -> np.ndarray:
    """Per-frame howling flags of ``x`` (the loop's output) against ``ref``.

    A frame howls when some bin of ``x`` exceeds the same bin of ``ref`` by at
    least ``threshold_db`` and is within 30 dB of the frame's loudest bin of
    ``x`` (a quiet bin where ``ref`` happens to be empty is no howl). Only bins
    between 20 Hz and min(20 kHz, fs/2) count (a DC offset is no howl). Frames
    where ``x`` is more than ``quiet_db`` (60 dB) below the loudest frame of
    ``ref`` count as silent and never howl; the yardstick is ``ref`` because a
    runaway ``x`` would make its own earlier frames look silent. A smaller
    ``quiet_db`` counts only loud howls, not a stable loop's ringing in the
    pauses of speech.

    With ``min_frames`` > 1 a bin must keep howling (on it or a neighbouring
    bin) for that many consecutive frames, and then the whole run is flagged
    from its first frame. A stable loop's ringing after each word of speech
    exceeds a dry reference by 20 dB for a frame or two; a howl stays.

    With ``tonal_db`` a bin must also be a tone: that far above the mean of
    ``x``'s bins 4 to 8 bins either side (a room's broadband reverberation in
    a pause of the dry signal stands over it, but as noise, not as a tone).
    """
    px, pr = _paired_frames(x, ref, frame, hop)
    # Products, not ratios: empty reference bins need no floor.
    above_ref = px >= pr * _db_to_power(threshold_db)
    prominent = px >= px.max(axis=1, keepdims=True) * _db_to_power(-_HOWL_PROMINENCE_DB)
    cells = above_ref & prominent & _audible(frame, sample_rate)[1]
    cells &= _loud_frames(px, pr.sum(axis=1).max(), quiet_db)[:, None]
    if tonal_db is not None:
        cells &= _tonal(px, tonal_db)
    if min_frames > 1:
        # A howl may drift by a bin between frames, as a notch pulls on it.
        near = cells.copy()
        near[:, 1:] |= cells[:, :-1]
        near[:, :-1] |= cells[:, 1:]
        cells = _run_lengths(near) >= min_frames
    return cells.any(axis=1)


def _tonal(power: np.ndarray, tonal_db: float) -> np.ndarray:
    """Bins of ``power`` [frames, bins] ``tonal_db`` over their neighbours' mean."""
    k = np.arange(power.shape[1])
    near = np.clip(k[:, None] + _NEIGHBOURS, 0, power.shape[1] - 1)
    return power >= power[:, near].mean(axis=2) * _db_to_power(tonal_db)


def ringing_share(
    x: np.ndarray,
    ref: np.ndarray,
    sample_rate: float,
    *,
    last_s: float = 10.0,
    threshold_db: float = 20.0,
    min_s: float = 0.13,
    tonal_db: float = 10.0,
    frame: int = 2048,
    hop: int = 512,
) -> float:
    """Residual ringing: the share of the last ``last_s`` of ``x`` in which a
    narrowband tone stands ``threshold_db`` over the dry ``ref`` for ``min_s``
    or longer.

    ``howling`` with a tone test (``tonal_db`` over its neighbours) on
    ``frame``-point frames every ``hop``: a bin must stay flagged for
    ⌈``min_s`` / hop⌉ frames running. Pauses of ``ref`` count (ringing after
    words is what is heard), silence of ``x`` (60 dB below ``ref``'s loudest)
    does not. The share is over the frames that start in the last ``last_s``.
    """
    flags = howling(x, ref, sample_rate, frame, hop, threshold_db,
                    min_frames=math.ceil(min_s * sample_rate / hop),
                    tonal_db=tonal_db)  # fmt: skip
    first = max(0, math.ceil((len(x) - last_s * sample_rate) / hop))
    return howl_fraction(flags[first:])


def howl_fraction(flags: np.ndarray) -> float:
    """HOP: the share of frames that howl (0 for no frames)."""
    flags = np.asarray(flags, dtype=bool)
    return float(flags.mean()) if flags.size else 0.0


def recovery_times(flags: np.ndarray, hop_seconds: float) -> list[float]:
    """TRI: the duration of each run of howling frames, in seconds.

    A run lasts from its first howling frame to the first frame after it. A
    run still going at the last frame never recovered: its time is ``inf``.
    """
    flags = np.asarray(flags, dtype=bool)
    edges = np.diff(flags.astype(np.int8), prepend=0, append=0)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [
        math.inf if end == flags.size else float((end - start) * hop_seconds)
        for start, end in zip(starts, ends, strict=True)
    ]

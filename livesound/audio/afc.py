"""Adaptive feedback cancellation (AFC) of one loudspeaker→mic path.

A prediction-error-method canceller in the manner of PEM-AFROW (Rombouts,
van Waterschoot & Moonen, 2006; van Waterschoot & Moonen, Proc. IEEE 2011):

- an estimate F̂ of the path, a partitioned-block frequency-domain adaptive
  filter (PBFDAF, overlap-save) whose partitions are one block long, filters
  what the loudspeaker played; the estimate is subtracted from the mic;
- the source a mic hears is not white, and in a closed loop the loudspeaker
  plays that same source a few ms later, so a plain NLMS would learn the
  source's own correlation instead of the path (the bias of closed-loop
  identification). The corrected mic signal (≈ the source) is modelled by a
  short-term linear predictor (LPC of ``order`` over a ``frame`` of recent
  samples, Levinson-Durbin); its inverse filter prewhitens both the
  loudspeaker signal and the error, and only those whitened signals drive
  the update. The estimate itself filters the unwhitened loudspeaker signal.
- The update is NLMS-normalised per bin by a smoothed power of the whitened
  loudspeaker spectrum; the gradient constraint (taps beyond a block zeroed,
  so each partition stays a linear, not circular, filter) is applied to a
  few partitions per block in turn (Derkx et al., IEEE SPL 2002), which costs
  two FFTs per constrained partition instead of two per partition.
- The corrected mic goes on ``delay`` samples late (``afc_delay``): a few
  ms more between what the mic hears and what the loudspeaker plays of it
  decorrelate the two, which closed-loop identification needs (without it
  F̂ learnt a biased path on speech; BENCHMARKS.md, "AFC, phase 1").

Partition ``q`` holds the taps at lags ``(q + 1)·block … (q + 2)·block − 1``:
a block's mic signal can only contain sound played before that block (the
same rule ``livesound.virtual.sim.FeedbackLoop`` keeps), so the lags under
one block are left out and the estimate needs nothing not yet played.

In a show the source stays correlated with what the loudspeaker plays
(a held note above all), and whatever the step, F̂ learns some of it
(BENCHMARKS.md, "Issue 12, phase 5"). A test signal has no such bias: while
the caller sets ``I_LEARN``, ``learn_signal`` adds white noise to what the
loudspeaker plays and F̂ adapts with a large step on all its partitions;
learnt, it keeps F̂ with a small step. Until then it uses only its first
partitions, with the step made for starting from nothing (``step``,
``partitions``).

Per block: ``afc_push`` (the block the loudspeaker just played), then for the
next mic block ``afc_cancel`` (the estimate off, guarded), ``afc_adapt`` with
the corrected block, then ``afc_delay`` on what goes on. ``afc_block`` does it
for one path. None of them allocates,
locks or calls Python: ``make_state`` builds every array once. FFTs are our
own radix-2 kernels (numba has no FFT): a real transform of 2·block points as
a complex one of ``block`` points.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

kernel = njit(nogil=True, cache=True, error_model="numpy", fastmath={"contract"})

# Levinson-Durbin on a frame of pure tones is ill-conditioned: the
# autocorrelation's zero lag is raised by this share (white noise 40 dB under
# the frame), which bounds the predictor's gain.
WHITE_NOISE_CORRECTION = 1e-4
# A frame this quiet (mean square) is silence: the predictor keeps its last
# model rather than fit one to the noise floor.
SILENT_POWER = 1e-12

# Rows of ``AfcState.params`` and slots of ``AfcState.counters``. The step
# size is one of three (``step``): while learning the path from a test signal
# (``I_LEARN``, set by the caller), once F̂ came from such a learning
# (``I_LEARNT``, until a reset), and before either.
P_MU, P_DELTA, P_SMOOTH, P_MU_LEARN, P_MU_LEARNT, P_LEARN_RMS = range(6)
N_PARAMS = 6
(I_POS, I_CONSTRAIN_NEXT, I_LPC_COUNT, I_FRAME_POS, I_CONSTRAIN_PER_BLOCK, I_LPC_HOP,
 I_DELAY_POS, I_RESETS, I_LEARN, I_LEARNT, I_COLD, I_RNG) = range(12)  # fmt: skip
N_COUNTERS = 12
# Slots of ``AfcState.guard``: the mic's power before and after the estimate
# came off, smoothed, and the smoothing's coefficient per block.
G_HEARD, G_LEFT, G_COEF = range(3)
# A canceller whose estimate leaves the mic this much louder than it heard
# it (smoothed over ``guard_blocks``) has diverged: it starts over. An
# estimate that is merely wrong leaves about the power it found; one that
# adds 6 dB on its own is making the loop, not taking it apart.
DIVERGED_DB = 12.0


class AfcState(NamedTuple):
    """Every array of one canceller, made once by ``make_state``.

    B is the block, K = B + 1 the bins of a 2B-point real FFT, P the
    partitions, N the predictor's order, F its frame.
    """

    w: np.ndarray  # complex [P, K]: F̂'s partitions (rfft of B taps, B zeros)
    x: np.ndarray  # complex [P, K]: spectra of the last 2B played samples, a ring
    xw: np.ndarray  # complex [P, K]: the same, prewhitened
    power: np.ndarray  # [K]: smoothed power of the whitened played spectrum
    u_last: np.ndarray  # [B]: the block played before the newest
    uw_last: np.ndarray  # [B]: the same, prewhitened
    zu: np.ndarray  # [N]: the whitening filter's past input, played signal
    ze: np.ndarray  # [N]: the same for the error
    a: np.ndarray  # [N + 1]: prediction-error filter, a[0] = 1
    frame: np.ndarray  # [F]: recent error samples (ring) for the predictor
    window: np.ndarray  # [F]: analysis window of the frame
    wframe: np.ndarray  # [F]: the windowed frame, work
    r: np.ndarray  # [N + 1]: autocorrelation scratch
    lev: np.ndarray  # [N + 1]: Levinson-Durbin scratch
    tw: np.ndarray  # complex [B/2]: twiddles of the B-point complex FFT
    rev: np.ndarray  # int [B]: its bit-reversal permutation
    split: np.ndarray  # complex [K]: twiddles that split it into a real 2B FFT
    z: np.ndarray  # complex [B]: FFT work
    spec: np.ndarray  # complex [2, K]: spectrum work (sum, error)
    t: np.ndarray  # [2B]: time-domain work
    work: np.ndarray  # [B]: a block's work (whitened signals, the estimate)
    params: np.ndarray  # [6]: step size, regularisation, power smoothing, the
    # step while learning and after, the test signal's RMS
    counters: np.ndarray  # int [12]: ring position, constraint turn, LPC cadence,
    # the delay line's position, the guard's resets, learning, learnt, the
    # partitions used before, the test signal's generator
    dline: np.ndarray  # [D]: the decorrelation delay's line (a ring)
    guard: np.ndarray  # [3]: the divergence guard's powers (G_HEARD, G_LEFT, G_COEF)


def fft_tables(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twiddles and bit reversal for an ``n``-point real FFT (``n`` a power of
    two ≥ 4): the complex ``n/2``-point FFT's twiddles, its bit-reversal
    permutation, and the twiddles that split its result into the real one's."""
    m = n // 2
    if n < 4 or n & (n - 1):
        raise ValueError(f"FFT size must be a power of two >= 4, not {n}")
    bits = m.bit_length() - 1
    rev = np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0
                    for i in range(m)], dtype=np.int64)  # fmt: skip
    tw = np.exp(-2j * np.pi * np.arange(m // 2) / m)
    split = np.exp(-2j * np.pi * np.arange(m + 1) / n)
    return tw, rev, split


@kernel
def fft_inplace(z, tw, rev):
    """Forward complex FFT of ``z`` in place (iterative radix-2, decimation in
    time)."""
    m = z.size
    for i in range(m):
        j = rev[i]
        if j > i:
            tmp = z[i]
            z[i] = z[j]
            z[j] = tmp
    half = 1
    while half < m:
        stride = m // (2 * half)
        for start in range(0, m, 2 * half):
            for k in range(half):
                top = z[start + k]
                bottom = tw[k * stride] * z[start + k + half]
                z[start + k] = top + bottom
                z[start + k + half] = top - bottom
        half *= 2


@kernel
def rfft_into(t, out, z, tw, rev, split):
    """``out[:] = numpy.fft.rfft(t)`` for real ``t`` of 2·len(z) points, as
    one complex FFT of half the size (even samples real, odd imaginary)."""
    m = z.size
    for n in range(m):
        z[n] = complex(t[2 * n], t[2 * n + 1])
    fft_inplace(z, tw, rev)
    for k in range(m + 1):
        zk = z[k % m]
        zc = z[(m - k) % m].conjugate()
        out[k] = 0.5 * (zk + zc) - 0.5j * split[k] * (zk - zc)


@kernel
def irfft_into(spec, t, z, tw, rev, split):
    """``t[:] = numpy.fft.irfft(spec)`` (2·len(z) points); the inverse as a
    forward FFT of the conjugate."""
    m = z.size
    for k in range(m):
        xc = spec[m - k].conjugate()
        even = 0.5 * (spec[k] + xc)
        odd = 0.5 * (spec[k] - xc) * split[k].conjugate()
        z[k] = (even + 1j * odd).conjugate()
    fft_inplace(z, tw, rev)
    scale = 1.0 / m
    for n in range(m):
        t[2 * n] = z[n].real * scale
        t[2 * n + 1] = -z[n].imag * scale


@kernel
def _copy(src, dst, start):
    """``dst[start : start + len(src)] = src`` as a loop: a slice assignment
    would compile a shape check whose error path allocates."""
    for n in range(src.size):
        dst[start + n] = src[n]


@kernel
def _whiten(a, state, src, dst):
    """``dst`` = ``src`` through the FIR ``a`` (a[0] = 1); ``state`` holds the
    last len(a) - 1 inputs, newest first."""
    order = state.size
    for n in range(src.size):
        acc = src[n]
        for i in range(order):
            acc += a[i + 1] * state[i]
        for i in range(order - 1, 0, -1):
            state[i] = state[i - 1]
        if order:
            state[0] = src[n]
        dst[n] = acc


@kernel
def levinson(r, a, tmp):
    """Prediction-error filter ``a`` (a[0] = 1) of order len(r) - 1 from the
    autocorrelation ``r`` (Levinson-Durbin); returns the prediction-error
    power. ``tmp`` is scratch of len(r)."""
    order = r.size - 1
    a[:] = 0.0
    a[0] = 1.0
    err = r[0]
    for i in range(1, order + 1):
        if err <= 0.0:
            break
        acc = r[i]
        for j in range(1, i):
            acc += a[j] * r[i - j]
        k = -acc / err
        for j in range(i + 1):
            tmp[j] = a[j]
        for j in range(1, i):
            a[j] = tmp[j] + k * tmp[i - j]
        a[i] = k
        err *= 1.0 - k * k
    return err


@kernel
def _update_predictor(st, err):
    """Append the corrected block to the frame; every ``lpc_hop`` blocks, fit
    the predictor to the windowed frame."""
    frame = st.frame
    size = frame.size
    pos = st.counters[I_FRAME_POS]
    for n in range(err.size):
        frame[pos] = err[n]
        pos += 1
        if pos == size:
            pos = 0
    st.counters[I_FRAME_POS] = pos
    st.counters[I_LPC_COUNT] += 1
    if st.counters[I_LPC_COUNT] < st.counters[I_LPC_HOP]:
        return
    st.counters[I_LPC_COUNT] = 0
    # The frame in time order (oldest at ``pos``), windowed, then its
    # autocorrelation on contiguous memory.
    seg = st.wframe
    for n in range(size):
        seg[n] = frame[(pos + n) % size] * st.window[n]
    r = st.r
    for lag in range(r.size):
        acc = 0.0
        for n in range(lag, size):
            acc += seg[n] * seg[n - lag]
        r[lag] = acc
    if r[0] < SILENT_POWER * size:
        return
    r[0] *= 1.0 + WHITE_NOISE_CORRECTION
    levinson(r, st.a, st.lev)


@kernel
def afc_push(st, played):
    """Take the block the loudspeaker just played: its spectrum (last 2B
    samples) and its prewhitened spectrum into the rings, the whitened
    power into the per-bin normalisation. A non-finite block (never from
    the engine, whose outputs are finite) is taken as silence."""
    b = played.size
    p = st.w.shape[0]
    pos = st.counters[I_POS] + 1
    if pos == p:
        pos = 0
    st.counters[I_POS] = pos
    t = st.t
    _copy(st.u_last, t, 0)
    total = 0.0
    for n in range(b):
        t[b + n] = played[n]
        total += played[n]
    if not math.isfinite(total):
        t[b:] = 0.0
    rfft_into(t, st.x[pos], st.z, st.tw, st.rev, st.split)
    _copy(t[b:], st.u_last, 0)
    _whiten(st.a, st.zu, st.u_last, st.work)
    _copy(st.uw_last, t, 0)
    _copy(st.work, t, b)
    xw = st.xw[pos]
    rfft_into(t, xw, st.z, st.tw, st.rev, st.split)
    smooth = st.params[P_SMOOTH]
    for k in range(st.power.size):
        mag = xw[k].real * xw[k].real + xw[k].imag * xw[k].imag
        st.power[k] = smooth * st.power[k] + (1.0 - smooth) * mag
    _copy(st.work, st.uw_last, 0)


@kernel
def afc_estimate(st, est):
    """``est`` = F̂ applied to what was played: the feedback the next mic
    block holds, by the filter as it is now."""
    b = est.size
    k_bins = st.w.shape[1]
    p = partitions(st)
    pos = st.counters[I_POS]
    acc = st.spec[0]
    acc[:] = 0.0
    for q in range(p):
        row = pos - q
        if row < 0:
            row += st.w.shape[0]
        for k in range(k_bins):
            acc[k] += st.w[q, k] * st.x[row, k]
    irfft_into(acc, st.t, st.z, st.tw, st.rev, st.split)
    total = 0.0
    for n in range(b):
        est[n] = st.t[b + n]
        total += est[n]
    if not math.isfinite(total):
        # A filter that has gone non-finite cancels nothing ever again: it
        # starts over, and this block passes uncorrected.
        st.w[:] = 0.0
        est[:] = 0.0


@kernel
def afc_adapt(st, err):
    """One NLMS step of F̂ on the prewhitened error ``err`` (the mic block with
    the estimate taken off), then the gradient constraint for the next
    partitions in turn, then the predictor."""
    b = err.size
    k_bins = st.w.shape[1]
    total = 0.0
    for n in range(b):
        total += err[n]
    if not math.isfinite(total):
        return  # nothing to learn from, and it would poison F̂ and the predictor
    if st.counters[I_LEARN]:
        st.counters[I_LEARNT] = 1  # kept after the learning ends, until a reset
    mu = 2.0 * step(st)
    p = partitions(st)
    t = st.t
    t[:b] = 0.0
    _whiten(st.a, st.ze, err, st.work)
    _copy(st.work, t, b)
    e = st.spec[1]
    rfft_into(t, e, st.z, st.tw, st.rev, st.split)
    # Normalised per bin: a 2B-point window holds twice a block's power, and
    # the whole filter's input is P blocks; ``mu`` is then NLMS's step.
    delta = st.params[P_DELTA]
    for k in range(k_bins):
        e[k] *= mu / (p * st.power[k] + delta)
    pos = st.counters[I_POS]
    for q in range(p):
        row = pos - q
        if row < 0:
            row += st.w.shape[0]
        for k in range(k_bins):
            st.w[q, k] += st.xw[row, k].conjugate() * e[k]
    c = st.counters[I_CONSTRAIN_NEXT]
    if c >= p:
        c = 0
    for _ in range(st.counters[I_CONSTRAIN_PER_BLOCK]):
        irfft_into(st.w[c], t, st.z, st.tw, st.rev, st.split)
        t[b:] = 0.0
        rfft_into(t, st.w[c], st.z, st.tw, st.rev, st.split)
        c += 1
        if c >= p:
            c = 0
    st.counters[I_CONSTRAIN_NEXT] = c
    _update_predictor(st, err)


@kernel
def step(st):
    """The step size now.

    A test signal the engine plays (``I_LEARN``) is known not to be the
    source, so nothing biases F̂: a large step learns the path in seconds.
    In a show the source a mic hears is what its loudspeaker plays a few ms
    later, and a held note is the same sound for seconds: a step that
    follows quickly learns the note as if it were the path (and cancels the
    music). A learnt F̂ is then kept with a small step that only follows the
    path's slow changes (0.0003 by default: at 0.001 another take of the
    bench's music dragged F̂ to within 0.4 to 2.6 dB of howling); one never
    learnt starts from nothing with a step made for that."""
    if st.counters[I_LEARN]:
        return st.params[P_MU_LEARN]
    if st.counters[I_LEARNT]:
        return st.params[P_MU_LEARNT]
    return st.params[P_MU]


@kernel
def learn_signal(st, block):
    """While learning, add the test signal to ``block`` (what the path's
    loudspeaker is about to play): white noise at ``P_LEARN_RMS``, from a
    xorshift generator of its own (uniform, so its peak is √3 × the RMS)."""
    if not st.counters[I_LEARN]:
        return
    s = st.counters[I_RNG]
    scale = st.params[P_LEARN_RMS] * math.sqrt(3.0) / 2.0**52
    for n in range(block.size):
        s ^= s << 13
        s ^= (s >> 7) & 0x01FFFFFFFFFFFFFF
        s ^= s << 17
        block[n] += (((s >> 11) & 0xFFFFFFFFFFFFF) * 2.0 - 2.0**52) * scale
    st.counters[I_RNG] = s


@kernel
def partitions(st):
    """How many partitions F̂ uses now: all once learnt (or learning), the
    first ``I_COLD`` before. A canceller that starts from nothing in a show
    converges at a rate its length divides (NLMS); the early part of the path
    is what it can learn soon enough to matter."""
    if st.counters[I_LEARN] or st.counters[I_LEARNT]:
        return st.w.shape[0]
    return st.counters[I_COLD]


@kernel
def afc_block(st, mic, played):
    """One path's whole block: take ``played`` (the loudspeaker's last
    block), take the estimated feedback off ``mic`` in place, adapt.
    ``st.work`` is borrowed for the estimate."""
    afc_push(st, played)
    afc_cancel(st, mic)
    afc_adapt(st, mic)
    afc_delay(st, mic, True)


@kernel
def afc_cancel(st, mic):
    """Take the estimated feedback off ``mic`` in place (``st.work`` holds
    the estimate after); returns the mic block's mean square as heard.

    The divergence guard: the mic's power before and after, smoothed; if
    what is left stands ``DIVERGED_DB`` over what was heard, F̂ is making the
    loop instead of taking it apart (a step too large for a bin that was
    quiet long, a path that changed under it): it starts over
    (``counters[I_RESETS]`` counts it) and this block passes uncorrected."""
    afc_estimate(st, st.work)
    heard = 0.0
    left = 0.0
    for n in range(mic.size):
        heard += mic[n] * mic[n]
        mic[n] -= st.work[n]
        left += mic[n] * mic[n]
    heard /= mic.size
    left /= mic.size
    g = st.guard
    g[G_HEARD] += (heard - g[G_HEARD]) * g[G_COEF]
    g[G_LEFT] += (left - g[G_LEFT]) * g[G_COEF]
    if g[G_LEFT] > g[G_HEARD] * 10.0 ** (DIVERGED_DB / 10.0) and g[G_HEARD] > 0.0:
        for n in range(mic.size):
            mic[n] += st.work[n]
        reset(st)
        st.counters[I_RESETS] += 1
    return heard


@kernel
def afc_delay(st, block, apply):
    """The corrected mic through the decorrelation delay, in place when
    ``apply``; otherwise only into the line (so the delay comes in with
    sound already in it when the path is switched on)."""
    line = st.dline
    size = line.size
    if size == 0:
        return
    pos = st.counters[I_DELAY_POS]
    for n in range(block.size):
        held = line[pos]
        line[pos] = block[n]
        if apply:
            block[n] = held
        pos += 1
        if pos == size:
            pos = 0
    st.counters[I_DELAY_POS] = pos


def make_state(block: int = 64, partitions: int = 64, *, mu: float = 0.01,
               mu_learn: float = 0.7, mu_learnt: float = 0.0003,
               learn_rms: float = 0.1,
               order: int = 16, frame: int = 960, lpc_hop: int = 4,
               constrain_per_block: int = 2, cold_partitions: int = 64,
               delta: float = 1e-6,
               power_blocks: float | None = None, delay: int = 0,
               guard_blocks: float = 256.0) -> AfcState:  # fmt: skip
    """A canceller's arrays, made once: ``partitions`` × ``block`` taps (from
    a lag of one block), NLMS step ``mu`` (``mu_learn`` while learning from a
    test signal of RMS ``learn_rms``, ``mu_learnt`` after: ``step``), a
    predictor of ``order`` over
    ``frame`` samples refitted every ``lpc_hop`` blocks,
    ``constrain_per_block`` partitions constrained per block, only the first
    ``cold_partitions`` (at most all) used until F̂ is learnt, regularisation
    ``delta`` (power per bin), the whitened power smoothed over
    ``power_blocks`` blocks (default: the cold filter's length), a
    decorrelation delay of ``delay`` samples, and the divergence guard's
    powers smoothed over ``guard_blocks`` blocks."""
    for value in (mu, mu_learn, mu_learnt):
        if not 0.0 < value < 2.0:
            raise ValueError(f"step size must be in (0, 2), not {value}")
    if not 1 <= constrain_per_block <= min(cold_partitions, partitions):
        raise ValueError("constrain between 1 and all partitions per block")
    if frame < order + 1 or lpc_hop < 1:
        raise ValueError("the predictor's frame must be longer than its order")
    if delay < 0:
        raise ValueError(f"the delay is a number of samples, not {delay}")
    k_bins = block + 1
    tw, rev, split = fft_tables(2 * block)
    smooth = math.exp(-1.0 / (power_blocks or min(cold_partitions, partitions)))
    cplx = np.complex128
    return AfcState(
        w=np.zeros((partitions, k_bins), cplx),
        x=np.zeros((partitions, k_bins), cplx),
        xw=np.zeros((partitions, k_bins), cplx),
        power=np.zeros(k_bins),
        u_last=np.zeros(block),
        uw_last=np.zeros(block),
        zu=np.zeros(order),
        ze=np.zeros(order),
        a=np.concatenate([[1.0], np.zeros(order)]),
        frame=np.zeros(frame),
        window=np.hanning(frame),
        wframe=np.zeros(frame),
        r=np.zeros(order + 1),
        lev=np.zeros(order + 1),
        tw=tw,
        rev=rev,
        split=split,
        z=np.zeros(block, cplx),
        spec=np.zeros((2, k_bins), cplx),
        t=np.zeros(2 * block),
        work=np.zeros(block),
        params=np.array([mu, delta, smooth, mu_learn, mu_learnt, learn_rms]),
        counters=np.array(
            [
                partitions - 1,
                0,
                0,
                0,
                constrain_per_block,
                lpc_hop,
                0,
                0,
                0,
                0,
                min(cold_partitions, partitions),
                0x2545F4914F6CDD1D,
            ],
            dtype=np.int64,
        ),
        dline=np.zeros(delay),
        guard=np.array([0.0, 0.0, 1.0 - math.exp(-1.0 / guard_blocks)]),
    )


@kernel
def reset(st):
    """Forget the path and the source (not the settings): F̂ = 0, not learnt.
    The delay line goes on: it is the sound on its way, not what was learnt;
    so do the count of the guard's resets and the caller's learning switch."""
    for arr in (st.w, st.x, st.xw):
        arr[:] = 0.0
    for arr in (st.power, st.u_last, st.uw_last, st.zu, st.ze, st.frame):
        arr[:] = 0.0
    st.a[:] = 0.0
    st.a[0] = 1.0
    st.counters[I_POS] = st.w.shape[0] - 1
    st.counters[I_CONSTRAIN_NEXT] = 0
    st.counters[I_LPC_COUNT] = 0
    st.counters[I_FRAME_POS] = 0
    st.counters[I_LEARNT] = 0
    st.guard[G_HEARD] = 0.0
    st.guard[G_LEFT] = 0.0


def impulse_response(st: AfcState) -> np.ndarray:
    """F̂ as taps from lag 0 (the first block is zero by construction): each
    partition's constrained part, the B taps a linear filter keeps."""
    p, k_bins = st.w.shape
    block = k_bins - 1
    taps = np.fft.irfft(st.w, 2 * block, axis=1)[:, :block]
    return np.concatenate([np.zeros(block), taps.ravel()])

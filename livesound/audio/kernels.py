"""The audio plane: every per-sample kernel and the PortAudio callback.

All kernels that call each other live in this one module so numba's cache
sees a change to any of them. Nothing here allocates, locks, calls Python
or does I/O. Signals are float64 internally, laid out ``[frame, channel]``
so the inner loops run over contiguous channels and LLVM vectorises them.

The same ``process_block`` serves the PortAudio callback, the virtual device
(``livesound.virtual.device``, which calls the very same C callback) and offline render.
"""

import math

import numpy as np
from numba import carray, cfunc, njit, types

from livesound.audio import afc
from livesound.audio import layout as L
from livesound.audio.lowlevel import (
    bits_f64,
    c128_pointer,
    call_int_function,
    cycle_counter,
    f32_pointer,
    f64_bits,
    f64_pointer,
    flush_denormals,
    i64_pointer,
    load_acquire,
    restore_fpu,
    store_release,
)

# PortAudio's paInputUnderflow | paInputOverflow | paOutputUnderflow | ...Overflow
XRUN_FLAGS = 0x1 | 0x2 | 0x4 | 0x8
SANE = 1.0e4  # inputs beyond +80 dBFS are treated as a broken source

# numpy's error model: a float division never branches to raise
# ZeroDivisionError, which would stop LLVM vectorising the loop around it
# (and there is nobody to catch an exception in the audio thread).
kernel = njit(cache=True, error_model="numpy", fastmath={"contract"})

# ---------------------------------------------------------------------------
# Publication: take a change set from the mailbox at a block boundary.
# ---------------------------------------------------------------------------


@kernel
def _retarget_bank(bq, ramp, mail, ramp_len):
    """New biquad targets; stages whose coefficients change start a ramp.

    ``ramp_len`` 1 lands the change on the next sample (the first set).
    """
    n_stages, _, n_ch = mail.shape
    for s in range(n_stages):
        changed = False
        for k in range(5):
            for c in range(n_ch):
                if mail[s, k, c] != bq[L.C_TGT, s, k, c]:
                    changed = True
        if changed:
            for k in range(5):
                for c in range(n_ch):
                    bq[L.C_TGT, s, k, c] = mail[s, k, c]
                    bq[L.C_STEP, s, k, c] = (
                        mail[s, k, c] - bq[L.C_CUR, s, k, c]
                    ) / ramp_len
            ramp[s] = ramp_len


@kernel
def _retarget_gains(gains, mail, ramp_len):
    """New targets for a ramped gain matrix (the mix, the matrix sends)."""
    nr, nc = mail.shape
    for r in range(nr):
        for c in range(nc):
            gains[L.C_TGT, r, c] = mail[r, c]
            gains[L.C_STEP, r, c] = (mail[r, c] - gains[L.C_CUR, r, c]) / ramp_len


@kernel
def take_params(fields, mail, f_cur, f_step, f_target, ramp_len):
    """Copy the parameter rows of a strip array; start its gain ramp."""
    for k in range(mail.shape[0]):
        for c in range(mail.shape[1]):
            fields[k, c] = mail[k, c]
    for c in range(mail.shape[1]):
        fields[f_step, c] = (fields[f_target, c] - fields[f_cur, c]) / ramp_len


@kernel
def take_change_set(state, slot, first):
    """Copy the parameter set in mailbox ``slot`` into the live arrays,
    starting ramps. The very first set lands at once: there is nothing to
    ramp from.
    """
    glob, ins, outs, mix = (
        state[L.A_GLOB],
        state[L.A_INS],
        state[L.A_OUTS],
        state[L.A_MIX],
    )
    mail_ins, mail_outs = state[L.A_MAIL_INS][slot], state[L.A_MAIL_OUTS][slot]
    mail_glob, mail_mix = state[L.A_MAIL_GLOB][slot], state[L.A_MAIL_MIX][slot]
    gain_ramp = 1.0 if first else glob[L.G_GAIN_RAMP]
    coef_ramp = 1.0 if first else glob[L.G_COEF_RAMP]
    for k in range(L.N_GLOB_PARAMS):
        glob[k] = mail_glob[k]
    ni = ins.shape[1]
    no = outs.shape[1]
    take_params(ins, mail_ins, L.IS_GAIN, L.IS_GAIN_STEP, L.IP_GAIN, gain_ramp)
    take_params(outs, mail_outs, L.OS_GAIN, L.OS_GAIN_STEP, L.OP_GAIN, gain_ramp)
    glob[L.G_GAIN_LEFT] = gain_ramp
    if first:
        # Nothing to crossfade from either: delays start where they are set.
        for c in range(ni):
            ins[L.IS_D_OLD, c] = ins[L.IS_D_NEW, c] = ins[L.IP_DELAY, c]
            ins[L.IS_D_XF, c] = 1.0
        for o in range(no):
            outs[L.OS_D_OLD, o] = outs[L.OS_D_NEW, o] = outs[L.OP_DELAY, o]
            outs[L.OS_D_XF, o] = 1.0
    _retarget_gains(mix, mail_mix, gain_ramp)
    _retarget_gains(state[L.A_MTX], state[L.A_MAIL_MTX][slot], gain_ramp)
    glob[L.G_MIX_LEFT] = gain_ramp
    _retarget_bank(
        state[L.A_BQ_IN], state[L.A_BQ_IN_RAMP], state[L.A_MAIL_BQ_IN][slot], coef_ramp
    )
    _retarget_bank(
        state[L.A_BQ_OUT],
        state[L.A_BQ_OUT_RAMP],
        state[L.A_MAIL_BQ_OUT][slot],
        coef_ramp,
    )
    _retarget_bank(
        state[L.A_BQ_MTX],
        state[L.A_BQ_MTX_RAMP],
        state[L.A_MAIL_BQ_MTX][slot],
        coef_ramp,
    )


@kernel
def take_published(hdr, state):
    """At a block boundary: a scene GO, then the mailbox (see ``layout``)."""
    go = load_acquire(hdr, L.H_GO)
    taken = hdr[L.H_GO_ACK]
    if go != taken:
        take_change_set(state, L.SLOT_GO, False)
        taken = go
        hdr[L.H_GO_BLOCK] = hdr[L.H_BLOCKS]
        store_release(hdr, L.H_GO_ACK, go)
    seq = load_acquire(hdr, L.H_SEQ)
    if seq != hdr[L.H_ACK]:
        after = hdr[L.H_MAIL_GO]
        if after == taken:
            take_change_set(state, L.SLOT_MAIL, hdr[L.H_ACK] == 0)
        if after <= taken:  # else its GO lands first, at the next boundary
            store_release(hdr, L.H_ACK, seq)


# ---------------------------------------------------------------------------
# Biquads: transposed direct form II, one stage at a time across channels.
# State per stage and channel: z[s, 0] and z[s, 1], the two TDF-II registers.
# ---------------------------------------------------------------------------


@kernel
def biquad_bank(buf, bq, z, ramp, s0, s1, n, nch):
    """Run stages s0..s1-1 of a bank over ``buf[:n, :nch]`` in place."""
    for s in range(s0, s1):
        cur = bq[L.C_CUR, s]
        z1 = z[s, 0]
        z2 = z[s, 1]
        start = 0
        if ramp[s] > 0:
            step = bq[L.C_STEP, s]
            k = min(n, int(ramp[s]))
            for t in range(k):
                for c in range(nch):
                    cur[0, c] += step[0, c]
                    cur[1, c] += step[1, c]
                    cur[2, c] += step[2, c]
                    cur[3, c] += step[3, c]
                    cur[4, c] += step[4, c]
                    x = buf[t, c]
                    y = cur[0, c] * x + z1[c]
                    z1[c] = cur[1, c] * x - cur[3, c] * y + z2[c]
                    z2[c] = cur[2, c] * x - cur[4, c] * y
                    buf[t, c] = y
            ramp[s] -= k
            if ramp[s] <= 0:
                ramp[s] = 0
                copy_into(cur, bq[L.C_TGT, s])
            start = k
        b0 = cur[0]
        b1 = cur[1]
        b2 = cur[2]
        a1 = cur[3]
        a2 = cur[4]
        for t in range(start, n):
            for c in range(nch):
                x = buf[t, c]
                y = b0[c] * x + z1[c]
                z1[c] = b1[c] * x - a1[c] * y + z2[c]
                z2[c] = b2[c] * x - a2[c] * y
                buf[t, c] = y


# ---------------------------------------------------------------------------
# Gains and delays.
# ---------------------------------------------------------------------------


@kernel
def copy_into(dst, src):
    """Element-wise copy of two same-shape 2-D arrays (never allocates)."""
    for i in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            dst[i, j] = src[i, j]


@kernel
def ramped_gain(buf, cur, step, target, left, n, c0, c1):
    """Multiply channels ``c0..c1-1`` by a gain moving linearly to ``target``.

    ``left`` is how many samples of the ramp remain; returns the new count.
    """
    k = min(n, int(left))
    for t in range(k):
        for c in range(c0, c1):
            cur[c] += step[c]
            buf[t, c] *= cur[c]
    if left > 0 and k == int(left):
        for c in range(c0, c1):
            cur[c] = target[c]
    for t in range(k, n):
        for c in range(c0, c1):
            buf[t, c] *= cur[c]
    return left - k


@kernel
def delay_bank(buf, ring, fields, f_target, f_old, f_new, f_xf, w0, xf_step, n, nch):
    """Per-channel delay lines; a delay change crossfades old tap to new."""
    mask = ring.shape[0] - 1
    fading = False
    for c in range(nch):
        if fields[f_target, c] != fields[f_new, c]:
            fields[f_old, c] = fields[f_new, c]
            fields[f_new, c] = fields[f_target, c]
            fields[f_xf, c] = 0.0
        fading |= fields[f_xf, c] < 1.0
    for t in range(n):
        w = (w0 + t) & mask
        for c in range(nch):
            ring[w, c] = buf[t, c]
        for c in range(nch):
            new = ring[(w - int(fields[f_new, c])) & mask, c]
            if fading:
                # Per sample, the same result whatever the block size: a
                # finished fade takes the new tap exactly.
                xf = fields[f_xf, c]
                old = ring[(w - int(fields[f_old, c])) & mask, c]
                new = new if xf >= 1.0 else old + (new - old) * xf
                fields[f_xf, c] = min(1.0, xf + xf_step)
            buf[t, c] = new


# ---------------------------------------------------------------------------
# Dynamics.
# ---------------------------------------------------------------------------


TWO52 = 4503599627370496.0  # 2**52: adding it puts a small integer in the mantissa


@kernel
def fast_log2(x):
    """log2 of a positive float, |error| < 2e-6, branch-free (vectorises).

    Integer <-> float conversions go through the 2**52 trick because AVX2
    has no vector int64 conversion.
    """
    bits = f64_bits(x)
    e = bits_f64(((bits >> 52) & 0x7FF) | 0x4330000000000000) - (TWO52 + 1023.0)
    m = bits_f64((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    u = (m - 1.0) / (m + 1.0)
    u2 = u * u
    series = u * (
        2.0 + u2 * (2.0 / 3.0 + u2 * (0.4 + u2 * (2.0 / 7.0 + u2 * (2.0 / 9.0))))
    )
    return e + series * 1.4426950408889634


@kernel
def fast_exp2(y):
    """2**y for |y| < 1000, relative error < 1e-9, exact at whole numbers
    (so a gain of 0 dB is exactly 1), branch-free."""
    y = min(max(y, -1000.0), 1000.0)
    i = math.floor(y)
    z = (y - i) * 0.6931471805599453  # in [0, ln 2)
    p = 1.0 + z * (1.0 + z * (1.0 / 2 + z * (1.0 / 6 + z * (1.0 / 24 + z * (
        1.0 / 120 + z * (1.0 / 720 + z * (1.0 / 5040 + z * (1.0 / 40320 + z * (
            1.0 / 362880 + z * (1.0 / 3628800))))))))))  # fmt: skip
    biased = f64_bits(i + (TWO52 + 1023.0)) & 0x7FF
    return p * bits_f64(biased << 52)


DB_PER_LOG2 = 6.020599913279624  # 20*log10(2)


@kernel
def compressor_curve(level_db, thr, ratio, knee):
    """Static gain (dB, <= 0) of a soft-knee compressor (Giannoulis et al.)."""
    over = level_db - thr
    d = over + knee / 2.0
    soft = (1.0 / ratio - 1.0) * d * d / (2.0 * knee + 1e-12)
    hard = over * (1.0 / ratio - 1.0)
    g = soft if 2.0 * abs(over) < knee else hard
    return 0.0 if 2.0 * over <= -knee else g


@kernel
def gate_bank(buf, ins, det_fall, n, nch):
    """Gate: open above threshold, down by ``range`` below it, with hold.

    The key detector is a peak follower with a fast fixed fall
    (``det_fall``, per sample), so the gate closes as soon as the source
    stops. The gain moves linearly in dB (a constant factor per sample):
    attack is the time to open fully, release the time to close fully, as
    on a hardware gate. Off means a gain of exactly 1.
    """
    p = ins[L.IP_GATE : L.IP_GATE + L.N_GATE_PARAMS]
    st = ins[L.IS_GATE : L.IS_GATE + L.N_GATE_STATE]
    on, thr, floor, up = L.GATE_ON, L.GATE_THR, L.GATE_RANGE, L.GATE_ATT
    hold_len, down = L.GATE_HOLD, L.GATE_REL
    env, g, hold, gmin = L.GATE_ENV, L.GATE_GAIN, L.GATE_HOLD_LEFT, L.GATE_GR
    for t in range(n):
        for c in range(nch):
            x = buf[t, c]
            a = abs(x)
            e = a if a > st[env, c] else st[env, c] + (a - st[env, c]) * det_fall
            st[env, c] = e
            is_open = e >= p[thr, c]
            target = 1.0 if (is_open or st[hold, c] > 0.0) else p[floor, c]
            st[hold, c] = p[hold_len, c] if is_open else max(st[hold, c] - 1.0, 0.0)
            gc = st[g, c]
            gc = (
                min(gc * p[up, c], target)
                if target > gc
                else max(gc * p[down, c], target)
            )
            gc = gc * p[on, c] + (1.0 - p[on, c])
            st[g, c] = gc
            st[gmin, c] = min(st[gmin, c], gc)
            buf[t, c] = x * gc


@kernel
def compressor_bank(buf, ins, gr, n, nch):
    """Feed-forward peak compressor, gain smoothed in the dB domain.

    Three passes, each vectorised across channels: level -> static curve,
    attack/release smoothing (a recursion in time, independent per
    channel), dB -> gain. ``gr`` is scratch.
    """
    p = ins[L.IP_COMP : L.IP_COMP + L.N_COMP_PARAMS]
    st = ins[L.IS_COMP : L.IS_COMP + L.N_COMP_STATE]
    on, thr, ratio, knee = L.COMP_ON, L.COMP_THR, L.COMP_RATIO, L.COMP_KNEE
    att, rel, makeup = L.COMP_ATT, L.COMP_REL, L.COMP_MAKEUP
    for t in range(n):
        for c in range(nch):
            level = DB_PER_LOG2 * fast_log2(abs(buf[t, c]) + 1e-30)
            gr[t, c] = compressor_curve(level, p[thr, c], p[ratio, c], p[knee, c])
    for t in range(n):
        for c in range(nch):
            gc = gr[t, c]
            sm = st[L.COMP_GAIN, c]
            sm = (sm + (gc - sm) * (p[att, c] if gc < sm else p[rel, c])) * p[on, c]
            st[L.COMP_GAIN, c] = sm
            st[L.COMP_GR, c] = min(st[L.COMP_GR, c], sm)
            gr[t, c] = (sm + p[makeup, c]) * (p[on, c] / DB_PER_LOG2)
    for t in range(n):
        for c in range(nch):
            buf[t, c] *= fast_exp2(gr[t, c])


@kernel
def limiter_bank(buf, outs, la_x, la_g, la_h, la_s, tp_fir, glob, n, nch):
    """Lookahead brickwall limiter with optional 4x true-peak detection.

    The signal is delayed by the lookahead. The detector runs ``TP_DELAY``
    samples behind the newest input so the interpolator has the samples it
    needs; the required gain of each detected sample enters a sliding
    minimum over the remaining window W (van Herk / Gil-Werman: prefix
    minima of the running block, suffix minima of the previous one), then a
    box filter of length W, then a one-pole release. Every box-filter input
    is no larger than the required gain of the sample leaving the delay, so
    the output never exceeds the ceiling and the gain curve has no steps.

    State: la_x signal ring; la_g required gains; la_h window minima (box
    filter history); la_s suffix minima of the previous W-block; per output
    OS_PREFIX (running prefix minimum), OS_TP_PREV (inter-sample peak just
    before the detected sample), OS_BOX (box sum), OS_LIM_G (gain).
    """
    mask = la_x.shape[0] - 1
    d = L.TP_DELAY
    w0 = int(glob[L.G_LA_W])
    for o in range(nch):
        # The ceiling the detector works to (full scale when off). Samples
        # already in the delay line were detected against the old one: the
        # safety clip keeps the higher of the two until they are out.
        ceil = outs[L.OP_LIM_CEIL, o] if outs[L.OP_LIM_ON, o] != 0.0 else 1.0
        if ceil != outs[L.OS_CEIL, o]:
            outs[L.OS_CLIP, o] = max(outs[L.OS_CLIP, o], outs[L.OS_CEIL, o], ceil)
            outs[L.OS_CLIP_HOLD, o] = outs[L.OS_LA, o] + 1
            outs[L.OS_CEIL, o] = ceil
    for t in range(n):
        w = (w0 + t) & mask
        ci = (w - d) & mask  # the sample being detected
        for o in range(nch):
            la_x[w, o] = buf[t, o]
        for o in range(nch):
            peak = abs(la_x[ci, o])
            if outs[L.OP_LIM_TP, o] != 0.0:
                # Inter-sample peak between ci and ci+1; the one between
                # ci-1 and ci was found one sample ago.
                base = ci - d + 1
                between = 0.0
                for p in range(3):
                    acc = 0.0
                    for k in range(L.TP_TAPS):
                        acc += tp_fir[p, k] * la_x[(base + k) & mask, o]
                    between = max(between, abs(acc))
                peak = max(peak, between, outs[L.OS_TP_PREV, o])
                outs[L.OS_TP_PREV, o] = between
            # A hair under the ceiling, so rounding in the gain path can
            # never carry a sample over it.
            target = outs[L.OS_CEIL, o] * (1.0 - 1e-9)
            la_g[ci, o] = target / peak if peak > target else 1.0
        for o in range(nch):
            link = int(outs[L.OP_LIM_LINK, o])
            if link >= 0:
                la_g[ci, o] = min(la_g[ci, o], la_g[ci, link])
        for o in range(nch):
            # Each output has its own lookahead: its own window W and its
            # own position in the current W-block.
            lookahead = int(outs[L.OS_LA, o])
            win = lookahead - d + 1
            pos = int(outs[L.OS_LIM_POS, o])
            g = la_g[ci, o]
            prefix = g if pos == 0 else min(outs[L.OS_PREFIX, o], g)
            outs[L.OS_PREFIX, o] = prefix
            h = prefix if pos == win - 1 else min(prefix, la_s[pos + 1, o])
            old = la_h[(ci - win) & mask, o]
            la_h[ci, o] = h
            box = outs[L.OS_BOX, o] + h - old
            outs[L.OS_BOX, o] = box
            avg = box / win
            gl = outs[L.OS_LIM_G, o]
            gl = avg if avg < gl else gl + (avg - gl) * outs[L.OP_LIM_REL, o]
            outs[L.OS_LIM_G, o] = gl
            outs[L.OM_LIM_GR, o] = min(outs[L.OM_LIM_GR, o], gl)
            buf[t, o] = la_x[(w - lookahead) & mask, o] * gl
            if pos == win - 1:
                # Block of W required gains complete: its suffix minima
                # serve the windows of the next W samples. The box sum is
                # recomputed too, so rounding never accumulates.
                m = 1.0
                box = 0.0
                for j in range(win - 1, -1, -1):
                    row = (ci - (win - 1 - j)) & mask
                    m = min(m, la_g[row, o])
                    la_s[j, o] = m
                    box += la_h[row, o]
                outs[L.OS_BOX, o] = box
                pos = 0
            else:
                pos += 1
            outs[L.OS_LIM_POS, o] = pos
    glob[L.G_LA_W] = (w0 + n) & mask


# ---------------------------------------------------------------------------
# Sources, mixing, meters.
# ---------------------------------------------------------------------------


# Scales Kellet's pink filter so the noise has the RMS of a sine of the same
# level (AES17: a full-scale sine is 0 dBFS), measured over 20 s.
PINK_GAIN = 0.4022


@kernel
def oscillator(buf, col, glob, hdr, n):
    """Sine or pink noise (Kellet's filter) into ``buf[:, col]``.

    Both at the level's RMS in the AES17 sense: a sine peaks at the level,
    pink noise has the same RMS as that sine.
    """
    kind = glob[L.G_OSC_TYPE]
    if kind == 1.0:
        inc = glob[L.G_OSC_FREQ] / glob[L.G_SR]
        ph = glob[L.G_OSC_PHASE]
        for t in range(n):
            buf[t, col] = math.sin(2.0 * math.pi * ph)
            ph += inc
            ph -= math.floor(ph)
        glob[L.G_OSC_PHASE] = ph
    elif kind == 2.0:
        s = hdr[L.H_RNG]
        p = L.G_PINK
        for t in range(n):
            s ^= s << 13
            s ^= (s >> 7) & 0x01FFFFFFFFFFFFFF
            s ^= s << 17
            white = ((s >> 11) & 0xFFFFFFFFFFFFF) * (2.0 / 4503599627370496.0) - 1.0
            glob[p] = 0.99886 * glob[p] + white * 0.0555179
            glob[p + 1] = 0.99332 * glob[p + 1] + white * 0.0750759
            glob[p + 2] = 0.96900 * glob[p + 2] + white * 0.1538520
            glob[p + 3] = 0.86650 * glob[p + 3] + white * 0.3104856
            glob[p + 4] = 0.55000 * glob[p + 4] + white * 0.5329522
            glob[p + 5] = -0.7616 * glob[p + 5] - white * 0.0168980
            acc = glob[p] + glob[p + 1] + glob[p + 2] + glob[p + 3] + glob[p + 4]
            buf[t, col] = (acc + glob[p + 5] + glob[p + 6] + white * 0.5362) * PINK_GAIN
            glob[p + 6] = white * 0.115926
        hdr[L.H_RNG] = s
    else:
        for t in range(n):
            buf[t, col] = 0.0


@kernel
def mix_matrix(src, dst, mix, left, n, nrows, ncols):
    """``dst[t, :] = src[t, :] @ gains``, gains ramping to their targets;
    ``left``: samples of the ramp still to go; returns the new count.

    Rows are taken four at a time: a quarter of the passes over ``dst``.
    """
    cur = mix[L.C_CUR]
    step = mix[L.C_STEP]
    left = int(left)
    quads = nrows - nrows % 4
    for t in range(n):
        if left > 0:
            left -= 1
            if left == 0:
                copy_into(cur, mix[L.C_TGT])
            else:
                for r in range(nrows):
                    for c in range(ncols):
                        cur[r, c] += step[r, c]
        for c in range(ncols):
            dst[t, c] = 0.0
        for r in range(0, quads, 4):
            x0, x1, x2, x3 = src[t, r], src[t, r + 1], src[t, r + 2], src[t, r + 3]
            for c in range(ncols):
                dst[t, c] += (x0 * cur[r, c] + x1 * cur[r + 1, c]
                              + x2 * cur[r + 2, c] + x3 * cur[r + 3, c])  # fmt: skip
        for r in range(quads, nrows):
            x = src[t, r]
            for c in range(ncols):
                dst[t, c] += x * cur[r, c]
    return left


@kernel
def meter_bank(buf, fields, f_peak, f_ms, f_rms, ms_coef, n, nch):
    """Peak since the last reset and a 300 ms RMS, per channel."""
    peak = fields[f_peak]
    ms = fields[f_ms]
    for t in range(n):
        for c in range(nch):
            x = buf[t, c]
            ms[c] += (x * x - ms[c]) * ms_coef
            peak[c] = max(peak[c], abs(x))
    for c in range(nch):
        fields[f_rms, c] = max(fields[f_rms, c], math.sqrt(ms[c]))


@kernel
def reset_meters(ins, outs):
    """Start new peak/GR accumulation periods (the reader asked)."""
    for c in range(ins.shape[1]):
        ins[L.IM_PEAK, c] = 0.0
        ins[L.IM_RMS, c] = 0.0
        ins[L.IM_GATE_GR, c] = 1.0
        ins[L.IM_COMP_GR, c] = 0.0
    for o in range(outs.shape[1]):
        outs[L.OM_PEAK, o] = 0.0
        outs[L.OM_RMS, o] = 0.0
        outs[L.OM_LIM_GR, o] = 1.0


@kernel
def reset_dsp_state(state):
    """Clear every filter, delay and dynamics state (parameters are kept)."""
    ins, outs = state[L.A_INS], state[L.A_OUTS]
    state[L.A_BQ_IN_Z][:] = 0.0
    state[L.A_BQ_OUT_Z][:] = 0.0
    state[L.A_BQ_MTX_Z][:] = 0.0
    state[L.A_DLY_IN][:] = 0.0
    state[L.A_DLY_OUT][:] = 0.0
    state[L.A_LA_X][:] = 0.0
    state[L.A_LA_G][:] = 1.0
    state[L.A_LA_H][:] = 1.0
    state[L.A_LA_S][:] = 1.0
    for o in range(outs.shape[1]):
        outs[L.OS_LIM_POS, o] = 0.0
        outs[L.OS_BOX, o] = outs[L.OS_LA, o] - L.TP_DELAY + 1.0
        outs[L.OS_LIM_G, o] = 1.0
        outs[L.OS_TP_PREV, o] = 0.0
        outs[L.OS_CLIP, o] = outs[L.OS_CEIL, o]
        outs[L.OS_CLIP_HOLD, o] = 0.0
    for c in range(ins.shape[1]):
        ins[L.IS_GATE_ENV, c] = 0.0
        ins[L.IS_GATE_G, c] = 1.0
        ins[L.IS_COMP_G, c] = 0.0
        ins[L.IS_MS, c] = 0.0


# ---------------------------------------------------------------------------
# Adaptive feedback cancellers (``livesound.audio.afc``), one per path.
# ---------------------------------------------------------------------------


@kernel
def afc_path(arrays, p):
    """Path ``p``'s canceller: views of ``afc_from_header``'s stacked arrays."""
    (_, _, _, w, x, xw, power, u_last, uw_last, zu, ze, a, frame, window, wframe,
     r, lev, tw, rev, split, z, spec, t, work, params, counters, dline, guard) = arrays  # fmt: skip
    return afc.AfcState(
        w[p], x[p], xw[p], power[p], u_last[p], uw_last[p], zu[p], ze[p], a[p],
        frame[p], window[p], wframe[p], r[p], lev[p], tw[p], rev[p], split[p], z[p],
        spec[p], t[p], work[p], params[p], counters[p], dline[p], guard[p],
    )  # fmt: skip


@kernel
def afc_cancel(hdr, outs, work_in, n):
    """Every path's estimated feedback off its mic channel (routed, before
    the channel strip), then each canceller adapts on its corrected mic, as
    ``livesound.virtual.sim.AfcLoop`` does. A path that is off passes its
    mic untouched; one whose output is muted (gain 0) is frozen: it still
    cancels what is in flight but learns nothing from a loop that is open.
    A path learning from a test signal (``AC_LEARN``) adapts with the
    learning step (``afc.step``).
    The filter works on whole partitions: a chunk of any other length (a
    device block that is not a multiple of it) cannot be aligned with what
    was played, so every path starts over and the chunk passes uncorrected.
    Last, each mic with a path on goes on through its decorrelation delay
    (the line of its first path; ``afc.afc_delay``).
    """
    if hdr[L.H_AFC_PATHS] == 0:
        return
    arrays = afc_from_header(hdr)
    paths, ctl, meter = arrays[0], arrays[1], arrays[2]
    for p in range(paths.shape[0]):
        st = afc_path(arrays, p)
        req = load_acquire(ctl[p], L.AC_RESET_REQ)
        if req != ctl[p, L.AC_RESET_ACK] or n != st.work.size:
            afc.reset(st)
            ctl[p, L.AC_RESET_ACK] = req
        on = load_acquire(ctl[p], L.AC_ON) != 0
        st.counters[afc.I_LEARN] = load_acquire(ctl[p], L.AC_LEARN) if on else 0
    for p in range(paths.shape[0]):
        st = afc_path(arrays, p)
        if load_acquire(ctl[p], L.AC_ON) == 0 or n != st.work.size:
            continue
        heard = afc.afc_cancel(st, work_in[:n, paths[p, L.AFC_MIC]])
        meter[p, L.AM_MIC] += (heard - meter[p, L.AM_MIC]) * meter[p, L.AM_COEF]
    for p in range(paths.shape[0]):
        st = afc_path(arrays, p)
        if load_acquire(ctl[p], L.AC_ON) == 0 or n != st.work.size:
            meter[p, L.AM_FROZEN] = 1.0
            continue
        mic = paths[p, L.AFC_MIC]
        left = 0.0
        for t in range(n):
            left += work_in[t, mic] * work_in[t, mic]
        meter[p, L.AM_ERR] += (left / n - meter[p, L.AM_ERR]) * meter[p, L.AM_COEF]
        frozen = outs[L.OP_GAIN, paths[p, L.AFC_OUT]] == 0.0
        meter[p, L.AM_FROZEN] = 1.0 if frozen else 0.0
        if not frozen:
            afc.afc_adapt(st, work_in[:n, mic])
    for p in range(paths.shape[0]):
        mic = paths[p, L.AFC_MIC]
        first, on = True, False
        for q in range(paths.shape[0]):
            if paths[q, L.AFC_MIC] == mic:
                first = first and q >= p
                on = on or load_acquire(ctl[q], L.AC_ON) != 0
        if first:
            afc.afc_delay(afc_path(arrays, p), work_in[:n, mic], on)


@kernel
def afc_learn_signals(hdr, outs, work_out, n):
    """Each output with its paths learning gets the test signal (``afc.
    learn_signal``, that of its first path: they learn together, as
    ``AfcPaths.learn`` switches them), before its limiter: the output's
    ceiling holds it like any other sound. A muted output (gain 0) stays
    silent: its paths are frozen, nothing learns."""
    if hdr[L.H_AFC_PATHS] == 0:
        return
    arrays = afc_from_header(hdr)
    paths = arrays[0]
    for p in range(paths.shape[0]):
        out = paths[p, L.AFC_OUT]
        if outs[L.OP_GAIN, out] == 0.0:
            continue
        st = afc_path(arrays, p)
        if st.counters[afc.I_LEARN] == 0 or n != st.work.size:
            continue
        first = True
        for q in range(p):
            first = first and paths[q, L.AFC_OUT] != out
        if first:
            afc.learn_signal(st, work_out[:n, out])


@kernel
def afc_played(hdr, work_out, n):
    """Every path's canceller takes the block its output just played (after
    the limiter, the delay and the safety clip)."""
    if hdr[L.H_AFC_PATHS] == 0:
        return
    arrays = afc_from_header(hdr)
    paths = arrays[0]
    for p in range(paths.shape[0]):
        st = afc_path(arrays, p)
        if n == st.work.size:
            afc.afc_push(st, work_out[:n, paths[p, L.AFC_OUT]])


# ---------------------------------------------------------------------------
# One block.
# ---------------------------------------------------------------------------


@kernel
def process_chunk(state, hdr, inp, out, off, n):
    """Process frames ``off .. off+n`` (n <= max block) of interleaved I/O."""
    glob = state[L.A_GLOB]
    ins = state[L.A_INS]
    outs = state[L.A_OUTS]
    bq_in = state[L.A_BQ_IN]
    bq_in_z = state[L.A_BQ_IN_Z]
    bq_in_ramp = state[L.A_BQ_IN_RAMP]
    bq_out = state[L.A_BQ_OUT]
    bq_out_z = state[L.A_BQ_OUT_Z]
    bq_out_ramp = state[L.A_BQ_OUT_RAMP]
    mix = state[L.A_MIX]
    dly_in = state[L.A_DLY_IN]
    dly_out = state[L.A_DLY_OUT]
    la_x = state[L.A_LA_X]
    la_g = state[L.A_LA_G]
    la_h = state[L.A_LA_H]
    la_s = state[L.A_LA_S]
    work_in = state[L.A_WORK_IN]
    work_out = state[L.A_WORK_OUT]
    work_gr = state[L.A_WORK_GR]
    work_mtx = state[L.A_WORK_MTX]
    in_map = state[L.A_IN_MAP]
    out_map = state[L.A_OUT_MAP]
    tp_fir = state[L.A_TP_FIR]
    ni = ins.shape[1]
    no = outs.shape[1]
    nm = mix.shape[2]  # the first stage's outputs; the matrices follow
    # Inputs: route physical channels, refuse NaN/Inf/absurd values, count
    # samples at full scale (row by row: both buffers are frame-major).
    clips = ins[L.IM_CLIP]
    for t in range(n):
        for c in range(ni):
            work_in[t, c] = 0.0
        for p in range(inp.shape[1]):
            c = in_map[p]
            if c >= 0:
                x = np.float64(inp[off + t, p])
                x = x if abs(x) < SANE else 0.0
                clips[c] += 1.0 if abs(x) >= 1.0 else 0.0
                work_in[t, c] = x
    afc_cancel(hdr, outs, work_in, n)
    left = glob[L.G_GAIN_LEFT]
    ramp_in = ramped_gain(work_in, ins[L.IS_GAIN], ins[L.IS_GAIN_STEP], ins[L.IP_GAIN],
                          left, n, 0, ni)  # fmt: skip
    meter_bank(work_in, ins, L.IM_PEAK, L.IS_MS, L.IM_RMS, glob[L.G_MS_COEF], n, ni)
    w_dly = int(glob[L.G_DLY_W])
    xf_step = 1.0 / glob[L.G_GAIN_RAMP]
    delay_bank(work_in, dly_in, ins, L.IP_DELAY, L.IS_D_OLD, L.IS_D_NEW, L.IS_D_XF,
               w_dly, xf_step, n, ni)  # fmt: skip
    biquad_bank(work_in, bq_in, bq_in_z, bq_in_ramp, 0, L.N_HPF, n, ni)
    gate_bank(work_in, ins, glob[L.G_GATE_FALL], n, ni)
    compressor_bank(work_in, ins, work_gr, n, ni)
    biquad_bank(work_in, bq_in, bq_in_z, bq_in_ramp, L.N_HPF, L.S_IN, n, ni)
    oscillator(work_in, ni, glob, hdr, n)
    mix_left = glob[L.G_MIX_LEFT]
    glob[L.G_MIX_LEFT] = mix_matrix(work_in, work_out, mix, mix_left, n, ni + 1, nm)
    # First stage (buses, main, cue, mono): EQ + notches, master gain.
    biquad_bank(work_out, bq_out, bq_out_z, bq_out_ramp, 0, L.S_OUT, n,
                bq_out.shape[3])  # fmt: skip
    out_gain, out_step = outs[L.OS_GAIN], outs[L.OS_GAIN_STEP]
    out_target = outs[L.OP_GAIN]
    ramped_gain(work_out, out_gain, out_step, out_target, left, n, 0, nm)
    if glob[L.G_CUE_MAIN] != 0.0:
        # Nothing soloed: the cue (headphone) bus carries the main mix as
        # the engineer hears it, after its EQ, notches and fader.
        ml = nm - L.N_OUTPUT_EXTRA
        for t in range(n):
            work_out[t, ml + 2] = work_out[t, ml]
            work_out[t, ml + 3] = work_out[t, ml + 1]
    # Second stage, the matrices: their sends from the first stage's
    # outputs after EQ and fader (before limiter and delay: every output
    # keeps one latency), then EQ + notches in a bank of their own and
    # their master gain. Limiter, delay and meters run for all outputs.
    mix_matrix(work_out, work_mtx, state[L.A_MTX], mix_left, n, nm, L.MTX_LANES)
    biquad_bank(work_mtx, state[L.A_BQ_MTX], state[L.A_BQ_MTX_Z],
                state[L.A_BQ_MTX_RAMP], 0, L.S_OUT, n, L.MTX_LANES)  # fmt: skip
    for t in range(n):
        for m in range(L.N_MTX):
            work_out[t, nm + m] = work_mtx[t, m]
    ramped_gain(work_out, out_gain, out_step, out_target, left, n, nm, no)

    glob[L.G_GAIN_LEFT] = ramp_in
    afc_learn_signals(hdr, outs, work_out, n)
    limiter_bank(work_out, outs, la_x, la_g, la_h, la_s, tp_fir, glob, n, no)
    delay_bank(work_out, dly_out, outs, L.OP_DELAY, L.OS_D_OLD, L.OS_D_NEW, L.OS_D_XF,
               w_dly, xf_step, n, no)  # fmt: skip
    glob[L.G_DLY_W] = (w_dly + n) & (dly_in.shape[0] - 1)
    meter_bank(work_out, outs, L.OM_PEAK, L.OS_MS, L.OM_RMS, glob[L.G_MS_COEF], n, no)
    # Safety clip on every output, counting what it had to touch, at the
    # highest ceiling still in the delay line for ``OS_CLIP_HOLD`` samples
    # after a ceiling change; then the output taps for analysis (feedback
    # detection, tests), the newest TAP_RING frames of every output found
    # through H_TAP_W; then the device's channels.
    fault = False
    taps = state[L.A_TAPS]
    tw = hdr[L.H_TAP_W]
    clip = outs[L.OS_CLIP]
    hold = outs[L.OS_CLIP_HOLD]
    ceil = outs[L.OS_CEIL]
    for t in range(n):
        row = (tw + t) & (L.TAP_RING - 1)
        for o in range(no):
            limit = clip[o] if t < hold[o] else ceil[o]
            y = work_out[t, o]
            if not abs(y) <= limit:
                fault |= y != y
                y = 0.0 if y != y else (limit if y > 0.0 else -limit)
                outs[L.OM_CLIPS, o] += 1.0
                work_out[t, o] = y
            taps[row, o] = np.float32(y)
        for p in range(out.shape[1]):
            o = out_map[p]
            out[off + t, p] = np.float32(work_out[t, o]) if o >= 0 else np.float32(0.0)
    for o in range(no):
        hold[o] = max(0.0, hold[o] - n)
        if hold[o] == 0.0:
            clip[o] = ceil[o]
    store_release(hdr, L.H_TAP_W, tw + n)
    afc_played(hdr, work_out, n)
    return fault


@kernel
def process_block(state, hdr, inp, out):
    """Process one block of interleaved float32 I/O (any number of frames)."""
    ins, outs = state[L.A_INS], state[L.A_OUTS]
    work_in = state[L.A_WORK_IN]
    take_published(hdr, state)
    req = load_acquire(hdr, L.H_METER_REQ)
    if req != hdr[L.H_METER_ACK]:
        reset_meters(ins, outs)
        store_release(hdr, L.H_METER_ACK, req)
    frames = out.shape[0]
    # With cancellers, chunks of their partition (see ``afc_cancel``).
    chunk = hdr[L.H_AFC_BLOCK] if hdr[L.H_AFC_PATHS] else work_in.shape[0]
    fault = False
    off = 0
    while off < frames:
        n = min(chunk, frames - off)
        fault |= process_chunk(state, hdr, inp, out, off, n)
        off += n
    if fault:
        reset_dsp_state(state)
        hdr[L.H_FAULTS] += 1
    hdr[L.H_FRAMES] += frames
    hdr[L.H_CLOCK] += frames
    store_release(hdr, L.H_BLOCKS, hdr[L.H_BLOCKS] + 1)


array_shapes = kernel(L.array_shapes)


@kernel
def state_from_header(hdr):
    """Rebuild the tuple of arrays (``EngineMemory.state``) from the header:
    the addresses it holds, the shapes ``layout.array_shapes`` gives, the
    element types of ``layout.ARRAY_DTYPES``; the cancellers' arrays are
    ``afc_from_header``'s."""
    s = array_shapes(hdr)

    def f64(k):
        return carray(f64_pointer(hdr[L.H_ADDR + k]), s[k])

    def i64(k):
        return carray(i64_pointer(hdr[L.H_ADDR + k]), s[k])

    def f32(k):
        return carray(f32_pointer(hdr[L.H_ADDR + k]), s[k])

    return (
        f64(L.A_GLOB), f64(L.A_INS), f64(L.A_OUTS), f64(L.A_BQ_IN), f64(L.A_BQ_IN_Z),
        f64(L.A_BQ_IN_RAMP), f64(L.A_BQ_OUT), f64(L.A_BQ_OUT_Z), f64(L.A_BQ_OUT_RAMP),
        f64(L.A_MIX), f64(L.A_DLY_IN), f64(L.A_DLY_OUT), f64(L.A_LA_X), f64(L.A_LA_G),
        f64(L.A_LA_H), f64(L.A_LA_S), f64(L.A_WORK_IN), f64(L.A_WORK_OUT),
        f64(L.A_WORK_GR), i64(L.A_IN_MAP), i64(L.A_OUT_MAP), f64(L.A_TP_FIR),
        i64(L.A_HIST), f64(L.A_MAIL_GLOB), f64(L.A_MAIL_INS), f64(L.A_MAIL_OUTS),
        f64(L.A_MAIL_BQ_IN), f64(L.A_MAIL_BQ_OUT), f64(L.A_MAIL_MIX), f32(L.A_TAPS),
        f64(L.A_MTX), f64(L.A_BQ_MTX), f64(L.A_BQ_MTX_Z), f64(L.A_BQ_MTX_RAMP),
        f64(L.A_WORK_MTX), f64(L.A_MAIL_MTX), f64(L.A_MAIL_BQ_MTX),
    )  # fmt: skip


@kernel
def afc_from_header(hdr):
    """The cancellers' arrays (``layout.AFC_ARRAYS``) as ``state_from_header``
    finds the others. Apart, and only when there are paths: building them
    with the others cost the callback without paths about 2 us a block."""
    s = array_shapes(hdr)

    def f64(k):
        return carray(f64_pointer(hdr[L.H_ADDR + k]), s[k])

    def i64(k):
        return carray(i64_pointer(hdr[L.H_ADDR + k]), s[k])

    def c128(k):
        return carray(c128_pointer(hdr[L.H_ADDR + k]), s[k])

    return (
        i64(L.A_AFC_MAP), i64(L.A_AFC_CTL), f64(L.A_AFC_METER), c128(L.A_AFC_W),
        c128(L.A_AFC_X), c128(L.A_AFC_XW), f64(L.A_AFC_POWER), f64(L.A_AFC_U_LAST),
        f64(L.A_AFC_UW_LAST), f64(L.A_AFC_ZU), f64(L.A_AFC_ZE), f64(L.A_AFC_A),
        f64(L.A_AFC_FRAME), f64(L.A_AFC_WINDOW), f64(L.A_AFC_WFRAME), f64(L.A_AFC_R),
        f64(L.A_AFC_LEV), c128(L.A_AFC_TW), i64(L.A_AFC_REV), c128(L.A_AFC_SPLIT),
        c128(L.A_AFC_Z), c128(L.A_AFC_SPEC), f64(L.A_AFC_T), f64(L.A_AFC_WORK),
        f64(L.A_AFC_PARAMS), i64(L.A_AFC_COUNTERS), f64(L.A_AFC_DLINE),
        f64(L.A_AFC_GUARD),
    )  # fmt: skip


CALLBACK_SIG = types.int32(
    types.voidptr, types.voidptr, types.uint64, types.voidptr, types.uint64,
    types.voidptr,
)  # fmt: skip


@kernel
def run_callback(hdr, inp, out, status):
    """One device callback on ``inp``/``out`` (float32 ``[frames, phys]``):
    the block, its timing and the xrun count. Every C entry point (the
    PortAudio callback, the native JACK client's) comes through here."""
    t0 = cycle_counter()
    fpu = flush_denormals()
    state = state_from_header(hdr)
    if status & XRUN_FLAGS:
        hdr[L.H_XRUNS] += 1
    if hdr[L.H_AUDIO_TID] == 0 and hdr[L.H_GETTID] != 0:
        # Once per stream: tell the control plane which thread is ours, so
        # it can give it real-time priority.
        store_release(hdr, L.H_AUDIO_TID, call_int_function(hdr[L.H_GETTID]))
    process_block(state, hdr, inp, out)
    restore_fpu(fpu)
    dt = cycle_counter() - t0
    hdr[L.H_CB_MIN] = min(hdr[L.H_CB_MIN], dt)
    hdr[L.H_CB_MAX] = max(hdr[L.H_CB_MAX], dt)
    hdr[L.H_CB_SUM] += dt
    us = dt // max(1, hdr[L.H_TSC_MHZ])
    state[L.A_HIST][min(us, L.HIST_US - 1)] += 1


@cfunc(CALLBACK_SIG, cache=True, nopython=True, error_model="numpy")
def audio_callback(inp_ptr, out_ptr, frames, time_info, status, user_data):
    """The PortAudio stream callback: ``user_data`` is the engine header."""
    hdr = carray(user_data, (L.N_HDR,), np.int64)
    inp = carray(inp_ptr, (frames, hdr[L.H_PHYS_IN]), np.float32)
    out = carray(out_ptr, (frames, hdr[L.H_PHYS_OUT]), np.float32)
    run_callback(hdr, inp, out, status)
    return 0

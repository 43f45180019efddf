"""The output does not depend on the block size, bit for bit.

A busy show (gate, compressor, EQ, 24 dB high-pass, delays, pre and post
sends, a stereo-linked bus pair, a bus limiter driven hard, true-peak on the
main, pink noise from the oscillator, and a scene change mid-signal that
starts every kind of ramp) is rendered with blocks of 1, 16, 64 and 1000
frames; the four renders must be identical.
"""

import numpy as np
import pytest
from dsp_helpers import make_engine, mono_input, sine

from livesound.audio import layout as L

FS = 48000
FRAMES = FS // 2
CHANGE_AT = 16000  # a boundary of every block size under test
BLOCKS = (1, 16, 64, 1000)

BUSY = {
    "/config/buslink/1-2": 1,
    # ch 1: vocal-like strip with everything on.
    "/ch/01/preamp/trim": 4.5,
    "/ch/01/preamp/hpon": 1,
    "/ch/01/preamp/hpf": 90.0,
    "/ch/01/preamp/hpslope": "24",
    "/ch/01/delay/on": 1,
    "/ch/01/delay/time": 3.3,
    "/ch/01/gate/on": 1,
    "/ch/01/gate/thr": -45.0,
    "/ch/01/gate/range": 40.0,
    "/ch/01/gate/hold": 20.0,
    "/ch/01/gate/release": 80.0,
    "/ch/01/dyn/on": 1,
    "/ch/01/dyn/thr": -24.0,
    "/ch/01/dyn/ratio": "4.0",
    "/ch/01/dyn/knee": 3.0,
    "/ch/01/dyn/attack": 5.0,
    "/ch/01/dyn/release": 80.0,
    "/ch/01/dyn/mgain": 4.0,
    "/ch/01/eq/1/g": 3.0,
    "/ch/01/eq/2/g": -4.0,
    "/ch/01/eq/3/g": 5.5,
    "/ch/01/eq/4/g": -2.0,
    "/ch/01/mix/fader": -2.0,
    "/ch/01/mix/pan": -30.0,
    "/ch/01/mix/01/type": "PRE",
    "/ch/01/mix/01/level": -3.0,
    "/ch/01/mix/01/pan": 40.0,
    "/ch/01/mix/03/level": 0.0,
    # ch 2: polarity, 12 dB high-pass, loud into bus 3.
    "/ch/02/preamp/invert": 1,
    "/ch/02/preamp/trim": -2.0,
    "/ch/02/preamp/hpon": 1,
    "/ch/02/preamp/hpf": 150.0,
    "/ch/02/mix/fader": 3.0,
    "/ch/02/mix/pan": 60.0,
    "/ch/02/mix/03/level": 6.0,
    "/ch/02/mix/01/level": -6.0,
    # ch 3: compressor only, to the main.
    "/ch/03/dyn/on": 1,
    "/ch/03/dyn/thr": -30.0,
    "/ch/03/dyn/ratio": "10",
    "/ch/03/dyn/attack": 0.0,
    "/ch/03/mix/fader": 0.0,
    # bus 3 driven into its limiter; bus 1 (and 2, linked) delayed and EQ'd.
    "/bus/03/mix/fader": 6.0,
    "/ls/bus/03/limiter/ceiling": -12.0,
    "/ls/bus/03/limiter/release": 30.0,
    "/bus/03/eq/3/g": 6.0,
    "/ls/bus/03/notch/01/on": 1,
    "/ls/bus/03/notch/01/f": 2000.0,
    "/ls/bus/03/notch/01/depth": -15.0,
    "/bus/01/eq/2/g": -5.0,
    "/ls/bus/01/delay/time": 2.0,
    # main: true-peak limiting.
    "/ls/main/st/limiter/truepeak": 1,
    "/ls/main/st/limiter/ceiling": -3.0,
    # pink noise to bus 4.
    "/ls/osc/on": 1,
    "/config/osc/type": "pink",
    "/config/osc/dest": "MixBus4",
    "/config/osc/level": -10.0,
    # the mono bus, and every matrix from a bus, the main or the mono bus:
    # EQ, notches, a true-peak limiter and a delay on some.
    "/ch/01/mix/mono": 1,
    "/ch/02/mix/mono": 1,
    "/ch/02/mix/mlevel": -4.0,
    "/main/m/eq/3/g": 5.0,
    "/bus/01/mix/01/level": -3.0,
    "/bus/01/mix/02/level": -3.0,  # the linked pair 1-2 into matrix 2
    "/bus/03/mix/03/level": -3.0,
    "/bus/04/mix/04/level": -3.0,
    "/main/st/mix/05/level": 0.0,
    "/main/m/mix/06/level": 2.0,
    "/mtx/01/eq/2/g": 6.0,
    "/ls/mtx/02/notch/01/on": 1,
    "/ls/mtx/02/notch/01/depth": -12.0,
    "/ls/mtx/03/limiter/truepeak": 1,
    "/ls/mtx/03/limiter/ceiling": -6.0,
    "/ls/mtx/05/delay/time": 3.0,
}

SCENE_CHANGE = {
    "/ch/01/mix/fader": -8.0,
    "/ch/01/eq/3/g": -6.0,
    "/ch/01/eq/3/f": 1800.0,
    "/ch/01/delay/time": 7.1,
    "/ch/01/preamp/trim": 0.5,
    "/ch/02/mix/on": 0,
    "/ch/03/mix/pan": -70.0,
    "/bus/01/mix/fader": -4.0,
    "/ls/bus/01/delay/time": 0.5,
    "/ls/bus/03/limiter/ceiling": -9.0,
    "/ls/bus/03/notch/01/f": 2600.0,
    "/main/st/eq/2/g": 4.0,
    "/config/osc/level": -20.0,
    "/bus/01/mix/02/level": -12.0,
    "/mtx/01/eq/2/g": -3.0,
    "/ls/mtx/05/delay/time": 1.0,
    "/main/st/mix/pan": 30.0,
}


def program(n: int, seed: int = 7) -> np.ndarray:
    """Noise bursts and sines on three inputs (the fourth stays silent)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 4))
    bursts = rng.standard_normal(n) * 0.4
    gate = (np.arange(n) // 2400) % 3 == 0  # 50 ms bursts, 100 ms gaps
    x[:, 0] = bursts * gate + sine(n, 220.0, FS, 0.003)
    x[:, 1] = sine(n, 1234.5, FS, 0.7) + 0.2 * sine(n, 77.0, FS)
    x[:, 2] = sine(n, 440.0, FS, 0.5) * (np.arange(n) > n // 3)
    return x


def render(block: int, x: np.ndarray, busy: dict, change: dict | None):
    e = make_engine(FS)
    e.mixer.set_many(busy)
    y = np.empty((len(x), e.dims.phys_out), np.float32)
    y[:CHANGE_AT] = e.render(x[:CHANGE_AT], block=block)
    if change:
        e.mixer.set_many(change)
    y[CHANGE_AT:] = e.render(x[CHANGE_AT:], block=block)
    return y, e


@pytest.fixture(scope="module")
def busy_renders():
    x = program(FRAMES)
    return {b: render(b, x, BUSY, SCENE_CHANGE) for b in BLOCKS}


def test_busy_show_is_really_busy(busy_renders):
    """The configuration does what it claims, or the invariance proves little."""
    y, e = busy_renders[64]
    outs = e.core.arrays["outs"]
    ins = e.core.arrays["ins"]
    assert outs[L.OM_LIM_GR, 2] < 0.5  # bus 3 limited by more than 6 dB
    assert ins[L.IM_COMP_GR, 0] < -3.0  # compressor working
    assert ins[L.IM_GATE_GR, 0] < 0.1  # gate closed in the gaps
    assert np.abs(y[:, 3]).max() > 0.01  # pink noise on bus 4
    assert np.all(np.abs(y).max(axis=0) > 1e-3)  # every output carries audio
    assert e.core.stats().faults == 0


@pytest.mark.parametrize("block", BLOCKS[1:])
def test_busy_show_is_bit_identical_at_every_block_size(busy_renders, block):
    ref, _ = busy_renders[BLOCKS[0]]
    y, _ = busy_renders[block]
    diff = np.nonzero((y != ref).any(axis=1))[0]
    assert diff.size == 0, (
        f"block {block}: {diff.size} frames differ from block 1, first at "
        f"{diff[0]}, outputs {np.nonzero((y != ref).any(axis=0))[0].tolist()}, "
        f"max |diff| {np.abs(y - ref).max():.3g}"
    )


def test_delay_crossfade_is_block_size_independent():
    """Minimal case: one delayed, trimmed channel (no other processing on)."""
    settings = {
        "/ch/01/mix/fader": 0.0,
        "/ch/01/preamp/trim": 3.3,
        "/ch/01/delay/on": 1,
        "/ch/01/delay/time": 3.7,
    }
    rng = np.random.default_rng(1)
    n = 12000
    x = mono_input(make_engine(FS), rng.standard_normal(n) * 0.1)
    ys = {}
    for block in (1, 1000):
        e = make_engine(FS)
        e.mixer.set_many(settings)
        ys[block] = e.render(x, block=block)
    diff = np.nonzero((ys[1] != ys[1000]).any(axis=1))[0]
    assert diff.size == 0, f"{diff.size} frames differ, first at {diff[0]}"

"""The closed-loop acoustic simulator: room paths, a loop that can howl, and
the responses an evaluation measures it by."""

import numpy as np
import pytest
from scipy import signal

from livesound.audio import design
from livesound.control.offline import BlockEngine
from livesound.virtual.sim import (
    SPEED_OF_SOUND,
    FeedbackLoop,
    Path,
    engine_response,
    image_source_ir,
    margin_db,
    notch_bank_response,
    room_ir,
)

SR = 48000


def test_room_ir_direct_path_and_decay():
    ir = room_ir(SR, 2.0, 0.5, drr_db=6.0, seed=3)
    delay = 2.0 / SPEED_OF_SOUND * SR
    first = int(np.flatnonzero(ir)[0])
    assert first == int(delay)
    direct = ir[first] + ir[first + 1]
    assert direct == pytest.approx(0.5, rel=1e-9)  # 1/r at 2 m
    tail = ir[first + 2 :]
    drr = 10 * np.log10(direct**2 / np.sum(tail**2))
    assert drr == pytest.approx(6.0, abs=1e-6)
    # Schroeder backward integration: the tail falls 60 dB per T60.
    edc = np.cumsum(tail[::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    t = np.arange(tail.size) / SR
    fit = np.polyfit(t[(edc_db < -5) & (edc_db > -25)],
                     edc_db[(edc_db < -5) & (edc_db > -25)], 1)  # fmt: skip
    assert -60.0 / fit[0] == pytest.approx(0.5, rel=0.1)


def test_room_ir_refuses_impossible_rooms():
    with pytest.raises(ValueError):
        room_ir(SR, 0.0, 0.5)
    with pytest.raises(ValueError):
        room_ir(SR, 50.0, 0.1, length_s=0.1)  # 50 m is longer than 0.1 s


def wedge_loop(send_db: float) -> tuple[FeedbackLoop, BlockEngine, np.ndarray]:
    engine = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=6)
    engine.mixer.set_many({"/ch/01/mix/01/level": send_db, "/ch/01/mix/01/type": 3})
    ir = room_ir(SR, 1.5, 0.3, drr_db=3.0, seed=1)
    return FeedbackLoop(engine, [Path(0, 0, ir)]), engine, ir


def run(loop: FeedbackLoop, blocks: int, burst_blocks: int = 10):
    """A short noise burst into the vocal mic; returns what the wedge played
    and what the mic heard of the wedge."""
    rng = np.random.default_rng(0)
    outs, heard = [], []
    for b in range(blocks):
        src = np.zeros((64, 2))
        if b < burst_blocks:
            src[:, 0] = 0.05 * rng.standard_normal(64)
        heard.append(loop.feedback(64)[:, 0])
        outs.append(loop.process(src)[:, 0])
    return np.concatenate(outs), np.concatenate(heard)


def test_quiet_wedge_is_stable_and_loud_wedge_howls_into_the_limiter():
    loop, _, _ = wedge_loop(-20.0)
    out, _ = run(loop, 600)
    assert np.abs(out[-9600:]).max() < 1e-4  # the burst died away
    loop, engine, _ = wedge_loop(6.0)
    out, _ = run(loop, 600)
    ceiling = 10 ** (-1 / 20)  # the bus limiter's default -1 dBFS
    assert np.abs(out[-9600:]).max() == pytest.approx(ceiling, rel=1e-3)
    assert np.all(np.isfinite(out))
    assert engine.core.stats().faults == 0


def test_what_the_mic_hears_is_the_output_convolved_with_the_path():
    loop, _, ir = wedge_loop(-6.0)
    out, heard = run(loop, 200, burst_blocks=5)
    reference = np.convolve(out.astype(np.float64), ir)[: len(heard)]
    np.testing.assert_allclose(heard, reference, atol=1e-9)
    assert np.abs(heard).max() > 1e-3  # the wedge really reached the mic


def test_blocks_longer_than_the_shortest_path_are_refused():
    loop, _, _ = wedge_loop(-20.0)
    with pytest.raises(ValueError, match="shortest path"):
        loop.process(np.zeros((1024, 2)))


# -- evaluation API -------------------------------------------------------------------

BUS = "/ls/bus/01"


def test_engine_response_is_the_send_the_notches_and_the_latency():
    """An impulse measured through the engine against the textbook model: the
    send's gain, the bank's RBJ peaking cut (scipy.signal.freqz), the input's
    high-pass resting at 1 Hz when off (a 2nd-order Butterworth,
    scipy.signal.butter), a pure delay of the engine's latency."""
    engine = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=6, sample_rate=SR)
    engine.mixer.set_many({"/ch/01/mix/01/type": 3, "/ch/01/mix/01/level": -4.5,
                           f"{BUS}/notch/01/on": 1, f"{BUS}/notch/01/f": 1000.0,
                           f"{BUS}/notch/01/depth": -9.0,
                           f"{BUS}/notch/01/width": 0.1})  # fmt: skip
    n_fft = 1 << 16
    got = engine_response(engine, n_fft)
    assert engine.frames == 0  # measured on a copy: the engine's clock is untouched
    w = 2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft
    b0, b1, b2, a1, a2 = design.notch(SR, 1000.0, 9.0, 0.1)
    expected = (10 ** (-4.5 / 20) * np.exp(-1j * w * engine.latency)
                * signal.freqz([b0, b1, b2], [1.0, a1, a2], worN=w)[1]
                * signal.freqz(*signal.butter(2, 1.0, "highpass", fs=SR), worN=w)[1])  # fmt: skip
    # float32 processing: 1e-4 of full scale; lower down, the 1 Hz high-pass's
    # tail cut at the measured 0.68 s adds an error falling as 1/f.
    hz = w * SR / (2 * np.pi)
    np.testing.assert_allclose(got[hz >= 500], expected[hz >= 500], atol=1e-4)
    np.testing.assert_allclose(got[hz >= 20], expected[hz >= 20], atol=3e-3)
    at = round(1000.0 * n_fft / SR)
    assert 20 * np.log10(abs(got[at])) == pytest.approx(-4.5 - 9.0, abs=0.05)


def test_notch_bank_response_is_the_bank_held_or_the_bank_given():
    engine = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=6, sample_rate=SR)
    engine.mixer.set_many({f"{BUS}/notch/03/on": 1, f"{BUS}/notch/03/f": 2000.0,
                           f"{BUS}/notch/03/depth": -12.0})  # fmt: skip
    n_fft = 1 << 14
    hz = np.arange(n_fft // 2 + 1) * SR / n_fft
    held = 20 * np.log10(np.abs(notch_bank_response(engine, BUS, n_fft)))
    # A peaking filter cuts exactly its depth at its centre, nothing far away.
    assert np.interp(2000.0, hz, held) == pytest.approx(-12.0, abs=0.05)
    assert np.abs(held[(hz < 500) | (hz > 8000)]).max() < 0.1
    other = notch_bank_response(engine, BUS, n_fft, {f"{BUS}/notch/03/on": 0})
    np.testing.assert_allclose(other, 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="no notch bank"):
        notch_bank_response(engine, "/ls/bus/99", n_fft)


def test_a_measured_path_with_noise_before_the_direct_sound_is_trimmed():
    """A measured response is never exactly zero before the direct sound: its
    noise in the first block is dropped (and reported), the rest plays."""
    loop, _, ir = wedge_loop(-6.0)
    noisy = ir + 1e-4 * np.random.default_rng(5).standard_normal(ir.size)
    loop = FeedbackLoop(loop.engine, [Path(0, 0, noisy)])
    out, heard = run(loop, 200, burst_blocks=5)
    kept = noisy.copy()
    kept[:64] = 0.0
    reference = np.convolve(out.astype(np.float64), kept)[: len(heard)]
    np.testing.assert_allclose(heard, reference, atol=1e-9)
    expected_db = 10 * np.log10(np.sum(noisy[:64] ** 2) / np.sum(noisy**2))
    assert loop.trimmed_db == [pytest.approx(expected_db)]
    assert loop.trimmed_db[0] < -50


def test_a_path_whose_sound_arrives_within_the_first_block_is_refused():
    ir = np.zeros(4800)
    ir[10] = 0.5  # 10 samples: 7 cm, less than a 64-frame block
    ir[300] = 0.2
    loop = FeedbackLoop(wedge_loop(-6.0)[1], [Path(0, 0, ir)])
    assert loop.min_delay == 10
    with pytest.raises(ValueError, match="sound arrives within 40 dB"):
        loop.process(np.zeros((64, 2)))
    with pytest.raises(ValueError, match="silent"):
        FeedbackLoop(loop.engine, [Path(0, 0, np.zeros(100))])


def test_margin_of_a_pure_delay_loop_is_its_inverse_loop_gain():
    """A path of one echo of gain g after d samples and a send of K dB: the
    loop's gain is g·10^(K/20) at every frequency, so its margin is
    -(K + 20·log10 g)."""
    engine = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=6, sample_rate=SR)
    engine.mixer.set_many({"/ch/01/mix/01/type": 3, "/ch/01/mix/01/level": -6.0})
    ir = np.zeros(2400)
    ir[300] = 0.5
    expected = -(-6.0 + 20 * np.log10(0.5))  # 12.02 dB
    # The 1 Hz high-pass (the input's, at rest) leaves the loop within 0.01 dB
    # of flat above a few Hz.
    assert margin_db(engine, Path(0, 0, ir)) == pytest.approx(expected, abs=0.02)
    engine.mixer.set("/ch/01/mix/01/level", 0.0)
    assert margin_db(engine, Path(0, 0, ir)) == pytest.approx(6.02, abs=0.02)


def test_image_source_room_direct_sound_and_floor_reflection():
    """Geometry by hand: the direct sound and the floor's mirror image arrive
    after their distances / c with gains 1/r and sqrt(1 - a)/r."""
    room, wedge, mic, a = (10.0, 8.0, 3.0), (4.0, 3.0, 0.5), (4.0, 4.0, 1.5), 0.36
    ir = image_source_ir(SR, room, wedge, mic, a, length_s=0.2)
    for z, gain in ((0.5, 1.0), (-0.5, np.sqrt(1 - a))):  # the wedge, its image
        r = np.sqrt(1.0**2 + (1.5 - z) ** 2)
        delay = r / SPEED_OF_SOUND * SR
        n0 = int(delay)
        # Split between two samples: their sum is the arrival's gain (nothing
        # else lands on these two samples in this room).
        assert ir[n0] + ir[n0 + 1] == pytest.approx(gain / r, rel=1e-9)
    assert int(np.flatnonzero(ir)[0]) == int(np.sqrt(2.0) / SPEED_OF_SOUND * SR)
    with pytest.raises(ValueError, match="inside the room"):
        image_source_ir(SR, room, (11.0, 3.0, 0.5), mic, a)

"""The closed-loop acoustic simulator: room paths and a loop that can howl."""

import numpy as np
import pytest

from livesound.control.offline import BlockEngine
from livesound.virtual.sim import SPEED_OF_SOUND, FeedbackLoop, Path, room_ir

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

"""The virtual stage can howl: its vocal mic hears the vocal wedge, live.

A real engine on the virtual sound card (GIL-free device loop with the
stage's acoustic paths) and the suppressor in its own thread: pushing the
lead vocal into its wedge makes the wedge howl; the suppressor catches it.
The tests listen for seconds of the engine's audio, not of wall clock, and
wait for the suppressor by condition: a loaded machine makes them slower.
"""

import math
import time

import numpy as np
import pytest
from osc_helpers import DEADLINE, wait_until

from livesound.audio.taps import TapReader
from livesound.control.offline import BlockEngine
from livesound.enginehost import Engine, EngineConfig
from livesound.feedback.detect import HowlDetector
from livesound.feedback.notches import MODES
from livesound.virtual import metrics
from livesound.virtual.room import STAGE_PATHS, stage_room
from livesound.virtual.show import virtual_stage_show
from livesound.virtual.stage import STAGE_CHANNELS

SR = 48000
WEDGE = 0  # bus 1, the vocal wedge
VOX_SEND = "/ch/07/mix/01/level"


def listen(engine: Engine, seconds: float) -> np.ndarray:
    """The next ``seconds`` of the engine's outputs, ``[frames, outputs]``."""
    reader = TapReader(engine.core)
    chunks, frames = [], 0
    while frames < seconds * SR:
        time.sleep(0.05)  # the taps hold ~2.7 s: read well within that
        chunks.append(reader.read())
        frames += len(chunks[-1])
    return np.concatenate(chunks)[: int(seconds * SR)]


def wedge_howls(engine: Engine, seconds: float) -> list[float]:
    """Frequencies a music-mode detector confirms on the wedge over ``seconds``."""
    x = listen(engine, seconds)[:, WEDGE].astype(float)
    s = MODES["music"].detector
    detector = HowlDetector(SR, s)
    limit = 10 ** ((engine.mixer.get("/ls/bus/01/limiter/ceiling") - 2) / 20)
    found = []
    for i in range(0, len(x) - s.frame, s.hop):
        frame = x[i : i + s.frame]
        limiting = np.abs(frame[-s.hop :]).max() >= limit
        found += [h.freq_hz for h in detector.analyse(frame, limiting)]
    return found


@pytest.fixture(scope="module")
def engine():
    e = Engine(EngineConfig(virtual=True))
    e.start()
    yield e
    e.stop()


def test_every_stage_loop_is_stable_with_margin_at_the_show_levels():
    """The vocal wedge rings first, some 6 dB up; nothing else is close."""
    room = stage_room(SR, 64, 16, np.arange(20), 8)
    assert len(room.outs) == len(STAGE_PATHS)
    assert STAGE_CHANNELS[room.mics[0]] == "Lead vox"
    n = 1 << 17
    margins = []
    for p in range(len(room.outs)):
        show = BlockEngine(n_in=32, n_bus=16, phys_in=8, phys_out=20)
        show.mixer.set_many(virtual_stage_show(32, 16))
        impulse = np.zeros((1 << 15, 8))
        impulse[0, room.mics[p]] = 1e-3  # far below every compressor
        forward = show.render(impulse, 64)[:, room.outs[p]] / 1e-3
        h = np.zeros(room.delays[p].max() + 1)
        np.add.at(h, room.delays[p], room.gains[p])
        loop = np.fft.rfft(forward, n) * metrics.path_response(h, n)
        margins.append(metrics.msg_db(loop))
    assert 5.0 <= margins[0] <= 8.0, margins
    assert min(margins[1:]) > 7.0, margins


def test_the_stage_does_not_howl_at_the_show_levels(engine):
    engine.mixer.set("/ls/bus/01/fbs/mode", "off")
    engine.mixer.flush(DEADLINE)  # the change is live in the audio plane
    assert wedge_howls(engine, 3.0) == []


def test_pushing_the_vocal_wedge_howls_and_the_suppressor_catches_it(engine):
    # A vocal-only wedge, as singers ask for: the howl is not buried in the band.
    others = [c for c in range(1, 9) if c != 7]
    engine.mixer.set_many({f"/ch/{c:02d}/mix/01/level": -math.inf for c in others})
    engine.mixer.set("/ls/bus/01/fbs/mode", "off")
    engine.mixer.set(VOX_SEND, 10.0)
    engine.mixer.flush(DEADLINE)  # the changes are live in the audio plane
    # The howl builds up at once; the detector confirms it in a 2 s stretch
    # that the band's vocal does not mask, wherever the stage's recording is.
    howls = wait_until(lambda: wedge_howls(engine, 2.0),
                       what="pushed 10 dB past the show, the vocal wedge howls")  # fmt: skip
    assert engine.suppressor.notches("/ls/bus/01") == []
    engine.mixer.set("/ls/bus/01/fbs/mode", "music")

    def cut() -> list[float]:
        return [n["freq_hz"] for n in engine.suppressor.notches("/ls/bus/01")]

    def caught() -> bool:
        return any(abs(np.log2(c / f)) < 0.1 for c in cut() for f in howls)

    wait_until(caught, what=f"a notch at one of the howls {howls}")
    wait_until(lambda: wedge_howls(engine, 2.0) == [], what="the wedge quiet")

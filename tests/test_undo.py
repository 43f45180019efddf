"""Undo of the last change made from a surface, on a real Mixer and over OSC."""

import pytest
from osc_helpers import Client, EngineProcess, fader_norm

from livesound.audio.layout import Dims, EngineMemory
from livesound.control.events import SCENE, SUPPRESSOR, Source
from livesound.control.mixer import Mixer
from livesound.control.undo import UndoJournal

CONSOLE = Source.surface(("127.0.0.1", 50000))
TABLET = Source.surface(("10.0.0.7", 9000))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mixer_and_journal():
    mixer = Mixer(EngineMemory(Dims(n_in=4, n_bus=2, phys_in=4, phys_out=6)))
    clock = Clock()
    return mixer, UndoJournal(mixer, clock=clock), clock


def test_a_fader_drag_is_one_step_back_to_before_the_drag(mixer_and_journal):
    mixer, journal, clock = mixer_and_journal
    start = mixer.get("/ch/01/mix/fader")
    for i, db in enumerate((-5.0, -3.0, -1.0, 2.0)):
        clock.now = 0.1 * i
        mixer.set("/ch/01/mix/fader", db, source=CONSOLE)
    assert journal.undo() == ("/ch/01/mix/fader", start)
    assert mixer.get("/ch/01/mix/fader") == start
    with pytest.raises(ValueError, match="nothing to undo"):
        journal.undo()


def test_steps_come_back_newest_first_across_surfaces(mixer_and_journal):
    mixer, journal, clock = mixer_and_journal
    start = mixer.get("/ch/01/mix/fader")
    mixer.set("/ch/01/mix/on", 0, source=CONSOLE)
    clock.now = 5.0
    mixer.set("/ch/02/mix/01/level", -6.0, source=TABLET)
    clock.now = 6.0
    mixer.set("/ch/01/mix/fader", -10.0, source=CONSOLE)
    clock.now = 6.5  # same address, but another surface: another step
    mixer.set("/ch/01/mix/fader", -20.0, source=TABLET)
    assert journal.undo() == ("/ch/01/mix/fader", -10.0)
    assert journal.undo() == ("/ch/01/mix/fader", start)
    assert journal.undo()[0] == "/ch/02/mix/01/level"
    assert journal.undo() == ("/ch/01/mix/on", 1)
    assert mixer.get("/ch/01/mix/on") == 1


def test_scenes_and_the_suppressor_are_not_steps_but_are_remembered(mixer_and_journal):
    mixer, journal, clock = mixer_and_journal
    mixer.set("/ch/01/mix/fader", -4.0, source=SCENE)
    mixer.set("/ls/bus/01/notch/01/on", 1, source=SUPPRESSOR)
    assert not journal.steps
    mixer.set("/ch/01/mix/fader", -9.0, source=CONSOLE)
    # Undo restores what the scene had set, not the default.
    assert journal.undo() == ("/ch/01/mix/fader", -4.0)


def test_a_recall_is_a_barrier(mixer_and_journal):
    mixer, journal, clock = mixer_and_journal
    mixer.set("/ch/01/mix/on", 0, source=CONSOLE)
    clock.now = 5.0
    mixer.set("/ch/02/mix/fader", -6.0, source=TABLET)
    mixer.set_many({"/ch/03/mix/fader": -3.0}, source=SCENE)  # the next song
    journal.barrier()  # the scene manager says it was a recall
    assert journal.peek() is None
    with pytest.raises(ValueError, match="nothing to undo"):
        journal.undo()
    assert mixer.get("/ch/01/mix/on") == 0  # the old song's mute stays
    clock.now = 6.0
    mixer.set("/ch/04/mix/fader", -12.0, source=CONSOLE)  # steps start again
    assert journal.undo()[0] == "/ch/04/mix/fader"


def test_peek_names_the_step_and_undo_takes_only_that_one(mixer_and_journal):
    mixer, journal, clock = mixer_and_journal
    mixer.set("/ch/01/mix/on", 0, source=CONSOLE)
    assert journal.peek() == ("/ch/01/mix/on", 0, 1)
    clock.now = 5.0
    mixer.set("/ch/02/mix/fader", -6.0, source=TABLET)  # meanwhile, a tablet
    with pytest.raises(ValueError, match="newest change is now /ch/02/mix/fader"):
        journal.undo("/ch/01/mix/on")
    assert mixer.get("/ch/01/mix/on") == 0  # refused: nothing taken back
    assert journal.peek()[0] == "/ch/02/mix/fader"
    assert journal.undo("/ch/02/mix/fader")[0] == "/ch/02/mix/fader"


@pytest.mark.parametrize("fader", ["/ch/03/mix/fader", "/dca/5/fader"])
def test_undo_over_osc(fader):
    engine = EngineProcess().start()
    try:
        with Client(engine.port) as c:
            start = c.query(fader)
            c.send(fader, fader_norm(-30.0))
            assert c.query(fader) == pytest.approx(fader_norm(-30.0), abs=1e-3)
            peek = c.request("/ls/undo/peek")
            assert peek.args[0] == fader
            assert peek.args[1] == pytest.approx(-30.0, abs=0.05)
            reply = c.request("/ls/undo", fader)
            assert (reply.address, reply.args[0]) == ("/ls/undo", fader)
            assert c.query(fader) == pytest.approx(start, abs=1e-3)
            assert c.request("/ls/undo").address == "/ls/error"
            assert c.request("/ls/undo/peek").args in ((), [])  # nothing left
    finally:
        engine.stop()

"""Change events: every change reaches subscribers as one typed record with
its old value and its source, and the OSC server pushes changes from the
network loop's thread, whichever thread made them."""

import threading

from osc_helpers import Client, ServerThread, wait_until

from livesound.audio.layout import Dims, EngineMemory
from livesound.control.events import LOCAL, SCENE, Change, Origin, Source
from livesound.control.mixer import Mixer
from livesound.osc.server import OscServer

TABLET = Source.surface(("10.0.0.7", 9000))


def small_mixer() -> Mixer:
    return Mixer(EngineMemory(Dims(n_in=4, n_bus=2, phys_in=4, phys_out=6)))


def test_a_change_carries_old_new_and_source():
    mixer = small_mixer()
    heard: list[Change] = []
    mixer.subscribe(heard.append)
    mixer.set("/ch/01/mix/fader", -6.0, source=TABLET)
    mixer.set_many({"/ch/01/mix/fader": -3.0, "/ch/02/mix/on": 0})
    assert heard == [
        Change("/ch/01/mix/fader", -float("inf"), -6.0, TABLET),
        Change("/ch/01/mix/fader", -6.0, -3.0, LOCAL),
        Change("/ch/02/mix/on", 1, 0, LOCAL),
    ]
    assert TABLET.from_surface and TABLET.peer == ("10.0.0.7", 9000)
    assert not SCENE.from_surface and SCENE.origin is Origin.SCENE


def test_a_prepared_set_reports_what_it_changed_from_what():
    mixer = small_mixer()
    heard: list[Change] = []
    mixer.subscribe(heard.append)
    prepared = mixer.prepare({"/ch/01/mix/fader": -10.0, "/ch/02/mix/on": 1})
    mixer.apply(prepared, source=SCENE)
    # /ch/02/mix/on was 1 already: not a change.
    assert heard == [Change("/ch/01/mix/fader", -float("inf"), -10.0, SCENE)]


def test_pushes_leave_from_the_network_loop_whatever_thread_changes():
    mixer = small_mixer()
    server = OscServer(mixer)
    threads: set[int] = set()
    expire = server._expire

    def watched(now: float) -> None:
        threads.add(threading.get_ident())
        expire(now)

    server._expire = watched  # every touch of the subscriber tables
    with ServerThread(server) as running, Client(running.port) as tablet:
        tablet.send("/xremote")
        wait_until(lambda: server.subscribers, 10.0, "the subscription")
        loop_thread = running.call(threading.get_ident)
        changer = threading.Thread(
            target=mixer.set, args=("/ch/03/mix/fader", -12.0), name="not-the-loop"
        )
        changer.start()
        changer.join()
        mixer.set("/ch/04/mix/on", 0)  # and from the test's own thread
        got = {tablet.recv(timeout=10.0).address for _ in range(2)}
        assert got == {"/ch/03/mix/fader", "/ch/04/mix/on"}
    assert threads == {loop_thread}

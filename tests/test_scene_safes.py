"""Recall safes set over OSC protect strips and groups, and survive a restart."""

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from livesound.control.offline import BlockEngine
from livesound.osc.server import OscServer
from livesound.scenes import remote
from livesound.scenes.manager import SceneManager

ENGINEER = ("127.0.0.1", 40000)


def osc(address: str, *args) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def setup(tmp_path):
    e = BlockEngine(n_in=4, n_bus=2, phys_in=4, phys_out=6)
    scenes = SceneManager(e.mixer, tmp_path / "scenes", tmp_path / "state")
    server = OscServer(e.mixer)
    remote.register(server, scenes, lambda: 0.0)
    return e, scenes, server


def test_safe_strip_and_group_over_osc(tmp_path):
    e, scenes, server = setup(tmp_path)
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/02/mix/fader": 0.0,
                      "/ch/02/eq/2/g": 0.0})  # fmt: skip
    scenes.save("flat")
    e.mixer.set_many({"/ch/01/mix/fader": -10.0, "/ch/02/mix/fader": -10.0,
                      "/ch/02/eq/2/g": 6.0})  # fmt: skip
    for item in ("ch.01", "eq"):
        ((reply, _),) = server.handle_datagram(osc("/ls/scene/safe", item, 1), ENGINEER)
    assert OscMessage(reply).params == ["ch.01", "eq"]
    scenes.recall("flat", 0.0)
    assert e.mixer.get("/ch/01/mix/fader") == -10.0  # safe strip untouched
    assert e.mixer.get("/ch/02/eq/2/g") == 6.0  # safe group untouched
    assert e.mixer.get("/ch/02/mix/fader") == 0.0  # the rest recalled
    # The show's safes come back after a restart.
    again = SceneManager(e.mixer, tmp_path / "scenes", tmp_path / "state")
    assert again.safes.strips == {"ch.01"} and again.safes.groups == {"eq"}


def test_safes_refuse_unknown_items_and_other_roles(tmp_path):
    e, scenes, server = setup(tmp_path)
    ((reply, _),) = server.handle_datagram(osc("/ls/scene/safe", "ch.99", 1), ENGINEER)
    assert OscMessage(reply).address == "/ls/error"
    (reply, _), = server.handle_datagram(osc("/ls/scene/safe", "ch.01", 1),
                                         ("10.0.0.9", 5000))  # fmt: skip
    assert OscMessage(reply).address == "/ls/error"
    assert scenes.safes.strips == set()

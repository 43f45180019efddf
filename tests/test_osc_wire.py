"""The one OSC builder: what it writes is what python-osc (and so every
X32 app built on a standard OSC library) reads back."""

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket

from livesound.osc.wire import bundle, message


def test_tagged_pairs_and_plain_values():
    m = OscMessage(message("/ch/01/mix/fader", ("f", 0.75), ("i", 1), 2, "x", b"ab"))
    assert m.address == "/ch/01/mix/fader"
    assert list(m.params) == [0.75, 1, 2, "x", b"ab"]
    assert OscMessage(message("/a", True)).params == [True]  # T, as python-osc sends


def test_a_bundle_is_the_standard_immediate_bundle():
    parts = [message("/a", ("f", 0.5)), message("/b/c", 1, "x"), message("/xinfo")]
    want = OscBundleBuilder(IMMEDIATELY)
    for m in parts:
        want.add_content(OscMessage(m))
    assert bundle(parts) == want.build().dgram
    assert [t.message.address for t in OscPacket(bundle(parts)).messages] == [
        "/a", "/b/c", "/xinfo"
    ]  # fmt: skip
    assert bundle([]) == OscBundleBuilder(IMMEDIATELY).build().dgram

"""The one OSC builder: what it writes is what python-osc (and so every
X32 app built on a standard OSC library) reads back; the ``/ls/meters``
blob reads back as written."""

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket

from livesound.audio.layout import n_outputs
from livesound.osc import meterblob
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


def test_the_meter_blob_round_trips_and_refuses_other_sizes():
    n_in, n_bus = 3, 2
    n_out = n_outputs(n_bus)  # buses, main L/R, cue L/R, mono, matrices
    rng = np.random.default_rng(0)
    sent = meterblob.Reading(
        *(rng.uniform(-90, 0, n) for n in [n_in] * 4 + [n_out] * 3)
    )
    data = meterblob.encode(sent)
    got = meterblob.decode(data, n_in, n_bus)
    for name in meterblob.INPUT_FIELDS + meterblob.OUTPUT_FIELDS:
        np.testing.assert_allclose(getattr(got, name), getattr(sent, name), rtol=1e-6)
    assert meterblob.decode(data, n_in + 1, n_bus) is None
    assert meterblob.decode(data, n_in, n_bus - 1) is None
    assert meterblob.decode(data[:-4], n_in, n_bus) is None  # count says more
    assert meterblob.decode(b"\x01", n_in, n_bus) is None

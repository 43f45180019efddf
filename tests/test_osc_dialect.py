"""The X32 OSC dialect: how each kind of parameter travels, what is refused,
the X32 commands (/xinfo, /status, /node, /xremote, /meters) and
subscriptions. Mostly through ``handle_datagram``; pushes and meter blobs
over a real socket.
"""

import math
import struct
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from osc_helpers import (
    Client,
    ServerThread,
    fader_norm,
    fake_meters,
    msg,
    osc_string,
    parse,
    parse_meter_blob,
    wait_until,
)

from livesound.audio.layout import matrix_outputs, mono_output
from livesound.control.offline import BlockEngine
from livesound.control.registry import EQ_TYPES, X32_SEND_TYPES
from livesound.osc.roles import ENGINEER, Permissions
from livesound.osc.server import (
    FEEDS_PER_HOST,
    MAX_SUBSCRIBERS,
    SUBSCRIPTION_S,
    UNKNOWN_PER_HOST,
    OscServer,
)

N_IN, N_BUS = 8, 4
ME = ("10.0.0.1", 5000)
OTHER = ("10.0.0.2", 5000)


@pytest.fixture(scope="module")
def engine():
    return BlockEngine(n_in=N_IN, n_bus=N_BUS, phys_in=8, phys_out=8)


@pytest.fixture
def srv(engine):
    mixer = engine.mixer
    mixer.set_many(mixer.registry.defaults())
    server = OscServer(mixer, Permissions(default=ENGINEER), rate=1e9, burst=1e9)
    # These tests read the reasons: ask for /ls/error (the X32 sends none).
    server.handle_datagram(msg("/ls/errors", 1), ME)
    yield server
    server.close()


def send(srv, address, *args, addr=ME, now=None):
    return [parse(r) for r, _ in srv.handle_datagram(msg(address, *args), addr, now)]


def query(srv, address, addr=ME):
    (reply,) = send(srv, address, addr=addr)
    assert reply.address == address, reply
    return reply


def set_ok(srv, address, *args):
    assert send(srv, address, *args) == []
    return srv.mixer.get(address)


# -- floats: the fader law and the tapers -----------------------------------------


@pytest.mark.parametrize(
    "norm, db",
    [(1.0, 10.0), (0.875, 5.0), (0.75, 0.0), (0.5, -10.0), (0.375, -20.0),
     (0.25, -30.0), (0.125, -50.0), (0.0625, -60.0), (0.03125, -75.0),
     (1 / 480, -89.0), (0.0, -math.inf)],
)  # fmt: skip
@pytest.mark.parametrize(
    "address", ["/ch/01/mix/fader", "/ch/08/mix/04/level", "/bus/01/mix/fader",
                "/main/st/mix/fader"],
)  # fmt: skip
def test_fader_law(srv, address, norm, db):
    assert set_ok(srv, address, norm) == pytest.approx(db, abs=1e-4)
    reply = query(srv, address)
    assert reply.tags == "f"
    assert reply.arg == pytest.approx(norm, abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(f=st.floats(0.0, 1.0, width=32))
def test_fader_round_trip(engine, f):
    srv = OscServer(engine.mixer, Permissions(default=ENGINEER), rate=1e9, burst=1e9)
    try:
        db = set_ok(srv, "/ch/02/mix/fader", f)
        if f == 0.0:
            assert db == -math.inf
        else:
            assert fader_norm(db) == pytest.approx(f, abs=1e-7)  # written out here
        assert query(srv, "/ch/02/mix/fader").arg == pytest.approx(f, abs=1e-7)
    finally:
        srv.close()


FLOATS = [  # (address, value at 0, value at 0.5, value at 1)
    ("/ch/01/eq/2/q", 10.0, math.sqrt(10 * 0.3), 0.3),  # log, high to low
    ("/bus/01/eq/6/q", 10.0, math.sqrt(3.0), 0.3),
    ("/ch/01/eq/2/f", 20.0, math.sqrt(20 * 20000), 20000.0),  # log
    ("/ch/01/preamp/hpf", 20.0, math.sqrt(20 * 400), 400.0),
    ("/ch/01/gate/hold", 0.02, math.sqrt(0.02 * 2000), 2000.0),
    ("/ls/bus/01/notch/01/width", 1 / 80, math.sqrt(1 / 80), 1.0),
    ("/config/osc/f1", 20.0, math.sqrt(20 * 20000), 20000.0),
    ("/ch/01/mix/pan", -100.0, 0.0, 100.0),  # lin
    ("/ch/01/eq/2/g", -15.0, 0.0, 15.0),
    ("/ch/01/preamp/trim", -18.0, 0.0, 18.0),
    ("/ch/01/dyn/thr", -60.0, -30.0, 0.0),
    ("/ls/main/st/limiter/ceiling", -40.0, -20.0, 0.0),
    ("/ls/bus/02/delay/time", 0.0, 250.0, 500.0),
]


@pytest.mark.parametrize("address, at0, at_half, at1", FLOATS)
def test_float_tapers(srv, address, at0, at_half, at1):
    for norm, value in [(0.0, at0), (0.5, at_half), (1.0, at1)]:
        assert set_ok(srv, address, norm) == pytest.approx(value, rel=1e-6)
        reply = query(srv, address)
        assert reply.tags == "f" and reply.arg == pytest.approx(norm, abs=1e-6)
    # monotonic in the direction of the range (Q runs from 10 down to 0.3)
    values = [set_ok(srv, address, k / 16) for k in range(17)]
    steps = np.diff(values) * np.sign(at1 - at0)
    assert (steps > 0).all()


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_every_float_parameter_round_trips(engine, data):
    params = [p for p in engine.mixer.registry if p.kind == "float"]
    param = data.draw(st.sampled_from(params), label="param")
    lo, hi = sorted((param.lo, param.hi))
    value = data.draw(st.floats(lo, hi), label="value")
    srv = OscServer(engine.mixer, Permissions(default=ENGINEER), rate=1e9, burst=1e9)
    try:
        engine.mixer.set(param.address, value)
        wire = query(srv, param.address).arg
        assert 0.0 <= wire <= 1.0
        back = set_ok(srv, param.address, wire)
        if param.taper == "fader" and value <= -89.99:
            assert back == -math.inf or back == pytest.approx(value, abs=0.01)
        elif param.taper == "log":
            assert back == pytest.approx(value, rel=1e-5)
        else:  # float32 on the wire
            assert back == pytest.approx(value, abs=1e-5 * (hi - lo))
    finally:
        srv.close()


# -- ints: switches and enums; strings: names -----------------------------------


@pytest.mark.parametrize(
    "address, choices",
    [("/ch/01/eq/1/type", EQ_TYPES), ("/bus/02/eq/3/type", EQ_TYPES),
     ("/ch/01/mix/01/type", X32_SEND_TYPES), ("/ch/01/dyn/ratio", tuple(range(12))),
     ("/ch/01/preamp/hpslope", ("12", "18", "24"))],
)  # fmt: skip
def test_enums_travel_as_ints_or_names(srv, address, choices):
    for k in range(len(choices)):
        assert set_ok(srv, address, k) == k
        assert query(srv, address).tags == "i" and query(srv, address).arg == k
    names = srv.mixer.registry[address].choices
    assert set_ok(srv, address, names[-1]) == len(names) - 1  # a choice's name
    assert set_ok(srv, address, 1.0) == 1  # tablets send whole floats
    for bad in [len(choices), -1, 1.5, math.nan, "1", "Peak"]:
        (error,) = send(srv, address, bad)
        assert (error.address, error.args[0]) == ("/ls/error", address)
    assert srv.mixer.get(address) == 1


def test_switches(srv):
    address = "/ch/03/mix/on"
    assert query(srv, address).tags == "i"
    assert set_ok(srv, address, 0) == 0
    assert query(srv, address).arg == 0
    assert set_ok(srv, address, 1.0) == 1
    assert set_ok(srv, address, 0.0) == 0
    for bad in [2, -1, 0.5, math.inf, "on", True]:
        (error,) = send(srv, address, bad)
        assert error.address == "/ls/error", bad
    assert srv.mixer.get(address) == 0


def test_names(srv):
    address = "/ch/01/config/name"
    assert set_ok(srv, address, "Kick In") == "Kick In"
    reply = query(srv, address)
    assert (reply.tags, reply.arg) == ("s", "Kick In")
    assert set_ok(srv, address, "  Snare ") == "Snare"
    assert set_ok(srv, address, "x" * 32) == "x" * 32
    assert set_ok(srv, "/bus/02/config/name", "IEM Drums") == "IEM Drums"
    assert set_ok(srv, "/bus/02/config/name", "") == ""  # the X32's default name
    for bad in ["x" * 33, "tab\there", 5, 0.5, b"blob"]:
        (error,) = send(srv, address, bad)
        assert (error.address, error.args[0]) == ("/ls/error", address), bad
    assert srv.mixer.get(address) == "x" * 32


# -- refusals ---------------------------------------------------------------------

REFUSED = {
    "NaN": [math.nan],
    "+inf": [math.inf],
    "-inf": [-math.inf],
    "1.5": [1.5],
    "-0.1": [-0.1],
    "just above 1": [1.0000001],
    "double NaN": [("d", math.nan)],
    "double 1.5": [("d", 1.5)],
    "int 2": [2],
    "int -1": [-1],
    "huge int64": [("h", 2**62)],
    "string": ["0.5"],
    "blob": [b"\x3f\x40\x00\x00"],
    "true": [True],
    "nil": [("N", None)],
    "two args": [0.5, 0.5],
    "float and string": [0.5, "x"],
}


@pytest.mark.parametrize("name", REFUSED)
@pytest.mark.parametrize("address", ["/ch/01/mix/fader", "/ch/01/eq/2/q"])
def test_refused_values_change_nothing(srv, address, name):
    before = srv.mixer.snapshot()
    replies = send(srv, address, *REFUSED[name])
    assert len(replies) == 1
    error = replies[0]
    assert (error.address, error.tags, error.args[0]) == ("/ls/error", "ss", address)
    assert error.args[1]  # says why
    assert srv.mixer.snapshot() == before
    assert srv.stats["errors"] == 1 and srv.stats["sets"] == 0


def test_unknown_address(srv):
    # The show has 8 inputs and 4 buses: the X32's others are not there.
    for address in ["/ch/09/mix/fader", "/ch/1/mix/fader", "/bus/05/mix/fader",
                    "/ch/01/mix/fader/", "/ch/*/mix/fader", "/",
                    "/ch/01/mix/05/level"]:  # fmt: skip
        (error,) = send(srv, address, 0.5)
        assert error.address == "/ls/error" and error.args[0] == address
        assert "unknown" in error.args[1]
    assert srv.stats["unknown"] == 7


# -- X32 commands -----------------------------------------------------------------


def test_xinfo_status_info(engine):
    srv = OscServer(engine.mixer, name="FOH-Rack")
    try:
        (xinfo,) = send(srv, "/xinfo")
        assert xinfo.tags == "ssss"
        assert xinfo.args[1:] == ("FOH-Rack", "X32", "4.06")
        ip = xinfo.args[0]
        assert len(ip.split(".")) == 4
        (status,) = send(srv, "/status")
        assert (status.tags, status.args) == ("sss", ("active", ip, "FOH-Rack"))
        (info,) = send(srv, "/info")
        assert info.tags == "ssss" and info.args[1:] == ("FOH-Rack", "X32", "4.06")
    finally:
        srv.close()


def test_node_channel_mix(srv):
    srv.mixer.set_many({"/ch/01/mix/fader": -10.0})
    (node,) = send(srv, "/node", "ch/01/mix")
    assert (node.address, node.tags) == ("node", "s")  # as the X32: no slash
    # on, fader, LR, pan (signed), mono, mono level: the X32's six fields
    assert node.arg == "/ch/01/mix ON -10.0 ON +0 OFF   -oo\n"
    srv.mixer.set_many({"/ch/01/mix/on": 0, "/ch/01/mix/fader": -math.inf,
                        "/ch/01/mix/st": 0, "/ch/01/mix/pan": -50.0})  # fmt: skip
    (node,) = send(srv, "/node", "/ch/01/mix/")
    assert node.arg == "/ch/01/mix OFF   -oo OFF -50 OFF   -oo\n"


def test_node_bus_mix_and_send(srv):
    (node,) = send(srv, "/node", "bus/01/mix")
    assert node.arg == "/bus/01/mix ON   0.0 OFF +0 OFF   -oo\n"
    srv.mixer.set_many({"/bus/01/mix/fader": 10.0, "/bus/01/mix/on": 0})
    text = "/bus/01/mix OFF +10.0 OFF +0 OFF   -oo\n"
    assert send(srv, "/node", "bus/01/mix")[0].arg == text
    srv.mixer.set_many({"/ch/02/mix/01/level": -6.0, "/ch/02/mix/01/type": 3})
    (node,) = send(srv, "/node", "ch/02/mix/01")
    assert node.arg == "/ch/02/mix/01 ON  -6.0 +0 PRE 0\n"


def test_node_refusals(srv):
    for args in [(), ("nowhere",), ("ch/01/mi",), (5,), ("ch/01/mix", "x")]:
        (error,) = send(srv, "/node", *args)
        assert (error.address, error.args[0]) == ("/ls/error", "/node"), args


# -- subscriptions ------------------------------------------------------------------


def test_xremote_pushes_to_others_only(srv):
    assert send(srv, "/xremote") == []
    assert ME in srv.subscribers
    send(srv, "/ch/01/mix/fader", 0.75, addr=OTHER)  # someone else: pushed
    assert srv.stats["pushes"] == 1
    send(srv, "/ch/01/mix/fader", 0.5)  # my own change: not echoed
    assert srv.stats["pushes"] == 1
    srv.mixer.set("/ch/02/mix/on", 0)  # the console, a scene: pushed
    assert srv.stats["pushes"] == 2
    send(srv, "/ch/01/mix/fader", addr=OTHER)  # a query changes nothing
    assert srv.stats["pushes"] == 2
    assert send(srv, "/unsubscribe") == []
    srv.mixer.set("/ch/02/mix/on", 1)
    assert srv.stats["pushes"] == 2


def test_subscription_expires_unless_renewed(srv):
    t0 = time.time()
    a, b, c = ("10.0.0.5", 1), ("10.0.0.6", 1), ("10.0.0.7", 1)
    send(srv, "/xremote", addr=a, now=t0)
    send(srv, "/xremote", addr=b, now=t0)
    assert srv.subscribers[a] == pytest.approx(t0 + SUBSCRIPTION_S)
    send(srv, "/renew", addr=b, now=t0 + SUBSCRIPTION_S - 1)
    send(srv, "/xremote", addr=c, now=t0 + SUBSCRIPTION_S - 0.5)  # expires the stale
    assert set(srv.subscribers) == {a, b, c}
    send(srv, "/xremote", addr=c, now=t0 + SUBSCRIPTION_S + 0.5)
    assert set(srv.subscribers) == {b, c}
    send(srv, "/xremote", addr=c, now=t0 + 2 * SUBSCRIPTION_S - 0.5)
    assert set(srv.subscribers) == {c}


def test_max_subscribers(srv):
    assert MAX_SUBSCRIBERS >= 32  # the issue: at least 32, not the X32's 4
    t0 = time.time()
    clients = [("10.0.1.1", 1000 + k) for k in range(MAX_SUBSCRIBERS)]
    for k, addr in enumerate(clients):
        assert send(srv, "/xremote", addr=addr, now=t0 + k * 0.01) == []
    assert len(srv.subscribers) == MAX_SUBSCRIBERS
    late = ("10.0.2.2", 1)
    assert send(srv, "/xremote", addr=late, now=t0 + 1) == []  # quietly, as the X32
    assert late not in srv.subscribers
    assert send(srv, "/xremote", addr=clients[0], now=t0 + 1) == []  # renewing is fine
    srv.mixer.set("/ch/01/mix/on", 0)
    assert srv.stats["pushes"] == MAX_SUBSCRIBERS
    # once the others lapse there is room again
    assert send(srv, "/xremote", addr=late, now=t0 + SUBSCRIPTION_S + 0.9) == []
    assert set(srv.subscribers) == {clients[0], late}


def test_pushes_over_socket(engine):
    srv = OscServer(engine.mixer, Permissions(default=ENGINEER))
    with (
        ServerThread(srv) as st,
        Client(st.port) as a,
        Client(st.port, ip="127.0.0.2") as b,
    ):
        a.send("/xremote")
        wait_until(lambda: a.addr in srv.subscribers, what="the subscription")
        b.send("/ch/05/mix/fader", 0.5)
        b.send("/ch/05/config/name", "Keys L")
        b.send("/ch/05/mix/on", 0)
        b.send("/ch/05/eq/2/q", 0.0)
        got = [(m.address, m.tags, m.args) for m in (a.recv() for _ in range(4))]
        got += [(m.address, m.tags, m.args) for m in a.recv_all(0.1)]  # no more
        assert got == [
            ("/ch/05/mix/fader", "f", (0.5,)),
            ("/ch/05/config/name", "s", ("Keys L",)),
            ("/ch/05/mix/on", "i", (0,)),
            ("/ch/05/eq/2/q", "f", (0.0,)),
        ]
        assert b.recv_all(0.1) == []  # no echo to the sender
        a.send("/ch/05/mix/on", 1)
        assert a.recv_all(0.2) == []  # nor to a subscriber for its own change
        assert b.query("/ch/05/mix/on") == 1


# -- meters -------------------------------------------------------------------------


def _lin(db):
    return 10.0 ** (np.asarray(db) / 20.0)


def x32_slots(values: np.ndarray, slots: int, fill: float) -> np.ndarray:
    out = np.full(slots, fill)
    out[: len(values)] = values
    return out


def test_meter_blobs(engine):
    reading = fake_meters(N_IN, N_BUS, seed=3)
    srv = OscServer(engine.mixer, meters=lambda: reading)
    nb = N_BUS
    expected = {
        # X32 apps read meters by position: always the X32's slot counts.
        "/meters/1": np.concatenate(
            [
                x32_slots(_lin(reading.in_peak_db), 32, 0.0),
                x32_slots(_lin(reading.gate_gr_db), 32, 1.0),
                x32_slots(_lin(reading.comp_gr_db), 32, 1.0),
            ]
        ),
        "/meters/2": np.concatenate(
            [
                x32_slots(_lin(reading.out_peak_db[:nb]), 16, 0.0),
                _lin(reading.out_peak_db[matrix_outputs(nb)]),
                _lin(reading.out_peak_db[nb : nb + 2]),
                [_lin(reading.out_peak_db[mono_output(nb)])],
                x32_slots(_lin(reading.limiter_gr_db[:nb]), 16, 1.0),
                _lin(reading.limiter_gr_db[matrix_outputs(nb)]),
                [_lin(min(reading.limiter_gr_db[nb : nb + 2]))],
                [_lin(reading.limiter_gr_db[mono_output(nb)])],
            ]
        ),
        "/ls/meters": np.concatenate(
            [
                reading.in_peak_db,
                reading.in_rms_db,
                reading.gate_gr_db,
                reading.comp_gr_db,
                reading.out_peak_db,
                reading.out_rms_db,
                reading.limiter_gr_db,
            ]
        ),
    }
    assert len(expected["/meters/1"]) == 96
    assert len(expected["/meters/2"]) == 49
    with ServerThread(srv) as st:
        for bank, want in expected.items():
            with Client(st.port) as c:
                c.send("/meters", bank)
                t0 = time.monotonic()
                blobs = [c.recv() for _ in range(4)]
                took = time.monotonic() - t0
                c.send("/unsubscribe")
            for m in blobs:
                assert (m.address, m.tags) == (bank, "b")
                raw = m.arg
                assert struct.unpack_from("<i", raw)[0] == len(want)
                assert struct.unpack_from("<f", raw, 4)[0] == pytest.approx(
                    want[0], rel=1e-6
                )
                np.testing.assert_allclose(
                    parse_meter_blob(raw), want, rtol=1e-6, atol=1e-7
                )
            # every 50 ms, never faster (a loaded machine only makes them late)
            assert took >= 0.1


def test_meter_requests(srv):
    for bad in [(), ("/meters/7",), (1,), ("/meters/3",)]:
        (error,) = send(srv, "/meters", *bad)
        assert (error.address, error.args[0]) == ("/ls/error", "/meters")
    t0 = time.time()
    assert send(srv, "/meters", "/meters/2", now=t0) == []
    key = (ME, "/meters/2")
    assert srv.feeds[key].expires == pytest.approx(t0 + SUBSCRIPTION_S)
    send(srv, "/renew", "meters/2", now=t0 + 5)  # with or without the slash
    assert srv.feeds[key].expires == pytest.approx(t0 + 5 + SUBSCRIPTION_S)
    send(srv, "/xremote", addr=OTHER, now=t0 + 5 + SUBSCRIPTION_S + 1)  # expires
    assert key not in srv.feeds


# -- known bugs ---------------------------------------------------------------------


def test_unsupported_type_tag_is_refused(srv):
    """python-osc skips tags it does not know (c, S, m, ...) without consuming
    their bytes: ',cf' would read the float from the char's bytes (found, fixed)."""
    data = (osc_string("/ch/01/mix/fader") + osc_string(",cf")
            + struct.pack(">i", ord("x")) + struct.pack(">f", 0.75))  # fmt: skip
    before = srv.mixer.snapshot()
    replies = [parse(r) for r, _ in srv.handle_datagram(data, ME)]
    assert srv.mixer.snapshot() == before  # it used to go to -90 dB
    assert [(r.address, r.args[0]) for r in replies] == [
        ("/ls/error", "/ch/01/mix/fader")
    ]
    for tags in [",c", ",S", ",fm", ",t", ",r", ",[f]", ",I"]:
        data = osc_string("/ch/01/mix/fader") + osc_string(tags) + bytes(16)
        replies = [parse(r) for r, _ in srv.handle_datagram(data, ME)]
        assert [r.address for r in replies] == ["/ls/error"], tags
    assert srv.mixer.snapshot() == before


def test_handle_datagram_with_own_clock(srv):
    """``now`` may be any clock: timetags are compared with the wall clock."""
    (reply,) = send(srv, "/xinfo", now=1000.0)
    assert reply.address == "/xinfo"


def test_meter_subscriptions_are_limited(srv):
    """Every /meters subscription is a blob each 50 ms: they are limited too,
    per host (however many ports it uses) and in all."""
    for k in range(MAX_SUBSCRIBERS + 50):
        assert send(srv, "/meters", "/meters/1", addr=("10.0.3.3", 2000 + k)) == []
    per_host = FEEDS_PER_HOST if srv.permissions.known("10.0.3.3") else UNKNOWN_PER_HOST
    assert len(srv.feeds) == per_host  # the rest were refused quietly
    assert srv.stats["refused_quietly"] == MAX_SUBSCRIBERS + 50 - per_host
    for k in range(MAX_SUBSCRIBERS + 50):
        send(srv, "/meters", "/meters/1", addr=(f"10.0.4.{k + 1}", 2000))
    assert len(srv.feeds) <= MAX_SUBSCRIBERS


def test_close_twice(engine):
    """close() is idempotent."""
    srv = OscServer(engine.mixer)
    srv.close()
    srv.close()

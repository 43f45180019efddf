"""The OSC server against liblo's ``oscsend`` / ``oscdump``: a peer no one here
wrote, on real UDP sockets, in process and in the real engine process.

Replies and pushes go to the sender's ip:port, and ``oscsend`` sends from an
ephemeral port it closes at once; so whatever oscdump is to receive must come
from oscdump's port. A Python socket binds that port (SO_REUSEADDR), sends
the liblo-encoded datagram (``oscsend -`` writes it out), closes, and oscdump
takes the port. For a subscription that is enough; for a query the server is
held (its loop paused, or the engine process SIGSTOPped) until oscdump listens.
"""

import math
import os
import shutil

import pytest
from osc_helpers import (
    Client,
    EngineProcess,
    Oscdump,
    ServerThread,
    free_udp_port,
    liblo_encode,
    oscsend,
    send_from,
    wait_until,
)

from livesound.control.offline import BlockEngine
from livesound.osc.server import OscServer

N_IN, N_BUS = 8, 4


@pytest.fixture(scope="module", autouse=True)
def liblo_tools():
    missing = [t for t in ("oscsend", "oscdump") if shutil.which(t) is None]
    if missing:
        text = (
            f"liblo-tools missing ({', '.join(missing)}): apt-get install liblo-tools"
        )
        if os.environ.get("CI"):
            pytest.fail(text, pytrace=False)
        pytest.skip(text)


@pytest.fixture(scope="module")
def engine():
    return BlockEngine(n_in=N_IN, n_bus=N_BUS, phys_in=8, phys_out=8)


@pytest.fixture
def served(engine):
    """An OscServer (no show config: this machine is the engineer) on a thread."""
    mixer = engine.mixer
    mixer.set_many(mixer.registry.defaults())
    with ServerThread(OscServer(mixer)) as st:
        yield st


@pytest.fixture(scope="module")
def engine_proc():
    proc = EngineProcess(inputs=N_IN, buses=N_BUS).start()
    yield proc
    assert proc.stop() == 0, "the engine did not stop cleanly on SIGINT"


# -- oscsend sets values -------------------------------------------------------------


@pytest.mark.parametrize(
    "address, types, value, stored, wire",
    [
        ("/ch/01/mix/fader", "f", 0.75, 0.0, ("f", 0.75)),  # X32 fader law: 0 dB
        ("/ch/02/mix/fader", "f", 0.5, -10.0, ("f", 0.5)),
        ("/ch/03/mix/fader", "d", 0.25, -30.0, ("f", 0.25)),  # liblo double
        ("/bus/02/mix/fader", "f", 1.0, 10.0, ("f", 1.0)),
        ("/bus/03/mix/fader", "f", 0.0, -math.inf, ("f", 0.0)),  # off
        ("/ch/01/eq/2/q", "f", 0.0, 10.0, ("f", 0.0)),  # log taper, reversed
        ("/ch/01/mix/pan", "f", 1.0, 100.0, ("f", 1.0)),
        ("/ch/03/mix/on", "i", 0, 0, ("i", 0)),
        ("/ch/04/eq/1/type", "i", 5, 5, ("i", 5)),  # HCut
        ("/ch/05/dyn/ratio", "h", 11, 11, ("i", 11)),  # liblo int64
        ("/ch/05/config/name", "s", "Lead Vox", "Lead Vox", ("s", "Lead Vox")),
    ],
)
def test_oscsend_sets_and_query_answers(served, address, types, value, stored, wire):
    mixer = served.server.mixer
    assert mixer.get(address) != stored
    oscsend(served.port, address, types, value)
    wait_until(lambda: mixer.get(address) == stored, what=f"{address} = {stored}")
    with Client(served.port) as c:
        reply = c.request(address)
    assert (reply.address, reply.tags) == (address, wire[0])
    assert reply.arg == pytest.approx(wire[1], abs=1e-6)


def test_oscsend_bad_values_change_nothing(served):
    mixer, stats = served.server.mixer, served.server.stats
    before = mixer.snapshot()
    bad = [
        ("/ch/01/mix/fader", "f", 1.5),
        ("/ch/01/mix/fader", "f", -0.1),
        ("/ch/01/mix/fader", "d", "nan"),
        ("/ch/01/mix/fader", "f", "inf"),
        ("/ch/01/mix/fader", "s", "loud"),
        ("/ch/01/mix/on", "i", 2),
        ("/ch/01/eq/1/type", "i", 6),
        ("/ch/01/mix/fader", "T"),  # a boolean is not a fader position
        ("/ch/01/mix/fader", "c", "x"),  # types python-osc cannot decode
        ("/ch/01/config/name", "S", "Symbol"),
        ("/ch/01/mix/fader", "m", "00904060"),
        ("/ch/99/mix/fader", "f", 0.5),
    ]
    for args in bad:
        oscsend(served.port, *args)
    # Refused as the X32 refuses: quietly (oscsend cannot ask for errors).
    wait_until(lambda: stats["refused_quietly"] >= len(bad), what="a refusal for each")
    assert stats["refused_quietly"] == len(bad) and stats["errors"] == 0
    assert stats["sets"] == 0
    assert mixer.snapshot() == before


# -- oscdump: query replies and pushes ---------------------------------------------


def _liblo_queries():
    return [
        liblo_encode("/ls/errors", "i", 1),  # the X32 refuses quietly otherwise
        liblo_encode("/ch/01/mix/fader"),
        liblo_encode("/ch/01/config/name"),
        liblo_encode("/xinfo"),
        liblo_encode("/status"),
        liblo_encode("/node", "s", "ch/01/mix"),
        liblo_encode("/ch/01/mix/fader", "f", 2.0),
        liblo_encode("/nowhere"),
    ]


def _check_replies(dump, name="livesound"):
    seen = dump.messages(at_least=7)
    by_address = {}
    for d in seen:
        by_address.setdefault(d.address, []).append(d)
    fader = by_address["/ch/01/mix/fader"]
    assert [(d.types, d.values) for d in fader] == [("f", "0.750000")]
    assert by_address["/ch/01/config/name"][0].values == '"Vox"'
    xinfo = by_address["/xinfo"][0]
    assert xinfo.types == "ssss"
    assert xinfo.values.split(" ")[1:] == [f'"{name}"', '"X32"', '"4.06"']
    status = by_address["/status"][0]
    assert status.types == "sss" and status.values.startswith('"active" ')
    node = by_address["node"][0]  # X32 answers /node with "node", no slash
    assert node.types == "s"
    assert node.values == '"/ch/01/mix ON   0.0 ON +0 OFF   -oo\n"'
    errors = sorted(d.values for d in by_address["/ls/error"])
    assert [e.split(" ")[0] for e in errors] == ['"/ch/01/mix/fader"', '"/nowhere"']
    assert by_address["/ls/errors"][0].values == "1"
    assert len(seen) == 8, seen


def test_oscdump_receives_query_replies(served):
    mixer = served.server.mixer
    mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/config/name": "Vox"})
    port = free_udp_port()
    with served.paused():
        for datagram in _liblo_queries():
            send_from(port, datagram, served.address)
        dump = Oscdump(port)
        dump.ready()
    with dump:
        _check_replies(dump)
    assert mixer.get("/ch/01/mix/fader") == 0.0


def test_oscdump_receives_xremote_pushes(served):
    srv = served.server
    port = free_udp_port()
    send_from(port, liblo_encode("/xremote"), served.address)
    wait_until(lambda: ("127.0.0.1", port) in srv.subscribers, what="the subscription")
    with Oscdump(port) as dump:
        dump.ready()
        # another client (oscsend, its own ephemeral port) changes things
        oscsend(served.port, "/ch/03/mix/fader", "f", 0.5)
        oscsend(served.port, "/ch/03/config/name", "s", "Bass")
        oscsend(served.port, "/bus/01/eq/2/g", "f", 1.0)
        # oscsend returns once its datagram is sent, not once it is handled
        wait_until(lambda: srv.stats["sets"] == 3, what="the three sets handled")
        # and a surface inside the engine (the console, a scene) too
        served.call(lambda: srv.mixer.set("/ch/04/mix/on", 0))
        wait_until(lambda: srv.mixer.get("/ch/04/mix/on") == 0)
        dump.wait_for(lambda d: d.address == "/ch/04/mix/on")
        got = [(d.address, d.types, d.values) for d in dump.messages()]
    assert got == [
        ("/ch/03/mix/fader", "f", "0.500000"),
        ("/ch/03/config/name", "s", '"Bass"'),
        ("/bus/01/eq/2/g", "f", "1.000000"),
        ("/ch/04/mix/on", "i", "0"),
    ]


def test_oscdump_gets_nothing_without_subscription(served):
    port = free_udp_port()
    with Oscdump(port) as dump:
        dump.ready()
        oscsend(served.port, "/ch/03/mix/fader", "f", 0.5)
        wait_until(lambda: served.server.stats["sets"] == 1, what="the set handled")
        assert dump.messages() == []


# -- the real engine process -----------------------------------------------------


def test_engine_process_set_push_and_query(engine_proc):
    port = free_udp_port()
    send_from(port, liblo_encode("/xremote"), ("127.0.0.1", engine_proc.port))
    with Oscdump(port) as dump:
        dump.ready()
        oscsend(engine_proc.port, "/ch/01/mix/fader", "f", 0.75)
        oscsend(engine_proc.port, "/bus/02/mix/on", "i", 0)
        push = dump.wait_for(lambda d: d.address == "/ch/01/mix/fader")
        assert (push.types, push.values) == ("f", "0.750000")
        push = dump.wait_for(lambda d: d.address == "/bus/02/mix/on")
        assert (push.types, push.values) == ("i", "0")
    with Client(engine_proc.port) as c:
        assert c.query("/ch/01/mix/fader") == 0.75
        assert c.query("/bus/02/mix/on") == 0
        assert c.request("/xinfo").args[2:] == ("X32", "4.06")


def test_engine_process_answers_liblo_queries(engine_proc):
    with Client(engine_proc.port) as c:
        c.send("/ch/01/mix/fader", 0.75)
        c.send("/ch/01/config/name", "Vox")
        assert c.query("/ch/01/config/name") == "Vox"
    port = free_udp_port()
    with engine_proc.stopped():
        for datagram in _liblo_queries():
            send_from(port, datagram, ("127.0.0.1", engine_proc.port))
        dump = Oscdump(port)
        dump.ready()
    with dump:
        _check_replies(dump)


def test_engine_ctrl_c_as_soon_as_osc_answers():
    """Ctrl-C while zeroconf still registers (~2 s) stops the engine cleanly.
    (It used to end in a KeyboardInterrupt traceback, exit -2.)"""
    proc = EngineProcess(inputs=N_IN, buses=N_BUS, discovery=True)
    proc.launch()
    try:
        assert proc.answers(), proc.stderr
        code = proc.stop()
    finally:
        proc.stop()
    assert code == 0, proc.stderr
    assert "Traceback" not in proc.stderr

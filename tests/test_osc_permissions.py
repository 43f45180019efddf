"""Who may do what over OSC: performers, read-only and viewer clients, pairing
codes, the show configuration, and per-client rate limits.

Most tests drive ``OscServer.handle_datagram`` directly (clients are just
``(ip, port)`` pairs there); the socket tests bind loopback addresses
127.0.0.2, 127.0.0.3, ... so each is a distinct client IP with its own role.
"""

import subprocess
import time
from pathlib import Path

import pytest
from osc_helpers import (
    DEADLINE,
    Client,
    EngineProcess,
    ServerThread,
    bundle,
    fake_meters,
    free_udp_port,
    msg,
    other_value,
    parse,
    parse_meter_blob,
    wait_until,
)

from livesound.audio.settings import ConfigError
from livesound.control.offline import BlockEngine
from livesound.osc.roles import (
    ENGINEER,
    READONLY,
    Permissions,
    Role,
    load_permissions,
    parse_role,
)
from livesound.osc.server import OscServer

N_IN, N_BUS = 8, 4
SHOW = """\
[osc]
default_role = "readonly"
clients = [
  { address = "10.0.0.9", role = "engineer" },
  { address = "10.0.0.2", role = "performer:2" },
  { address = "10.0.0.7", role = "viewer" },
  { address = "127.0.0.1", role = "engineer" },
  { address = "127.0.0.2", role = "performer:2" },
  { address = "127.0.0.4", role = "viewer" },
]
pairing = [
  { code = "4711", role = "performer:3" },
  { code = "look", role = "viewer" },
]
"""
ENG, PERF2, VIEWER, STRANGER = (
    ("10.0.0.9", 9000),
    ("10.0.0.2", 9000),
    ("10.0.0.7", 9000),
    ("10.0.0.66", 9000),
)


@pytest.fixture(scope="module")
def engine():
    return BlockEngine(n_in=N_IN, n_bus=N_BUS, phys_in=8, phys_out=8)


@pytest.fixture
def show_file(tmp_path) -> Path:
    path = tmp_path / "show.toml"
    path.write_text(SHOW)
    return path


@pytest.fixture
def srv(engine, show_file):
    mixer = engine.mixer
    mixer.set_many(mixer.registry.defaults())
    server = OscServer(
        mixer,
        load_permissions(show_file, N_BUS),
        meters=lambda: fake_meters(N_IN, N_BUS),
    )
    # These tests read the reasons: the clients ask for /ls/error, which the
    # X32's own addresses do not send otherwise.
    for client in (ENG, PERF2, VIEWER, STRANGER):
        server.handle_datagram(msg("/ls/errors", 1), client)
    yield server
    server.close()


def ask(srv, addr, address, *args, now=None):
    """Replies (parsed) to one message from ``addr``."""
    replies = srv.handle_datagram(msg(address, *args), addr, now)
    assert all(to == addr for _, to in replies)
    return [parse(r) for r, _ in replies]


def try_write(srv, addr, address):
    """Send a valid change of ``address`` from ``addr``; return the replies and
    the addresses whose value changed."""
    mixer = srv.mixer
    before = mixer.snapshot()
    replies = ask(
        srv, addr, address, other_value(mixer.registry[address], before[address])
    )
    after = mixer.snapshot()
    return replies, {a for a in after if after[a] != before[a]}


# -- performers ------------------------------------------------------------------

PERFORMER_2_MAY = [
    "/ch/01/mix/02/level",
    "/ch/08/mix/02/level",
    "/ch/03/mix/02/on",
    "/bus/02/mix/fader",
    "/bus/02/mix/on",
    "/bus/02/eq/on",
    "/bus/02/eq/3/g",
    "/bus/02/eq/3/f",
    "/bus/02/eq/1/type",
    "/bus/02/eq/6/q",
    "/bus/02/mix/pan",  # the balance of an in-ear pair it owns
]
PERFORMER_2_MAY_NOT = [
    "/bus/02/mix/01/level",  # its own bus's send into a matrix: the engineer's
    "/bus/02/mix/01/on",
    "/mtx/01/mix/fader",  # the matrices are the engineer's
    "/mtx/01/mix/on",
    "/mtx/02/eq/2/g",
    "/ls/mtx/01/limiter/ceiling",
    "/ls/mtx/01/delay/time",
    "/main/st/mix/01/level",
    "/main/m/mix/fader",  # the mono bus and what feeds it
    "/ch/01/mix/mono",
    "/ch/01/mix/mlevel",
    "/main/st/mix/pan",
    "/ch/01/mix/03/level",  # another performer's mix
    "/ch/01/mix/01/level",
    "/ch/01/mix/01/pan",
    "/ch/01/mix/03/type",
    "/bus/03/mix/fader",
    "/bus/01/mix/on",
    "/bus/03/eq/3/g",
    "/main/st/mix/fader",  # the PA
    "/main/st/mix/on",
    "/main/st/eq/1/g",
    "/ch/01/mix/fader",  # a channel fader
    "/ch/01/mix/on",  # mute
    "/ch/01/mix/st",
    "/ch/01/preamp/trim",
    "/ch/01/eq/2/g",
    "/ch/01/config/name",
    "/bus/02/config/name",
    "/ls/bus/02/limiter/ceiling",  # not even its own limiter
    "/ls/bus/02/limiter/on",
    "/ls/main/st/limiter/ceiling",
    "/ls/main/st/notch/01/on",
    "/ls/osc/on",  # the oscillator
    "/config/osc/dest",
    "/dca/1/fader",  # DCAs and mute groups act on every member
    "/dca/1/on",
    "/dca/1/config/name",
    "/config/mute/1",
    "/ch/01/grp/dca",  # nor membership, of any strip, its own mix's neither
    "/ch/01/grp/mute",
    "/bus/02/grp/dca",
    "/bus/02/grp/mute",
    "/config/buslink/1-2",
    "/-stat/solosw/01",
]


@pytest.mark.parametrize("address", PERFORMER_2_MAY)
def test_performer_writes_own_mix(srv, address):
    replies, changed = try_write(srv, PERF2, address)
    assert replies == []
    assert changed == {address}
    assert srv.stats["sets"] == 1 and srv.stats["refused"] == 0


@pytest.mark.parametrize("address", PERFORMER_2_MAY_NOT)
def test_performer_write_elsewhere_refused(srv, address):
    replies, changed = try_write(srv, PERF2, address)
    assert changed == set()
    assert len(replies) == 1
    error = replies[0]
    assert (error.address, error.tags) == ("/ls/error", "ss")
    assert error.args[0] == address
    assert "performer:2" in error.args[1]
    assert srv.stats["refused"] == 1 and srv.stats["sets"] == 0


def test_performer_reads_everything(srv):
    srv.mixer.set("/main/st/mix/fader", -10.0)
    (reply,) = ask(srv, PERF2, "/main/st/mix/fader")
    assert (reply.address, reply.args) == ("/main/st/mix/fader", (0.5,))
    (node,) = ask(srv, PERF2, "/node", "bus/01/mix")
    assert node.address == "node"


def test_engineer_writes_anything(srv):
    for address in PERFORMER_2_MAY_NOT:
        replies, changed = try_write(srv, ENG, address)
        assert replies == [] and changed == {address}, address


def test_performer_refusal_in_a_bundle_refuses_only_that_message(srv):
    mixer = srv.mixer
    data = bundle(
        msg("/bus/02/mix/fader", 0.5),
        msg("/main/st/mix/fader", 0.0),
        msg("/ch/02/mix/02/level", 0.75),
    )
    replies = [parse(r) for r, _ in srv.handle_datagram(data, PERF2)]
    assert [(r.address, r.args[0]) for r in replies] == [
        ("/ls/error", "/main/st/mix/fader")
    ]
    assert mixer.get("/bus/02/mix/fader") == -10.0
    assert mixer.get("/ch/02/mix/02/level") == 0.0
    assert mixer.get("/main/st/mix/fader") == 0.0  # default, untouched


# -- read-only, viewer, unknown clients --------------------------------------------


def test_unknown_client_gets_default_readonly(srv):
    assert srv.permissions.role_for(STRANGER[0]) == READONLY
    (reply,) = ask(srv, STRANGER, "/ch/01/mix/on")
    assert (reply.address, reply.args) == ("/ch/01/mix/on", (1,))
    for address in ["/ch/01/mix/fader", "/bus/02/mix/fader", "/ch/01/mix/02/level"]:
        replies, changed = try_write(srv, STRANGER, address)
        assert changed == set()
        assert [(r.address, r.args[0]) for r in replies] == [("/ls/error", address)]
        assert "readonly" in replies[0].args[1]
    assert ask(srv, STRANGER, "/xremote") == []
    assert STRANGER in srv.subscribers


def test_default_role_from_config(engine, tmp_path):
    path = tmp_path / "show.toml"
    path.write_text('[osc]\ndefault_role = "viewer"\n')
    server = OscServer(engine.mixer, load_permissions(path, N_BUS))
    try:
        ask(server, STRANGER, "/ls/errors", 1)
        (reply,) = ask(server, STRANGER, "/ch/01/mix/on")
        assert reply.address == "/ls/error" and "viewer" in reply.args[1]
        # without a file: this machine is the engineer, everyone else read-only
        perms = load_permissions(None, N_BUS)
        assert perms.role_for("127.0.0.1") == ENGINEER
        assert perms.role_for("10.1.2.3") == READONLY
    finally:
        server.close()


def test_viewer_gets_meters_only(srv):
    mixer = srv.mixer
    before = mixer.snapshot()
    for address in ["/ch/01/mix/fader", "/main/st/mix/on"]:
        (reply,) = ask(srv, VIEWER, address)  # query
        assert (reply.address, reply.args[0]) == ("/ls/error", address)
        replies, changed = try_write(srv, VIEWER, address)
        assert changed == set() and replies[0].address == "/ls/error"
    (reply,) = ask(srv, VIEWER, "/node", "ch/01/mix")
    assert reply.address == "/ls/error"
    assert ask(srv, VIEWER, "/xinfo")[0].address == "/xinfo"
    assert ask(srv, VIEWER, "/status")[0].address == "/status"
    assert ask(srv, VIEWER, "/meters", "/meters/1") == []
    assert (VIEWER, "/meters/1") in srv.feeds
    # subscribed to /xremote, a viewer still hears no parameter changes
    assert ask(srv, VIEWER, "/xremote") == []
    mixer.set("/ch/01/mix/fader", 0.0)
    assert srv.stats["pushes"] == 0
    assert ask(srv, STRANGER, "/xremote") == []
    mixer.set("/ch/01/mix/fader", -5.0)
    assert srv.stats["pushes"] == 1  # the read-only client, not the viewer
    assert mixer.snapshot() == {**before, "/ch/01/mix/fader": -5.0}


def test_viewer_over_socket_gets_meter_blobs_but_no_values(engine, show_file):
    server = OscServer(
        engine.mixer,
        load_permissions(show_file, N_BUS),
        meters=lambda: fake_meters(N_IN, N_BUS),
    )
    with ServerThread(server) as st, Client(st.port, ip="127.0.0.4") as viewer:
        viewer.send("/meters", "/meters/1")
        blob = viewer.recv()
        assert (blob.address, blob.tags) == ("/meters/1", "b")
        assert len(parse_meter_blob(blob.arg)) == 96  # the X32's slot count
        viewer.send("/unsubscribe")
        wait_until(lambda: not st.call(lambda: server.feeds), what="the unsubscription")
        assert viewer.request("/ls/errors", 1).args == (1,)
        reply = viewer.request("/ch/01/mix/fader")
        assert (reply.address, reply.args[0]) == ("/ls/error", "/ch/01/mix/fader")


# -- pairing ---------------------------------------------------------------------


def test_pairing_code_grants_role(srv):
    tablet = ("10.0.0.80", 50000)
    for client in (tablet, ("10.0.0.81", 50000)):
        ask(srv, client, "/ls/errors", 1)
    replies, changed = try_write(srv, tablet, "/bus/03/mix/fader")
    assert changed == set() and replies[0].address == "/ls/error"
    now = time.time()
    (reply,) = ask(srv, tablet, "/ls/pair", "1234", now=now)  # wrong code
    assert reply.address == "/ls/error" and "pairing code" in reply.args[1]
    assert srv.permissions.role_for(tablet[0]) == READONLY
    # a wrong code locks the address out for a moment
    (reply,) = ask(srv, tablet, "/ls/pair", "4711", now=now + 0.6)
    assert (reply.address, reply.args) == ("/ls/pair", ("performer:3",))
    assert srv.permissions.role_for(tablet[0]) == Role("performer", 3)
    for address in ["/bus/03/mix/fader", "/ch/05/mix/03/level", "/ch/01/mix/03/pan"]:
        replies, changed = try_write(srv, tablet, address)
        assert replies == [] and changed == {address}
    # the pairing holds for that device (its IP), from any port, and for no one else
    replies, changed = try_write(srv, (tablet[0], 50001), "/bus/03/eq/2/g")
    assert changed == {"/bus/03/eq/2/g"}
    for who, address in [(tablet, "/bus/02/mix/fader"), (tablet, "/main/st/mix/on"),
                         (("10.0.0.81", 50000), "/bus/03/mix/fader")]:  # fmt: skip
        replies, changed = try_write(srv, who, address)
        assert changed == set() and replies[0].address == "/ls/error"


def test_pairing_a_viewer_code(srv):
    tablet = ("10.0.0.90", 1)
    ask(srv, tablet, "/ls/errors", 1)
    assert ask(srv, tablet, "/ch/01/mix/on")[0].address == "/ch/01/mix/on"
    assert ask(srv, tablet, "/ls/pair", "look")[0].args == ("viewer",)
    assert ask(srv, tablet, "/ch/01/mix/on")[0].address == "/ls/error"


# -- the show configuration -------------------------------------------------------


def test_show_config_loads(show_file):
    perms = load_permissions(show_file, N_BUS)
    assert perms.default == READONLY
    assert perms.role_for("10.0.0.9") == ENGINEER
    assert perms.role_for("10.0.0.2") == Role("performer", 2)
    assert perms.role_for("10.0.0.7") == Role("viewer")
    assert perms.role_for("192.168.1.1") == READONLY
    assert perms.by_code == {"4711": Role("performer", 3), "look": Role("viewer")}
    assert str(Role("performer", 3)) == "performer:3"


@pytest.mark.parametrize(
    "text, role",
    [
        ("engineer", ENGINEER),
        ("readonly", READONLY),
        ("viewer", Role("viewer")),
        ("performer:1", Role("performer", 1)),
        ("performer:16", Role("performer", 16)),
        (" performer:4 ", Role("performer", 4)),
    ],
)
def test_parse_role(text, role):
    assert parse_role(text, 16) == role


@pytest.mark.parametrize(
    "text",
    ["", "god", "Engineer", "performer", "performer:", "performer:0", "performer:17",
     "performer:x", "performer:-1", "readonly:2", "viewer:1", "engineer:1"],
)  # fmt: skip
def test_parse_role_refuses(text):
    with pytest.raises(ConfigError, match="role"):
        parse_role(text, 16)


BAD_CONFIGS = {
    "syntax": "[osc\ndefault_role = 'readonly'\n",
    "bad default": '[osc]\ndefault_role = "admin"\n',
    "default not text": "[osc]\ndefault_role = 5\n",
    "mix beyond buses": '[osc]\nclients = [{address = "10.0.0.2", role = "performer:5"}]\n',
    "no role": '[osc]\nclients = [{address = "10.0.0.2"}]\n',
    "no address": '[osc]\nclients = [{role = "engineer"}]\n',
    "no code": '[osc]\npairing = [{role = "engineer"}]\n',
    "bad pairing role": '[osc]\npairing = [{code = "1", role = "root"}]\n',
    "clients not a list": '[osc]\nclients = "10.0.0.2"\n',
    "entry not a table": "[osc]\nclients = [1]\n",
    "osc not a table": "osc = 5\n",
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_bad_show_config_raises_config_error_with_file_name(tmp_path, name):
    path = tmp_path / "my-show.toml"
    path.write_text(BAD_CONFIGS[name])
    with pytest.raises(ConfigError) as info:
        load_permissions(path, N_BUS)
    assert str(path) in str(info.value)


def test_missing_show_config_names_the_file(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match="nowhere.toml"):
        load_permissions(path, N_BUS)


# -- over a socket, in the real engine process --------------------------------------


def test_engine_refuses_bad_show_config(tmp_path):
    path = tmp_path / "broken-show.toml"
    path.write_text(BAD_CONFIGS["bad default"])
    proc = EngineProcess("--show-config", str(path), inputs=N_IN, buses=N_BUS)
    result = subprocess.run(
        proc.command(free_udp_port()), capture_output=True, text=True, timeout=DEADLINE
    )
    assert result.returncode == 2
    assert "broken-show.toml" in result.stderr


def test_engine_process_performer_permissions(show_file):
    proc = EngineProcess("--show-config", str(show_file), inputs=N_IN, buses=N_BUS)
    proc.start()
    try:
        with (
            Client(proc.port, ip="127.0.0.1") as eng,
            Client(proc.port, ip="127.0.0.2") as perf,
            Client(proc.port, ip="127.0.0.3") as stranger,
        ):
            for client in (perf, stranger):  # to read the reasons
                assert client.request("/ls/errors", 1).args == (1,)
            perf.send("/ch/01/mix/02/level", 0.75)
            perf.send("/bus/02/eq/2/g", 1.0)
            wait_until(lambda: eng.query("/bus/02/eq/2/g") == 1.0, what="the EQ")
            assert eng.query("/ch/01/mix/02/level") == 0.75
            for address in ["/main/st/mix/fader", "/main/st/mix/on",
                            "/ch/01/mix/03/level", "/ch/01/mix/fader"]:  # fmt: skip
                before = eng.query(address)
                reply = perf.request(address, ("f" if "on" not in address else "i", 0))
                assert (reply.address, reply.args[0]) == ("/ls/error", address)
                assert eng.query(address) == before
            reply = stranger.request("/bus/03/mix/fader", 0.1)
            assert reply.address == "/ls/error" and "readonly" in reply.args[1]
            assert stranger.request("/ls/pair", "4711").args == ("performer:3",)
            stranger.send("/bus/03/mix/fader", 0.1)
            wait_until(lambda: eng.query("/bus/03/mix/fader") == pytest.approx(0.1),
                       what="the paired performer's fader")  # fmt: skip
    finally:
        assert proc.stop() == 0


# -- rate limits ----------------------------------------------------------------------


def test_flooding_client_is_limited_others_pass(engine):
    srv = OscServer(
        engine.mixer, Permissions(default=ENGINEER), rate=2000.0, burst=500.0
    )
    try:
        flood, calm = ("10.0.0.50", 1), ("10.0.0.51", 1)
        now = time.time()
        srv.handle_datagram(msg("/ls/errors", 1), flood, now - 1.0)
        sets = srv.stats["sets"]
        replies = []
        for k in range(5000):
            data = msg("/ch/01/mix/fader", (k % 100) / 100)
            replies += [parse(r) for r, _ in srv.handle_datagram(data, flood, now)]
        passed = srv.stats["sets"] - sets
        assert passed == 500  # the burst, and no time has passed
        assert srv.stats["rate_limited"] == 4500
        # the flooder is told, once (not once per message)
        assert [(r.address, r.args[0]) for r in replies] == [
            ("/ls/error", "/ch/01/mix/fader")
        ]
        assert "rate" in replies[0].args[1]
        answered = [
            srv.handle_datagram(msg("/ch/02/mix/on"), calm, now) for _ in range(100)
        ]
        assert all(len(r) == 1 for r in answered)
        # bundles count message by message
        data = bundle(*[msg("/ch/01/mix/fader", 0.5)] * 100)
        assert srv.handle_datagram(data, flood, now) == []
        assert srv.stats["rate_limited"] == 4600
        # the bucket refills at ``rate``: 0.1 s later, 200 more (less rounding)
        for _ in range(300):
            srv.handle_datagram(msg("/ch/01/mix/fader", 0.5), flood, now + 0.1)
        assert srv.stats["sets"] - sets in (699, 700)
    finally:
        srv.close()


def test_flooding_client_over_socket(engine):
    mixer = engine.mixer
    # Everyone may write, but no one is listed: the normal limit for all.
    srv = OscServer(mixer, Permissions(default=ENGINEER), rate=2000.0, burst=500.0)
    with (
        ServerThread(srv) as st,
        Client(st.port, ip="127.0.0.6") as flood,
        Client(st.port, ip="127.0.0.5") as calm,
    ):
        for k in range(50):  # 5000 messages in 50 datagrams
            flood.send_raw(bundle(*[msg("/ch/01/mix/fader", k / 50)] * 100))
        for _ in range(20):
            assert calm.query("/ch/01/mix/on") in (0, 1)
        wait_until(lambda: srv.stats["datagrams"] >= 70, what="all datagrams")
        assert srv.stats["rate_limited"] > 2000
        assert srv.stats["messages"] < 3000


def test_clock_step_back_does_not_lock_client_out(engine):
    """A wall clock stepped back (NTP) must not lock a client out (found and fixed)."""
    srv = OscServer(engine.mixer, Permissions(default=ENGINEER))
    try:
        addr, now = ("10.0.0.50", 1), time.time()
        assert len(srv.handle_datagram(msg("/ch/01/mix/on"), addr, now)) == 1
        # the wall clock steps back by 5 s; one query is well within any budget
        (reply,) = srv.handle_datagram(msg("/ch/01/mix/on"), addr, now - 5)
        assert parse(reply[0]).address == "/ch/01/mix/on"
    finally:
        srv.close()


def test_future_bundles_are_rate_limited(engine):
    """Far-future bundles are refused with an error, but within the rate limit."""
    srv = OscServer(engine.mixer, Permissions(default=ENGINEER))
    try:
        now = time.time()
        far = int((now + 2208988800 + 3600) * 2**32)
        data = bundle(msg("/xinfo"), timetag=far)
        replies = sum(
            len(srv.handle_datagram(data, ("10.0.0.50", 1), now)) for _ in range(5000)
        )
        assert replies <= 600  # the burst (500) at most, like any other message
    finally:
        srv.close()


README_SHOW = """\
[osc]
default_role = "readonly"
clients = [
  { address = "192.168.1.10", role = "engineer" },
  { address = "192.168.1.21", role = "performer:1" },
]
pairing = [{ code = "4711", role = "performer:2" }]
"""


def test_engine_machine_stays_engineer_with_show_config(tmp_path):
    path = tmp_path / "show.toml"
    path.write_text(README_SHOW)
    assert load_permissions(path, N_BUS).role_for("127.0.0.1") == ENGINEER


def test_pairing_code_cannot_be_brute_forced(engine, tmp_path):
    path = tmp_path / "show.toml"
    path.write_text('[osc]\npairing = [{ code = "8352", role = "engineer" }]\n')
    srv = OscServer(engine.mixer, load_permissions(path, N_BUS))
    try:
        now = time.time()
        for code in range(10_000):
            addr = ("10.0.0.66", 40000 + code % 1000)  # spread over ports
            replies = srv.handle_datagram(msg("/ls/pair", f"{code:04d}"), addr, now)
            if replies and parse(replies[0][0]).address == "/ls/pair":
                break
        assert srv.permissions.role_for("10.0.0.66") != ENGINEER
    finally:
        srv.close()

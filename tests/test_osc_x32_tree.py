"""The X32's whole tree on the wire: what a client that reads every address at
connect gets back, ``/node`` text, unknown addresses, subscriptions and meter
banks with their time factor.

The address list here is written from the X32 protocol's facts (the
unofficial X32/M32 OSC protocol document and X32 scene files), not from
livesound's own tree, so a missing or mistyped address fails.
"""

import socket
import struct
import time

import numpy as np
import pytest
from osc_helpers import (
    Client,
    ServerThread,
    fake_meters,
    msg,
    parse,
    parse_meter_blob,
    wait_until,
)

from livesound.audio.layout import matrix_outputs, mono_output
from livesound.control.offline import BlockEngine
from livesound.osc.roles import ENGINEER, Permissions
from livesound.osc.server import OscServer
from livesound.scenes import remote
from livesound.scenes.manager import SceneManager

N_IN, N_BUS = 32, 16
ME = ("10.0.0.1", 5000)

# -- the X32's address list, from the protocol's facts -----------------------------

# OSC type of each X32 parameter kind: enum, int and bitmap travel as ,i;
# linf, logf and level as ,f; strings as ,s.
_BAND = {"type": "i", "f": "f", "g": "f", "q": "f"}
_EQ4 = {f"eq/{b}/{p}": t for b in range(1, 5) for p, t in _BAND.items()}
_EQ6 = {f"eq/{b}/{p}": t for b in range(1, 7) for p, t in _BAND.items()}
_DYN = {f"dyn/{p}": t for p, t in [
    ("on", "i"), ("mode", "i"), ("det", "i"), ("env", "i"), ("thr", "f"),
    ("ratio", "i"), ("knee", "f"), ("mgain", "f"), ("attack", "f"), ("hold", "f"),
    ("release", "f"), ("pos", "i"), ("keysrc", "i"), ("mix", "f"), ("auto", "i"),
    ("filter/on", "i"), ("filter/type", "i"), ("filter/f", "f")]}  # fmt: skip
_INSERT = {"insert/on": "i", "insert/pos": "i", "insert/sel": "i"}
_GRP = {"grp/dca": "i", "grp/mute": "i"}
_CONFIG = {"config/name": "s", "config/icon": "i", "config/color": "i"}
_MIX = {"mix/on": "i", "mix/fader": "f", "mix/st": "i", "mix/pan": "f",
        "mix/mono": "i", "mix/mlevel": "f"}  # fmt: skip


def _sends(n: int) -> dict[str, str]:
    out = {}
    for k in range(1, n + 1):
        out |= {f"mix/{k:02d}/on": "i", f"mix/{k:02d}/level": "f"}
        if k % 2:
            out |= {f"mix/{k:02d}/pan": "f", f"mix/{k:02d}/type": "i"}
    return out


CHANNEL = {
    **_CONFIG, "config/source": "i", **_GRP,
    "preamp/trim": "f", "preamp/invert": "i", "preamp/hpon": "i",
    "preamp/hpslope": "i", "preamp/hpf": "f", "delay/on": "i", "delay/time": "f",
    **_INSERT, "gate/on": "i", "gate/mode": "i", "gate/thr": "f", "gate/range": "f",
    "gate/attack": "f", "gate/hold": "f", "gate/release": "f", "gate/keysrc": "i",
    "gate/filter/on": "i", "gate/filter/type": "i", "gate/filter/f": "f",
    **_DYN, "eq/on": "i", **_EQ4, **_MIX, **_sends(16),
    "automix/group": "i", "automix/weight": "f",
}  # fmt: skip
AUXIN = {**_CONFIG, "config/source": "i", "preamp/trim": "f", "preamp/invert": "i",
         "eq/on": "i", **_EQ4, **_MIX, **_sends(16), **_GRP}  # fmt: skip
FXRTN = {**_CONFIG, "eq/on": "i", **_EQ4, **_MIX, **_sends(16), **_GRP}
BUS = {**_CONFIG, **_DYN, **_INSERT, "eq/on": "i", **_EQ6, **_MIX, **_sends(6), **_GRP}
MTX = {**_CONFIG, "preamp/invert": "i", **_DYN, **_INSERT, "eq/on": "i", **_EQ6,
       "mix/on": "i", "mix/fader": "f", **_GRP}  # fmt: skip
MAIN_ST = {**_CONFIG, **_DYN, **_INSERT, "eq/on": "i", **_EQ6, "mix/on": "i",
           "mix/fader": "f", "mix/pan": "f", **_sends(6), **_GRP}  # fmt: skip
MAIN_M = {k: t for k, t in MAIN_ST.items() if k != "mix/pan"}
STAT = {"selidx": "i", "chfaderbank": "i", "grpfaderbank": "i", "sendsonfader": "i",
        "bussendbank": "i", "eqband": "i", "solo": "i", "keysolo": "i",
        "userbank": "i", "autosave": "i", "lock": "i", "usbmounted": "i",
        "remote": "i", "tape/state": "i", "tape/file": "s", "tape/etime": "i",
        "tape/rtime": "i", "osc/on": "i", "talk/A": "i", "talk/B": "i",
        "screen/screen": "i", **{f"solosw/{k:02d}": "i" for k in range(1, 81)}}  # fmt: skip
PREFS = {"style": "s", "bright": "f", "lcdcont": "f", "ledbright": "f", "lamp": "f",
         "lampon": "i", "clockrate": "i", "clocksource": "i", "confirm_general": "i",
         "confirm_overwrite": "i", "confirm_sceneload": "i", "viewrtn": "i",
         "selfollowsbank": "i", "scene_advance": "i", "safe_masterlevels": "i",
         "haflags": "i", "autosel": "i", "show_control": "i", "clockmode": "i",
         "hardmute": "i", "dcamute": "i", "invertmutes": "i", "name": "s",
         "rec_control": "i", "ip/dhcp": "i",
         **{f"ip/addr/{k}": "i" for k in range(4)},
         **{f"iQ/{k:02d}/iQmodel": "i" for k in range(1, 17)}}  # fmt: skip
SHOW = {"prepos/current": "i", "showfile/show/name": "s",
        **{f"showfile/scene/{k:03d}/{p}": t for k in range(100)
           for p, t in [("name", "s"), ("notes", "s"), ("hasdata", "i")]}}  # fmt: skip


def x32_addresses() -> dict[str, str]:
    """Every address an X32 client reads at connect, with its OSC type."""
    tree: dict[str, str] = {}

    def add(prefix: str, leaves: dict[str, str]) -> None:
        tree.update({f"{prefix}/{leaf}": tag for leaf, tag in leaves.items()})

    for n in range(1, 33):
        add(f"/ch/{n:02d}", CHANNEL)
    for n in range(1, 9):
        add(f"/auxin/{n:02d}", AUXIN)
        add(f"/fxrtn/{n:02d}", FXRTN)
        add(f"/dca/{n}", {"on": "i", "fader": "f", **_CONFIG})
    for n in range(1, 17):
        add(f"/bus/{n:02d}", BUS)
    for n in range(1, 7):
        add(f"/mtx/{n:02d}", MTX)
    add("/main/st", MAIN_ST)
    add("/main/m", MAIN_M)
    for n in range(128):
        add(f"/headamp/{n:03d}", {"gain": "f", "phantom": "i"})
    add("/config", {f"mute/{k}": "i" for k in range(1, 7)}
        | {f"chlink/{k}-{k + 1}": "i" for k in range(1, 32, 2)}
        | {f"buslink/{k}-{k + 1}": "i" for k in range(1, 16, 2)}
        | {"solo/level": "f", "solo/chmode": "i", "osc/level": "f",
           "osc/f1": "f", "osc/type": "i"})  # fmt: skip
    add("/-stat", STAT)
    add("/-prefs", PREFS)
    add("/-show", SHOW)
    return tree


def read_tree(port: int, addresses: list[str], window: int = 64) -> dict:
    """Ask for every address like an X32 client at connect, ``window``
    requests in flight; returns address -> (type tags, args) replied."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2.0)
    got: dict[str, tuple] = {}
    try:
        sock.sendto(msg("/ls/errors", 1), ("127.0.0.1", port))  # errors, if any
        assert parse(sock.recv(65536)).args == (1,)
        for start in range(0, len(addresses), window):
            batch = addresses[start : start + window]
            for address in batch:
                sock.sendto(msg(address), ("127.0.0.1", port))
            for _ in batch:
                try:
                    reply = parse(sock.recv(65536))
                except TimeoutError:
                    break
                got[reply.address] = (reply.tags, reply.args)
    finally:
        sock.close()
    return got


@pytest.fixture(scope="module")
def engine():
    return BlockEngine(n_in=N_IN, n_bus=N_BUS, phys_in=8, phys_out=8)


@pytest.fixture
def srv(engine):
    mixer = engine.mixer
    mixer.set_many(mixer.registry.defaults())
    server = OscServer(mixer, Permissions(default=ENGINEER), rate=1e9, burst=1e9,
                       meters=lambda: fake_meters(N_IN, N_BUS, seed=5))  # fmt: skip
    yield server
    server.close()


def send(srv, address, *args, addr=ME, now=None):
    return [parse(r) for r, _ in srv.handle_datagram(msg(address, *args), addr, now)]


def node(srv, path: str) -> str:
    (reply,) = send(srv, "/node", path)
    assert (reply.address, reply.tags) == ("node", "s")
    assert reply.arg.endswith("\n")
    return reply.arg[:-1]


# -- a client reads the whole tree -----------------------------------------------------


def test_every_x32_address_answers_with_its_type(srv, tmp_path):
    scenes = SceneManager(srv.mixer, tmp_path)
    remote.register(srv, scenes, lambda: 0.0)
    scenes.save("Opener")
    tree = x32_addresses()
    assert len(tree) > 1700
    with ServerThread(srv) as st:
        got = read_tree(st.port, list(tree))
    assert "/ls/error" not in got
    missing = [a for a in tree if a not in got]
    assert missing == [], f"{len(missing)} unanswered, e.g. {missing[:5]}"
    wrong = {a: got[a][0] for a, tag in tree.items() if got[a][0] != tag}
    assert wrong == {}, (
        f"{len(wrong)} of the wrong type, e.g. {list(wrong.items())[:5]}"
    )
    floats = [got[a][1][0] for a, tag in tree.items() if tag == "f"]
    assert all(0.0 <= f <= 1.0 for f in floats)
    # X32 defaults, and livesound's own values where it has them
    assert got["/ch/01/config/color"] == ("i", (3,))  # yellow
    assert got["/dca/1/on"] == ("i", (1,))
    assert got["/ch/05/config/source"] == ("i", (5,))
    assert got["/-show/showfile/scene/000/name"] == ("s", ("Opener",))
    assert got["/-show/showfile/scene/001/hasdata"] == ("i", (0,))
    assert got["/-show/showfile/show/name"] == ("s", (tmp_path.name,))
    assert got["/-prefs/ip/addr/0"] == ("i", (127,))
    assert got["/ch/07/config/name"] == ("s", ("Ch 7",))


def test_writes_to_x32_only_addresses_are_taken_quietly(srv):
    before = srv.mixer.snapshot()
    for address, value in [("/mtx/01/dyn/on", 1), ("/fxrtn/01/mix/fader", 0.75),
                           ("/headamp/000/phantom", 1), ("/bus/01/mix/mlevel", 0.2),
                           ("/-stat/tape/state", 2)]:  # fmt: skip
        assert send(srv, address, value) == []
        (reply,) = send(srv, address)  # still the X32's default: no effect
        assert reply.args[0] != value
    assert srv.mixer.snapshot() == before
    assert srv.stats["x32_compat_writes"] == 5


def test_colours_and_icons_are_stored(srv):
    assert send(srv, "/ch/04/config/color", 9) == []
    assert send(srv, "/bus/02/config/icon", 42) == []
    assert send(srv, "/ch/04/config/color")[0].arg == 9
    assert srv.mixer.get("/bus/02/config/icon") == 42
    assert node(srv, "ch/04/config") == '/ch/04/config "Ch 4" 1 RDi 4'


def test_empty_names_are_accepted(srv):
    for address in ("/ch/01/config/name", "/bus/16/config/name"):
        assert send(srv, address, "") == []
        assert send(srv, address)[0].args == ("",)
    assert node(srv, "ch/01/config") == '/ch/01/config "" 1 YE 1'


# -- unknown addresses -------------------------------------------------------------------


def test_unknown_addresses_get_no_reply_and_are_counted(srv):
    for address in ("/ch/33/mix/fader", "/nowhere", "/ch/01/mix/fader/x", "/fx/9"):
        assert send(srv, address) == []
        assert send(srv, address, 0.5) == []
    assert send(srv, "/node", "nowhere") == []
    assert srv.stats["unknown"] == 9
    # /ls/ addresses are livesound's own: those are answered with the reason
    (error,) = send(srv, "/ls/nowhere")
    assert (error.address, error.args[0]) == ("/ls/error", "/ls/nowhere")
    # a client may ask for errors everywhere
    assert send(srv, "/ls/errors", 1)[0].args == (1,)
    (error,) = send(srv, "/nowhere")
    assert error.address == "/ls/error" and "unknown" in error.args[1]
    assert send(srv, "/ls/errors", 0)[0].args == (0,)
    assert send(srv, "/nowhere") == []
    (stats,) = send(srv, "/ls/stats")
    assert '"unknown": 12' in stats.arg


def test_unknown_addresses_over_a_socket_send_nothing(srv):
    with ServerThread(srv) as st, Client(st.port) as c:
        for address in ("/nowhere", "/ch/99/mix/fader", "/-stat/nothing"):
            c.send(address)
        c.send("/ch/01/mix/on")
        assert [(m.address, m.args) for m in c.recv_all(0.3)] == [
            ("/ch/01/mix/on", (1,))
        ]


# -- /node text --------------------------------------------------------------------------


def test_node_channel_mix_has_the_x32_fields(srv):
    srv.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/st": 0})
    # on, fader, LR, pan (signed), mono, mono level: as an X32 prints it
    assert node(srv, "ch/01/mix") == "/ch/01/mix ON   0.0 OFF +0 OFF   -oo"
    srv.mixer.set_many({"/ch/01/mix/fader": 2.1, "/ch/01/mix/pan": 20.0})
    assert node(srv, "ch/01/mix") == "/ch/01/mix ON  +2.1 OFF +20 OFF   -oo"
    srv.mixer.set_many({"/ch/01/mix/fader": -45.0, "/ch/01/mix/pan": -100.0})
    assert node(srv, "/ch/01/mix/") == "/ch/01/mix ON -45.0 OFF -100 OFF   -oo"


@pytest.mark.parametrize(
    "path, text",
    [
        ("ch/01/mix/01", "/ch/01/mix/01 ON   -oo +0 POST 0"),
        ("ch/01/mix/02", "/ch/01/mix/02 ON   -oo"),
        ("ch/01/grp", "/ch/01/grp %00000000 %000000"),
        ("ch/01/delay", "/ch/01/delay OFF   0.3"),
        ("ch/01/insert", "/ch/01/insert OFF POST OFF"),
        ("ch/01/gate/filter", "/ch/01/gate/filter OFF 3.0 990.9"),
        ("ch/01/automix", "/ch/01/automix OFF +0.0"),
        ("bus/01/mix/01", "/bus/01/mix/01 ON   -oo +0 POST 0"),
        ("main/st/mix", "/main/st/mix ON   0.0 +0"),
        ("dca/1", "/dca/1 ON   0.0"),  # livesound's DCAs start at 0 dB: no effect
        ("dca/1/config", '/dca/1/config "DCA 1" 1 YE'),
        ("headamp/000", "/headamp/000 +0.0 OFF"),
        ("config/mute", "/config/mute OFF OFF OFF OFF OFF OFF"),
        ("ch/01/mix/fader", "/ch/01/mix/fader   -oo"),  # a single leaf
        ("ch/01/mix/pan", "/ch/01/mix/pan +0"),
        ("-show/prepos/current", "/-show/prepos/current -1"),
        ("ch/02", '/ch/02/config "Ch 2" 1 YE 2'),  # a container: its first node
    ],
)
def test_node_formats(srv, path, text):
    assert node(srv, path) == text


def test_node_eq_dynamics_and_preamp(srv):
    srv.mixer.set_many({"/ch/02/eq/2/type": 2, "/ch/02/eq/2/f": 1970.0,
                        "/ch/02/eq/2/g": -3.75, "/ch/02/eq/2/q": 1.8,
                        "/ch/02/preamp/hpon": 1, "/ch/02/preamp/hpf": 79.0,
                        "/ch/02/dyn/on": 1, "/ch/02/dyn/thr": -26.0,
                        "/ch/02/dyn/mgain": 8.0, "/ch/02/dyn/attack": 71.0,
                        "/ch/02/dyn/release": 538.0})  # fmt: skip
    assert node(srv, "ch/02/eq/2") == "/ch/02/eq/2 PEQ 1k97 -3.75 1.8"
    assert node(srv, "ch/02/preamp") == "/ch/02/preamp +0.0 OFF ON 12  79"
    fields = node(srv, "ch/02/dyn").split()
    # on mode det env thr ratio knee mgain attack hold release pos keysrc mix auto
    assert len(fields) == 16
    assert fields[1:6] == ["ON", "COMP", "RMS", "LOG", "-26.0"]
    assert fields[8:10] == ["8.00", "71"] and fields[11] == "538"


def test_input_delay_is_linear_on_the_wire(srv):
    """The X32's /ch/NN/delay/time is linf 0.3..500 ms."""
    assert send(srv, "/ch/03/delay/time", 0.5) == []
    assert srv.mixer.get("/ch/03/delay/time") == pytest.approx(250.15)
    srv.mixer.set("/ch/03/delay/time", 100.0)
    assert send(srv, "/ch/03/delay/time")[0].arg == pytest.approx(99.7 / 499.7)


def test_node_solo_and_stat(srv):
    srv.mixer.set("/-stat/solosw/03", 1)
    fields = node(srv, "-stat/solosw").split()[1:]
    assert len(fields) == 80 and fields[2] == "ON" and fields.count("ON") == 1
    stat = node(srv, "-stat").split()
    assert stat[1] == "Ch01" and stat[7] == "ON"  # selidx, then solo is lit
    assert send(srv, "/-stat/solo")[0].args == (1,)
    assert send(srv, "/-action/clearsolo", 1) == []
    assert srv.mixer.get("/-stat/solosw/03") == 0
    assert send(srv, "/-stat/solo")[0].args == (0,)
    # DCA 2's solo switch is the X32's 74: it lights solo, clearsolo clears it.
    assert send(srv, "/-stat/solosw/74", 1) == []
    assert node(srv, "-stat/solosw").split()[1:][73] == "ON"
    assert send(srv, "/-stat/solo")[0].args == (1,)
    assert send(srv, "/-action/clearsolo", 1) == []
    assert srv.mixer.get("/-stat/solosw/74") == 0
    assert send(srv, "/-stat/solo")[0].args == (0,)
    assert send(srv, "/-stat/selidx", 5) == []
    assert send(srv, "/-stat/selidx")[0].args == (5,)
    assert node(srv, "-stat").split()[1] == "Ch06"


# -- scenes the X32 way ----------------------------------------------------------------


def test_goscene_takes_an_int_or_a_string(srv, tmp_path):
    scenes = SceneManager(srv.mixer, tmp_path)
    remote.register(srv, scenes, lambda: 0.0)
    srv.mixer.set("/ch/01/mix/fader", -12.0)
    scenes.save("a")
    srv.mixer.set("/ch/01/mix/fader", -30.0)
    scenes.save("b")
    srv.mixer.set("/ch/01/mix/fader", 0.0)
    send(srv, "/-action/goscene", "1")
    assert srv.mixer.get("/ch/01/mix/fader") == -30.0
    assert send(srv, "/-show/prepos/current")[0].args == (1,)
    send(srv, "/-action/goscene", 0)
    assert srv.mixer.get("/ch/01/mix/fader") == -12.0
    assert send(srv, "/-show/showfile/scene/001/name")[0].args == ("b",)
    assert node(srv, "-show/showfile/scene/001") == (
        '/-show/showfile/scene/001 "b" "" 0 ON'
    )
    for bad in ("x", "7", -1):  # refused quietly, as the X32
        assert send(srv, "/-action/goscene", bad) == []
    assert srv.mixer.get("/ch/01/mix/fader") == -12.0


def test_recall_pushes_the_current_scene(srv, tmp_path):
    scenes = SceneManager(srv.mixer, tmp_path)
    remote.register(srv, scenes, lambda: 0.0)
    scenes.save("a")
    scenes.save("b")
    with ServerThread(srv) as st, Client(st.port) as watcher:
        watcher.send("/xremote")
        wait_until(lambda: watcher.addr in srv.subscribers, 2, "the subscription")
        send(srv, "/-action/goscene", "1")
        got = [(m.address, m.args) for m in watcher.recv_all(0.3)]
        assert ("/-show/prepos/current", (1,)) in got


# -- subscriptions ----------------------------------------------------------------------


def count_for(client, seconds: float, stop: tuple) -> list:
    """What ``client`` receives over ``seconds``, then after sending ``stop``."""
    time.sleep(seconds)
    client.send(*stop)
    return client.recv_all(0.5)


def test_subscribe_sends_one_value_at_its_time_factor(srv):
    with ServerThread(srv) as st, Client(st.port) as c:
        c.send("/subscribe", "/ch/01/mix/on", 4)  # every 200 ms
        got = count_for(c, 1.0, ("/unsubscribe", "/ch/01/mix/on"))
        time.sleep(0.3)
        assert c.recv_all(0.3) == []  # stopped
    assert {(m.address, m.args) for m in got} == {("/ch/01/mix/on", (1,))}
    # ~5 in 1 s; at 50 ms it would be ~20. Slack for a late unsubscribe.
    assert 1 <= len(got) <= 10


def test_formatsubscribe_blob(srv):
    srv.mixer.set_many({"/ch/07/mix/on": 0})
    with ServerThread(srv) as st, Client(st.port) as c:
        c.send("/formatsubscribe", "/testme", "/ch/**/mix/on", 6, 9, 80)
        m = c.recv(2.0)
        c.send("/unsubscribe")
    assert (m.address, m.tags) == ("/testme", "b")
    # little-endian byte count, then the values: ch 06..09 on
    assert struct.unpack("<5i", m.arg) == (20, 1, 0, 1, 1)


def test_formatsubscribe_names_and_limits(srv):
    srv.mixer.set("/ch/02/config/name", "Snare")
    t0 = time.time()
    assert send(srv, "/formatsubscribe", "/names", "/ch/**/config/name", 1, 2, 1,
                now=t0) == []  # fmt: skip
    blob = parse(srv.feeds[(ME, "/names")].packet(None)).arg
    assert struct.unpack_from("<i", blob)[0] == len(blob) == 4 + 2 * 32
    assert blob[36:41] == b"Snare" and blob[41:68] == b"\0" * 27
    cues = "/-show/showfile/cue/***/name"
    assert send(srv, "/formatsubscribe", "/cues", cues, 0, 99, 1) == []  # 100 fit
    assert (ME, "/cues") in srv.feeds
    assert send(srv, "/ls/errors", 1)[0].args == (1,)
    numbers = "/-show/showfile/cue/***/numb"
    (error,) = send(srv, "/formatsubscribe", "/all", cues, numbers, 0, 99, 1)
    assert error.address == "/ls/error"  # 200 values in one blob would not
    assert (ME, "/all") not in srv.feeds


def test_batchsubscribe_meters_under_an_alias(srv):
    with ServerThread(srv) as st, Client(st.port) as c:
        c.send("/batchsubscribe", "/x_meters_0", "/meters/0", 0, 69, 1)
        m = c.recv(2.0)
        c.send("/renew", "/x_meters_0")
        c.send("/unsubscribe", "/x_meters_0")
    assert (m.address, m.tags) == ("/x_meters_0", "b")
    assert len(parse_meter_blob(m.arg)) == 70


def test_renew_and_unsubscribe_by_name(srv):
    t0 = time.time()
    send(srv, "/meters", "meters/1", now=t0)
    send(srv, "/subscribe", "/ch/01/mix/fader", now=t0)
    assert {k[1] for k in srv.feeds} == {"/meters/1", "/ch/01/mix/fader"}
    send(srv, "/renew", now=t0 + 5)  # no name: everything
    assert all(f.expires == pytest.approx(t0 + 15) for f in srv.feeds.values())
    send(srv, "/unsubscribe", "/ch/01/mix/fader")
    assert {k[1] for k in srv.feeds} == {"/meters/1"}


# -- meter banks -----------------------------------------------------------------------


def _lin(db):
    return 10.0 ** (np.asarray(db) / 20.0)


def meter_blob(srv, *request, count=1):
    with ServerThread(srv) as st, Client(st.port) as c:
        c.send("/meters", *request)
        blobs = [c.recv(2.0) for _ in range(count)]
        c.send("/unsubscribe")
    return blobs


def test_meter_banks_have_the_x32_sizes_and_values(srv):
    reading = srv.meters()
    sizes = {"/meters/0": 70, "/meters/1": 96, "/meters/2": 49, "/meters/13": 48}
    for bank, size in sizes.items():
        (m,) = meter_blob(srv, bank)
        values = parse_meter_blob(m.arg)
        assert len(values) == size, bank
        first = reading.out_peak_db[:16] if bank == "/meters/2" else reading.in_peak_db
        np.testing.assert_allclose(values[: len(first)], _lin(first), rtol=1e-5)
    (m,) = meter_blob(srv, "/meters/5", 1, 2)  # channels 17-32, buses 9-16
    values = parse_meter_blob(m.arg)
    assert len(values) == 27
    np.testing.assert_allclose(values[:16], _lin(reading.in_peak_db[16:]), rtol=1e-5)
    np.testing.assert_allclose(
        values[16:24], _lin(reading.out_peak_db[8:16]), rtol=1e-5
    )
    # /meters/2: buses, matrices, main L/R, mono (the mono bus and the
    # matrices follow the cue outputs in livesound's order).
    (m,) = meter_blob(srv, "/meters/2")
    values = parse_meter_blob(m.arg)
    mtx = reading.out_peak_db[matrix_outputs(N_BUS)]
    np.testing.assert_allclose(values[16:22], _lin(mtx), rtol=1e-5)
    mono = reading.out_peak_db[mono_output(N_BUS)]
    np.testing.assert_allclose(values[24], _lin(mono), rtol=1e-5)
    srv.mixer.set_many({"/ch/17/mix/fader": -6.0, "/ch/17/mix/on": 1})
    (m,) = meter_blob(srv, "meters/6", 16)  # channel 17
    pre, gate, dyn, post = parse_meter_blob(m.arg)
    assert pre == pytest.approx(_lin(reading.in_peak_db[16]), rel=1e-5)
    assert gate == pytest.approx(_lin(reading.gate_gr_db[16]), rel=1e-5)
    assert post == pytest.approx(pre * _lin(-6.0), rel=1e-4)


def test_meter_time_factor_is_honoured(srv):
    with ServerThread(srv) as st, Client(st.port) as fast, Client(st.port) as slow:
        fast.send("/meters", "/meters/1")
        slow.send("/meters", "/meters/1", 10)  # every 500 ms
        got_slow = count_for(slow, 1.0, ("/unsubscribe",))
        got_fast = count_for(fast, 0.0, ("/unsubscribe",))
    assert 1 <= len(got_slow) <= 4  # ~2 in 1 s; never the 20 of 50 ms
    assert len(got_fast) >= 2 * len(got_slow)

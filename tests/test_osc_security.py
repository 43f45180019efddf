"""The OSC port against a hostile network, each attack from real UDP (and TCP)
peers: pairing guessed from many addresses, a host flooding from many
sockets, amplification through meter streams, stalled OSCQuery connections,
scene names that would overwrite the show's own files, linked bus pairs and
performer roles, and pushes from other threads.

Loopback is a /8 on Linux: binding 127.0.N.M gives as many distinct source
hosts as a test needs.
"""

import contextlib
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from dsp_helpers import gain_matrix, make_engine
from osc_helpers import (
    HOST,
    Client,
    EngineProcess,
    ServerThread,
    bundle,
    fake_meters,
    msg,
    osc_string,
    stats,
    wait_until,
)

from livesound.osc.guard import (
    ENGINEER_RATE_FACTOR,
    PAIR_WRONG_LIMIT,
    UNKNOWN_BYTES_PER_S,
    UNKNOWN_RATIO,
)
from livesound.osc.oscquery import REQUEST_TIMEOUT_S
from livesound.osc.roles import (
    ENGINEER,
    MAX_CODES,
    Permissions,
    Role,
    load_permissions,
)
from livesound.osc.server import OscServer

N_IN, N_BUS = 4, 4
SHOW = """\
[osc]
default_role = "readonly"
clients = [{ address = "127.0.0.2", role = "performer:1" },
           { address = "127.0.0.3", role = "performer:2" }]
pairing = [{ code = "0150", role = "engineer" }]
"""


def livesound(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livesound", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.fixture(scope="module")
def show_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("show")
    (folder / "show.toml").write_text(SHOW)
    (folder / "scenes").mkdir()
    return folder


@pytest.fixture(scope="module")
def engine_proc(show_dir, tmp_path_factory):
    """A real engine with the show above and its own scene folder."""
    state = tmp_path_factory.mktemp("state")
    eng = EngineProcess("--show-config", str(show_dir / "show.toml"), "--scenes",
                        str(show_dir / "scenes"), "--state-dir", str(state))  # fmt: skip
    eng.start()
    yield eng
    eng.stop()


# -- pairing --------------------------------------------------------------------------


def test_pairing_cannot_be_guessed_from_many_addresses(engine_proc):
    port = engine_proc.port
    # The engineer makes a fresh code for a performer's tablet; it pairs.
    made = livesound(
        "pair", "--role", "performer:2", "--valid", "5", "--port", str(port)
    )
    assert made.returncode == 0, made.stderr
    code = re.fullmatch(r"pairing code (\d{6}) for performer:2, valid 5 min.*\n",
                        made.stdout).group(1)  # fmt: skip
    with Client(port, ip="127.0.0.7") as tablet:
        assert tablet.request("/ls/pair", code).args == ("performer:2",)
    # Nobody but the engineer may make codes.
    with Client(port, ip="127.0.0.3") as performer:
        reply = performer.request("/ls/pair/new", "engineer", 10)
        assert reply.address == "/ls/error" and "not allowed" in reply.args[1]

    # 200 guesses from 200 addresses, the right code (0150) among them.
    answers = []
    for k in range(200):
        with Client(port, ip=f"127.0.1.{k + 1}") as guesser:
            answers.append(guesser.request("/ls/pair", f"{k:04d}"))
    assert all(a.address == "/ls/error" for a in answers), "a guess paired"
    texts = [a.args[1] for a in answers]
    assert texts[:PAIR_WRONG_LIMIT] == ["unknown pairing code"] * PAIR_WRONG_LIMIT
    assert all("pairing closed" in t for t in texts[PAIR_WRONG_LIMIT:])
    with Client(port, ip="127.0.1.151") as lucky:  # the one that sent 0150
        lucky.request("/ls/errors", 1)  # X32 refusals are quiet unless asked for
        assert lucky.request("/ch/01/mix/on", 0).address == "/ls/error"

    # The status says so, and so does the log.
    pairing = stats(port)["pairing"]
    assert pairing["open"] is False and pairing["closed_for_s"] > 0
    with Client(port) as c:
        assert "pairing closed" in c.query("/ls/status/pairing")
    wait_until(lambda: "pairing closed for 60 s" in engine_proc.stderr, 5, "log line")
    # A tablet that holds its role already is answered (a reconnect); the
    # show's own code is refused to everyone else while closed.
    with Client(port, ip="127.0.0.7") as tablet:
        assert tablet.request("/ls/pair", code).args == ("performer:2",)
    with Client(port, ip="127.0.0.8") as late:
        assert "pairing closed" in late.request("/ls/pair", "0150").args[1]


def test_codes_expire_and_are_bounded(tmp_path):
    """Codes from ``/ls/pair/new`` work until their time is up; codes from
    the show configuration keep working."""
    (tmp_path / "show.toml").write_text(SHOW)
    mixer = make_engine(n_in=N_IN, n_bus=N_BUS).mixer
    srv = OscServer(mixer, load_permissions(tmp_path / "show.toml", N_BUS))
    eng, t0 = ("127.0.0.1", 1), 1000.0

    def ask(addr, address, *args, now):
        (reply,) = srv.handle_datagram(msg(address, *args), addr, now)
        return reply[0]

    made = ask(eng, "/ls/pair/new", "viewer", 1, now=t0)
    code = re.search(rb"\d{6}", made).group().decode()
    assert b"/ls/error" in ask(("10.0.0.1", 1), "/ls/pair", code, now=t0 + 61)
    assert b"engineer" in ask(("10.0.0.2", 1), "/ls/pair", "0150", now=t0 + 61)
    for bad in [("performer:9",), ("viewer", 0), ("viewer", 1441), (5,)]:
        assert b"/ls/error" in ask(eng, "/ls/pair/new", *bad, now=t0)
    # At most MAX_CODES open at once (each one more chance for a guess).
    for _ in range(MAX_CODES):
        assert b"/ls/pair/new" in ask(eng, "/ls/pair/new", "viewer", 1, now=t0 + 100)
    refused = ask(eng, "/ls/pair/new", "viewer", 1, now=t0 + 100)
    assert b"/ls/error" in refused and b"open already" in refused
    assert b"/ls/pair/new" in ask(eng, "/ls/pair/new", "viewer", 1, now=t0 + 161)


# -- rate limits per host ----------------------------------------------------------------


def test_one_host_flooding_from_many_sockets_is_limited_as_one():
    mixer = make_engine(n_in=N_IN, n_bus=N_BUS).mixer
    srv = OscServer(mixer, rate=2000.0, burst=500.0)  # 127.0.0.1 is the engineer
    flood = bundle(*[msg("/ch/01/mix/on")] * 100)
    with ServerThread(srv) as st:
        socks = [Client(st.port, ip="127.0.0.9") for _ in range(20)]
        t0 = time.monotonic()
        for _ in range(4):  # 8000 queries, 400 from each socket (under its old limit)
            for s in socks:
                s.send_raw(flood)
        with Client(st.port, ip="127.0.0.10") as calm:
            assert calm.query("/ch/02/mix/on") in (0, 1)  # another host passes
        wait_until(lambda: srv.stats["datagrams"] >= 81, 10, "every datagram")
        elapsed = time.monotonic() - t0
        handled = srv.stats["messages"] - 1
        assert srv.stats["rate_limited"] + handled == 8000
        assert srv.stats["rate_limited"] > 0
        # The host's one bucket: its burst plus what refilled meanwhile.
        assert handled <= 500 + 2000 * elapsed + 1
        # A host the show lists as engineer gets ENGINEER_RATE_FACTOR times more.
        limited = srv.stats["rate_limited"]
        engineer = [Client(st.port) for _ in range(20)]
        for s in engineer:
            s.send_raw(bundle(*[msg("/ch/01/mix/on")] * 100))
        wait_until(lambda: srv.stats["datagrams"] >= 101, 10, "every datagram")
        assert srv.stats["rate_limited"] == limited  # 2000 < 500 * factor
        assert 500 * ENGINEER_RATE_FACTOR >= 2000
        for s in socks + engineer:
            s.close()


# -- amplification -------------------------------------------------------------------------


def _received(sock: socket.socket, seconds: float) -> int:
    """Bytes that arrive on ``sock`` within ``seconds``."""
    total, end = 0, time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            total += len(sock.recvfrom(65536)[0])
        except TimeoutError:
            break
    return total


def test_meter_streams_to_unknown_hosts_are_budgeted():
    mixer = make_engine(n_in=32, n_bus=16).mixer
    reading = fake_meters(32, 16)
    srv = OscServer(mixer, meters=lambda: reading)  # 127.0.0.1 listed, others not
    request = msg("/meters", "/ls/meters")
    with (
        ServerThread(srv) as st,
        Client(st.port, ip="127.0.0.30") as stranger,
        Client(st.port) as console,
    ):
        t0 = time.monotonic()
        stranger.send_raw(request)
        console.send_raw(request)
        window = 3.0
        got = _received(stranger.sock, window)
        elapsed = time.monotonic() - t0
        # At most one second's allowance to start, UNKNOWN_RATIO times the
        # request, and UNKNOWN_BYTES_PER_S since.
        ceiling = UNKNOWN_BYTES_PER_S * (1 + elapsed) + UNKNOWN_RATIO * len(request)
        assert 0 < got <= ceiling, (got, ceiling)
        # The listed console streams in full: far more than the stranger.
        full = _received(console.sock, window)
        assert full > 4 * got
        assert srv.stats["over_budget"] > 0
        # A stranger holds at most 2 streams, strangers together at most half
        # the slots; the listed host still finds room.
        for bank in ("/meters/1", "/meters/2"):
            stranger.send("/meters", bank)
        for k in range(40):
            with Client(st.port, ip=f"127.0.4.{k + 1}") as other:
                other.send("/meters", "/meters/2")
        wait_until(lambda: srv.stats["datagrams"] >= 44, 5, "every request")
        mine = [b for a, b in srv.feeds if a == stranger.addr]
        assert sorted(mine) == ["/ls/meters", "/meters/1"]
        strangers = [a for a, _ in srv.feeds if a[0] != HOST]
        assert len(strangers) == 32
        console.send("/meters", "/meters/1")
        wait_until(lambda: ((console.addr, "/meters/1") in srv.feeds), 5,
                   "the console's second stream")  # fmt: skip


# -- OSCQuery under stalled connections ------------------------------------------------------


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))


def test_stalled_http_connections_hold_no_threads_and_time_out():
    eng = EngineProcess(discovery=True).start()
    try:
        port, pid = eng.port, eng.proc.pid

        def get(target: str) -> dict:
            with urllib.request.urlopen(
                f"http://{HOST}:{port}{target}", timeout=10
            ) as r:
                return json.load(r)

        wait_until(lambda: _serves(port), 30, "OSCQuery")
        before = _threads(pid)
        stalled = []
        for k in range(300):  # 3 each from 100 hosts: a request that never ends
            s = socket.socket()
            s.bind((f"127.0.2.{k // 3 + 1}", 0))
            s.settimeout(10)
            s.connect((HOST, port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: engine\r\n")
            stalled.append(s)
        # No thread per connection; OSC and a whole HTTP request still answered.
        assert _threads(pid) <= before + 5
        with Client(port) as c:
            for _ in range(20):
                assert c.query("/ch/01/mix/on", timeout=2.0) in (0, 1)
        assert get("/?HOST_INFO")["OSC_PORT"] == port
        # Each stalled connection is closed: at once (over the caps) or
        # after REQUEST_TIMEOUT_S.
        deadline = time.monotonic() + REQUEST_TIMEOUT_S + 20
        for s in stalled:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(1024) == b""
            s.close()
        # The engine still stops on SIGTERM.
        eng.proc.send_signal(signal.SIGTERM)
        assert eng.proc.wait(30) == 0
    finally:
        eng.stop()


def _serves(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/?HOST_INFO", timeout=2):
            return True
    except OSError:
        return False


# -- reserved scene names -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cuelist", "safes", "autosave", "autosave.3",
                                  "Cuelist"])  # fmt: skip
def test_scene_names_of_the_show_files_are_refused(engine_proc, show_dir, name):
    port = engine_proc.port
    cues = show_dir / "scenes" / "cuelist.toml"
    cues.write_text('cues = ["a", "b"]\n')
    with Client(port) as c:
        reply = c.request("/ls/scene/save", name)
        assert reply.address == "/ls/error" and "reserved" in reply.args[1], reply
        assert c.request("/ls/scene/save", "verse").address == "/ls/scene/saved"
        reply = c.request("/ls/scene/rename", "verse", name)
        assert reply.address == "/ls/error" and "reserved" in reply.args[1], reply
        assert c.request("/ls/scene/recall", name).address == "/ls/error"
    out = livesound("scene", "save", name, "--port", str(port))
    assert (
        out.returncode == 2
        and "reserved" in out.stderr
        and "Traceback" not in out.stderr
    )
    assert cues.read_text() == 'cues = ["a", "b"]\n'
    assert not (show_dir / "scenes" / f"{name}.toml").exists() or name == "cuelist"


# -- linked bus pairs and performer roles ------------------------------------------------------


def test_linked_pair_belongs_to_the_odd_mix_performer_and_mirrors():
    engine = make_engine(n_in=N_IN, n_bus=N_BUS)
    mixer = engine.mixer
    mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": 0.0,
                    "/ch/01/mix/02/level": 0.0, "/ch/01/mix/st": 0})  # fmt: skip
    perms = Permissions(by_address={HOST: ENGINEER, "127.0.0.2": Role("performer", 1),
                                    "127.0.0.3": Role("performer", 2)})  # fmt: skip
    srv = OscServer(mixer, perms)
    with (
        ServerThread(srv) as st,
        Client(st.port) as eng,
        Client(st.port, ip="127.0.0.2") as perf1,
        Client(st.port, ip="127.0.0.3") as perf2,
    ):

        def bus_gains() -> np.ndarray:
            return gain_matrix(engine)[:2, 0]  # ch 1 into bus 1 and bus 2

        for surface in (perf1, perf2):  # refusals are quiet unless asked for
            surface.request("/ls/errors", 1)
        # Unlinked: each performer has their own mix.
        assert perf1.request("/ch/01/mix/02/level", 0.5).address == "/ls/error"
        perf2.send("/ch/01/mix/02/level", 0.75)
        wait_until(lambda: srv.stats["sets"] == 1, 5, "performer 2's own send")
        eng.send("/config/buslink/1-2", 1)
        # ``snapshot`` takes the Mixer's lock, so the set it sees has also been
        # published to the audio plane (``get`` may see the value before that).
        wait_until(lambda: mixer.snapshot()["/config/buslink/1-2"] == 1, 5, "the link")
        linked = bus_gains()
        # Linked: performer 1 owns both halves; a write to either lands on both.
        perf1.send("/ch/01/mix/02/level", 0.5)  # -10 dB
        wait_until(lambda: mixer.snapshot()["/ch/01/mix/01/level"] == pytest.approx(-10.0),
                   5, "the mirrored send")  # fmt: skip
        assert mixer.get("/ch/01/mix/02/level") == pytest.approx(-10.0)
        # The value is the Mixer's at once; the audio plane's gains follow.
        wait_until(lambda: np.allclose(bus_gains(), linked * 10 ** (-10 / 20),
                                       rtol=1e-3), 5, "the mirrored send's gains")  # fmt: skip
        perf1.send("/bus/02/mix/fader", 0.5)
        wait_until(lambda: mixer.get("/bus/01/mix/fader") == pytest.approx(-10.0), 5,
                   "the mirrored master")  # fmt: skip
        # Performer 2 no longer owns mix 2, and is told why.
        before = mixer.snapshot()
        for address in [
            "/ch/01/mix/02/level",
            "/bus/02/mix/fader",
            "/ch/01/mix/01/level",
        ]:
            reply = perf2.request(address, 0.25)
            assert reply.address == "/ls/error", reply
        assert "performer:1" in perf2.request("/ch/01/mix/02/on", 0).args[1]
        assert mixer.snapshot() == before
        # The engineer's writes mirror too; an unlinked pair does not.
        eng.send("/ch/02/mix/01/on", 0)
        wait_until(lambda: mixer.get("/ch/02/mix/02/on") == 0, 5, "the mirrored mute")
        assert mixer.get("/ch/02/mix/03/on") == 1 and mixer.get("/ch/02/mix/04/on") == 1


# -- threads and logs ----------------------------------------------------------------------------


class _Watched(dict):
    """A subscriber table that notes every thread that touches it."""

    def __init__(self, seen: set) -> None:
        super().__init__()
        self.seen = seen

    def _touch(self) -> None:
        self.seen.add(threading.get_ident())

    def __iter__(self):
        self._touch()
        return super().__iter__()

    def __len__(self) -> int:
        self._touch()
        return super().__len__()

    def __contains__(self, key) -> bool:
        self._touch()
        return super().__contains__(key)

    def __setitem__(self, key, value) -> None:
        self._touch()
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        self._touch()
        super().__delitem__(key)

    def items(self):
        self._touch()
        return super().items()

    def pop(self, *args):
        self._touch()
        return super().pop(*args)


def test_pushes_from_other_threads_run_on_the_network_loop():
    mixer = make_engine(n_in=N_IN, n_bus=N_BUS).mixer
    srv = OscServer(mixer, Permissions(default=ENGINEER))
    seen: set[int] = set()
    srv.subscribers = _Watched(seen)
    with ServerThread(srv) as st, Client(st.port) as tablet:
        tablet.send("/xremote")
        wait_until(lambda: srv.stats["messages"] == 1, 5, "the subscription")

        def feedback_thread() -> None:  # as the suppressor and storage do
            for k in range(50):
                mixer.set("/ch/01/mix/fader", -float(k))
            srv.push("/ls/status/storage", "disk full")

        worker = threading.Thread(target=feedback_thread)
        worker.start()
        worker.join()
        got = []
        wait_until(lambda: got.extend(tablet.recv_all(0.2)) or len(got) >= 51, 10,
                   "51 pushes")  # fmt: skip
        assert got[-1].address == "/ls/status/storage"
        assert seen == {st.thread.ident}


def test_unsupported_tags_from_many_hosts_do_not_flood_the_log(caplog):
    mixer = make_engine(n_in=N_IN, n_bus=N_BUS).mixer
    srv = OscServer(mixer)
    bad = osc_string("/ch/01/mix/fader") + osc_string(",xqz") + bytes(12)
    with caplog.at_level(logging.WARNING), ServerThread(srv) as st:
        t0 = time.monotonic()
        for k in range(100):
            with Client(st.port, ip=f"127.0.5.{k + 1}") as c:
                for _ in range(10):
                    c.send_raw(bad)
                    c.send_raw(bundle(msg("/ch/01/mix/on"), bad))
        wait_until(lambda: srv.stats["datagrams"] >= 2000, 10, "every datagram")
        elapsed = time.monotonic() - t0
    lines = [r.getMessage() for r in caplog.records]
    assert not any("Unhandled parameter type" in line for line in lines)
    assert srv.stats["malformed"] == 2000
    assert len(lines) <= 5 * (elapsed + 2)

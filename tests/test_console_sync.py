"""The whole show in one request, and a console whose keys wait until it is
read: against a real engine process, over real UDP (a relay that holds the
engine's snapshot back plays a slow network)."""

from __future__ import annotations

import math
import select
import socket
import threading

import pytest
from console_helpers import (
    Client,
    engine_value,
    engine_with_scenes,
    fader_norm,
    query,
    run,
    screen_text,
    settle,
)
from osc_helpers import EngineProcess, free_udp_port, parse

from livesound.console.app import ConsoleApp
from livesound.console.link import WAIT_NOTE
from livesound.control.registry import Registry
from livesound.osc import snapshot

SIZE = (120, 40)


def read_snapshot(client: Client, ident: int = 7) -> snapshot.Snapshot:
    """Ask once, collect every part."""
    client.send(snapshot.ADDRESS, ident)
    parts = snapshot.Assembler()
    parts.expect(ident)
    while True:
        m = client.recv(10.0)
        assert m.address == snapshot.ADDRESS, (m.address, m.args)
        done = parts.take(list(m.args))
        if done is not None:
            return done


@pytest.fixture
def engine(tmp_path):
    eng = engine_with_scenes(tmp_path)
    yield eng
    eng.stop()


def test_snapshot_holds_every_value_of_the_show(engine):
    with Client(engine.port) as c:
        c.send("/ch/03/mix/fader", fader_norm(-12.0))
        c.send("/ch/05/config/name", "Lead vox")
        assert c.query("/ch/05/config/name") == "Lead vox"  # both handled
        snap = read_snapshot(c)
    assert (snap.n_in, snap.n_bus) == (8, 4)
    assert set(snap.values) == set(Registry(8, 4).params)
    assert snap.values["/ch/03/mix/fader"] == pytest.approx(-12.0, abs=0.05)
    assert snap.values["/ch/05/config/name"] == "Lead vox"


def test_snapshot_is_refused_to_a_host_the_show_does_not_know(tmp_path):
    config = tmp_path / "show.toml"
    config.write_text('[osc]\npairing = [{ code = "482913", role = "performer:1" }]\n')
    eng = EngineProcess("--show-config", str(config)).start()
    try:
        with Client(eng.port, ip="127.0.0.2") as stranger:
            stranger.send(snapshot.ADDRESS, 1)
            m = stranger.recv(5.0)
            # kilobytes for a few bytes asked: not for an unknown address
            assert m.address == "/ls/error"
            assert "pair" in m.args[1]
            assert list(stranger.request("/ls/pair", "482913").args) == ["performer:1"]
            snap = read_snapshot(stranger)
        assert len(snap.values) == len(Registry(8, 4).params)
    finally:
        eng.stop()


class Relay:
    """A UDP relay between a console and the engine that can hold back the
    show's values (a lossy or slow network) while status and meters pass;
    ``source``: the address the engine sees the console at."""

    def __init__(self, engine_port: int, source: str = "127.0.0.1") -> None:
        self.engine = ("127.0.0.1", engine_port)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", free_udp_port()))
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((source, 0))
        self.hold = threading.Event()
        self.held = 0
        self.client: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.front, self.back], [], [], 0.05)
            for sock in ready:
                data, addr = sock.recvfrom(65536)
                if sock is self.front:
                    self.client = addr
                    self.back.sendto(data, self.engine)
                elif self.client is not None:
                    if self.hold.is_set() and _is_value(data):
                        self.held += 1
                        continue
                    self.front.sendto(data, self.client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.front.close()
        self.back.close()


def _is_value(data: bytes) -> bool:
    """The show's values (snapshot parts, answers, pushes), not status or meters."""
    if data.startswith(b"#bundle"):
        return True
    address = parse(data).address
    return address == snapshot.ADDRESS or not address.startswith("/ls/")


def test_keys_wait_until_the_show_is_read(engine):
    relay = Relay(engine.port)
    relay.hold.set()

    async def go():
        app = ConsoleApp(port=relay.port)
        async with app.run_test(size=SIZE) as pilot:
            st = app.state
            # attached (meters, status) but the show not yet read
            await settle(pilot, lambda: st.connected and relay.held >= 1,
                         "the console to ask for the show")  # fmt: skip
            assert not st.live()
            before = query(engine.port, "/ch/01/mix/fader")
            await pilot.press("up", "up", "m")
            await pilot.pause(0.2)
            assert WAIT_NOTE in st.message
            assert "keys wait" in screen_text(app)
            # nothing reached the engine
            assert query(engine.port, "/ch/01/mix/fader") == before
            assert query(engine.port, "/ch/01/mix/on") == 1
            relay.hold.clear()  # the network recovers: a retry gets through
            await settle(pilot, st.live, "the console to read the show")
            await settle(pilot, lambda: "keys wait" not in screen_text(app),
                         "the status bar to drop its note")  # fmt: skip
            db = st.values["/ch/01/mix/fader"]
            await pilot.press("up")
            expected = min(10.0, db + 1.0) if math.isfinite(db) else db
            await engine_value(pilot, engine.port, "/ch/01/mix/fader",
                               fader_norm(expected))  # fmt: skip

    try:
        run(go())
    finally:
        relay.close()


def test_a_console_the_show_does_not_list_reads_address_by_address(engine):
    relay = Relay(engine.port, source="127.0.0.2")  # read-only, snapshot refused

    async def go():
        app = ConsoleApp(port=relay.port)
        async with app.run_test(size=SIZE) as pilot:
            st = app.state
            await settle(pilot, st.live, "the console to read the show")
            assert st.n_in == 8 and st.n_bus == 4
            assert st.values["/ch/01/config/name"] == query(
                engine.port, "/ch/01/config/name"
            )

    try:
        run(go())
    finally:
        relay.close()

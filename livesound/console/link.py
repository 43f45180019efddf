"""The console's OSC link to the engine: non-blocking UDP on the app's loop.

Sends changes, subscribes to pushes (``/xremote``) and meters
(``/meters ,s /ls/meters``), renews both before they lapse, reads the whole
show in one request (``/ls/snapshot``; a surface the show does not list
reads it in paced batches instead, under the engine's rate limit), polls
the status and the scenes, and notices when the engine goes quiet ("engine
lost"), then keeps knocking until it answers and reads the show again.
Until the show is read, keys that change it are refused: no key acts on a
value the engine has not told us.

Nothing here waits for a reply: every answer lands in ``ConsoleState`` when
it arrives, and the screens draw whatever the state holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from pythonosc.osc_packet import OscPacket

from livesound.console.state import ConsoleState, Status
from livesound.control.groups import solo_address
from livesound.control.registry import ParamError, Target, ch_prefix, out_prefixes
from livesound.osc import dialect, meterblob, snapshot
from livesound.osc.wire import bundle, message

TICK_S = 0.05
LOST_S = 1.5  # meters come every 50 ms: this much silence means the engine is gone
RENEW_S = 4.0  # subscriptions last 10 s on the engine
STATS_S = 1.0
SCENES_S = 5.0
SPECTRUM_S = 0.2
# The engine allows 2000 messages/s per client with bursts of 500: the sync
# stays well under that, so our own faders are never the ones refused.
SYNC_PER_TICK = 80
MAX_BUNDLE = 100
MAX_IN, MAX_BUS = 128, 16
PROBE_S = 0.4
SNAPSHOT_RETRY_S = 1.0  # a lost part: ask again, then read address by address
SNAPSHOT_TRIES = 3
WAIT_NOTE = "reading the show from the engine: keys wait until it is read"


def sync_order(state: ConsoleState) -> list[str]:
    """Every address of the show, what the mixer view shows first."""
    first = []
    for c in range(state.n_in):
        p = ch_prefix(c)
        first += [f"{p}/mix/fader", f"{p}/mix/on", f"{p}/mix/pan",
                  solo_address(c)]  # fmt: skip
    for o in range(state.n_bus + 1):
        x32, extra = out_prefixes(o, state.n_bus)
        first += [f"{x32}/mix/fader", f"{x32}/mix/on", f"{extra}/fbs/mode"]
    sends = [p.address for p in state.registry if p.target is Target.ROW]
    placed = set(first) | set(sends)
    rest = [a for a in state.registry.params if a not in placed]
    order = first + sends + rest
    return [a for a in order if a in state.registry.params or a.endswith("/fbs/mode")]


class Link:
    """One engine, reached over UDP from the app's asyncio loop."""

    def __init__(
        self,
        state: ConsoleState,
        host: str = "127.0.0.1",
        port: int = 10023,
        *,
        meters: bool = True,
        pair: str | None = None,
    ) -> None:
        self.state = state
        self.host, self.port = host, port
        self.meters = meters
        self.pair = pair
        self.transport: asyncio.DatagramTransport | None = None
        self.task: asyncio.Task | None = None
        self.queue: deque[str] = deque()
        self.spectrum_of: int | None = None  # output whose spectrum to ask for
        self.received = 0
        self.sent = 0
        self._due: dict[str, float] = {}
        self._probe_until = 0.0
        self._probe_names: dict[str, str] = {}
        self._sizing = False  # waiting for /ls/stats to say the engine's size
        self._sync_rounds = 0
        self._snapshot = snapshot.Assembler()
        self._snapshot_tries = 0
        self._pushed: set[str] | None = None  # addresses pushed since the first part
        # The app's answer to the newest undo step (address, now, before).
        self.on_undo_peek: Callable[[str, Any, Any], None] | None = None

    # -- lifetime -----------------------------------------------------------------

    async def start(self) -> None:
        """Open the socket and start the link's timer task."""
        loop = asyncio.get_running_loop()
        link = self

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr) -> None:
                link.received += 1
                link.handle(data)

            def error_received(self, exc: Exception) -> None:
                # ICMP "port unreachable" while the engine is down: the
                # silence already tells us; nothing to do.
                pass

        infos = await loop.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM,
                                       family=socket.AF_INET)  # fmt: skip
        remote = infos[0][4]
        self.transport, _ = await loop.create_datagram_endpoint(
            Protocol, remote_addr=remote
        )
        sock = self.transport.get_extra_info("socket")
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if option is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, 1 << 21)
                    break
        self.task = loop.create_task(self._run())

    def close(self) -> None:
        """Unsubscribe (best effort) and close the socket."""
        if self.task is not None:
            self.task.cancel()
        if self.transport is not None:
            self.send("/unsubscribe")
            self.transport.close()
            self.transport = None

    # -- sending --------------------------------------------------------------------

    def send(self, address: str, *args: Any) -> None:
        """Send one message; never waits (UDP, buffered by the loop)."""
        self.send_raw(message(address, *args))

    def send_raw(self, data: bytes) -> None:
        if self.transport is not None:
            self.sent += 1
            self.transport.sendto(data)

    def _unread(self) -> bool:
        """True (and a note in the status bar) while the show is not yet read."""
        if self.state.live():
            return False
        self.state.notice(WAIT_NOTE)
        return True

    def command(self, address: str, *args: Any) -> bool:
        """A command from a key (recall, save, GO, undo): sent once the show is read."""
        if self._unread():
            return False
        self.send(address, *args)
        return True

    def set(self, address: str, value: Any) -> bool:
        """Change a parameter: validated here, shown at once, sent to the engine.

        Returns False (and says why in the status bar) if the value is refused
        or the show is not read yet.
        """
        if self._unread():
            return False
        p = self.state.param(address)
        if p is None:
            # A parameter this console's registry predates (e.g. a newer
            # engine's): send it as given and let the engine judge.
            self.state.put(address, value)
            self.send(address, value)
            return True
        try:
            value = p.validate(value)
        except ParamError as exc:
            self.state.notice(str(exc))
            return False
        self.state.put(address, value)
        self.send(address, dialect.encode(p, value))
        return True

    def set_many(self, changes: dict[str, Any], *, unread_ok: bool = False) -> bool:
        """Several changes in one datagram (panic: every output at once).

        ``unread_ok``: changes that do not depend on any value read (panic's
        mutes) go out even while the show is being read.
        """
        if not unread_ok and self._unread():
            return False
        msgs = []
        for address, value in changes.items():
            p = self.state.param(address)
            if p is None:
                continue
            value = p.validate(value)
            self.state.put(address, value)
            msgs.append(message(address, dialect.encode(p, value)))
        for k in range(0, len(msgs), MAX_BUNDLE):
            self.send_raw(bundle(msgs[k : k + MAX_BUNDLE]))
        return True

    def query(self, addresses: list[str]) -> None:
        """Ask for the values of ``addresses`` (answers arrive later)."""
        msgs = [message(a) for a in addresses]
        for k in range(0, len(msgs), MAX_BUNDLE):
            self.send_raw(bundle(msgs[k : k + MAX_BUNDLE]))

    # -- receiving ------------------------------------------------------------------

    def handle(self, data: bytes) -> None:
        """Everything one datagram from the engine tells us."""
        st = self.state
        now = time.monotonic()
        st.last_heard = now
        if not st.connected:
            st.connected = True
            st.ever_connected = True
            st.notice("engine connected: reading the show")
            self._resync(now)
        try:
            messages = OscPacket(data).messages
        except Exception:  # a garbled datagram is dropped, never fatal
            return
        for t in messages:
            self._message(t.message.address, list(t.message.params), now)

    def _message(self, address: str, args: list, now: float) -> None:
        st = self.state
        if address == "/ls/meters" and args and isinstance(args[0], bytes):
            reading = meterblob.decode(args[0], st.n_in, st.n_bus)
            if reading is not None:
                st.take_meters(reading)
            return
        if address == snapshot.ADDRESS:
            self._take_snapshot(args)
            return
        if address == "/ls/undo" and len(args) == 2:
            st.notice(f"undone: {st.label(args[0])} back to {st.text(*args)}")
            return
        if address == "/ls/undo/peek":
            if len(args) != 3:
                st.notice("nothing to undo")
            elif self.on_undo_peek is not None:
                self.on_undo_peek(*args)
            return
        if address == "/ls/stats" and args:
            with contextlib.suppress(ValueError, TypeError):
                report = json.loads(args[0])
                status = Status.from_stats(report)
                if (status.margins_db, status.afc) != (
                    st.status.margins_db,
                    st.status.afc,
                ):
                    st.version += 1  # the outputs view's title shows them
                st.status = status
                if self._sizing:
                    self._probe(report.get("engine", {}), now)
            return
        if address in ("/ls/status/audio", "/ls/status/storage") and args:
            # Pushed the moment it happens; /ls/stats confirms it each second.
            field = "audio" if address.endswith("audio") else "storage"
            setattr(st.status, field, str(args[0]))
            st.version += 1
            return
        if address == "/ls/status/pairing" and args:
            st.status.pairing = "" if args[0] == "open" else str(args[0])
            st.version += 1
            return
        if address == "/ls/scene/note" and len(args) >= 2:
            st.scene_notes[str(args[0])] = str(args[1])
            st.version += 1
            return
        if address == "/ls/scene/current":
            current = str(args[0]) if args else ""
            if current != st.scene_current:
                st.unsaved = 0
                st.version += 1
            st.scene_current = current
            st.scene_next = str(args[1]) if len(args) > 1 else ""
            return
        if address == "/ls/scene/list":
            st.scenes = [str(a) for a in args]
            st.version += 1
            return
        if address == "/ls/scene/safes":
            st.safes = [str(a) for a in args]
            st.version += 1
            return
        if address == "/ls/scene/saved":
            st.unsaved = 0
            st.notice(f"saved scene {args[0] if args else ''}")
            self._due["scenes"] = 0.0
            return
        if address == "/ls/error":
            self._error(str(args[0]) if args else "", str(args[-1]) if args else "")
            return
        if address == "/ls/errors":  # our request for error replies, confirmed
            return
        if address.endswith("/fbs/spectrum"):
            o = self._output_of_spectrum(address)
            if o is not None and args and isinstance(args[0], bytes):
                st.spectra[o] = np.frombuffer(args[0], "<f4").astype(float)
                st.version += 1
            return
        if now < self._probe_until and address.endswith("/config/name"):
            self._probe_names[address] = args[0] if args else ""
            return
        if not args:
            return
        p = st.param(address)
        if p is None:
            # Outside our registry (e.g. the suppressor's mode on an engine
            # newer than this console): keep it as sent.
            st.put(address, args[0], change=address in st.known)
            st.known.add(address)
            return
        try:
            value = dialect.decode(p, args[:1])
        except ParamError:
            return
        # The first answer for an address is the sync; later ones are pushes
        # (changes made elsewhere).
        st.put(address, value, change=address in st.known)
        st.known.add(address)
        if self._pushed is not None:
            self._pushed.add(address)

    def _take_snapshot(self, args: list) -> None:
        """A part of the show; once all are in, the console is live."""
        if self._pushed is None:
            # What arrives from now on is newer than the snapshot: the engine
            # sent every part before any later push.
            self._pushed = set()
        try:
            snap = self._snapshot.take(args)
        except ValueError as exc:
            self.state.notice(str(exc))
            return
        if snap is None:
            return
        st = self.state
        if (snap.n_in, snap.n_bus) != (st.n_in, st.n_bus):
            st.resize(snap.n_in, snap.n_bus)
        for address, value in snap.values.items():
            if address not in self._pushed:
                st.put(address, value, change=False)
        st.known.update(snap.values)
        self._pushed = None
        self._snapshot_tries = 0
        self._due.pop("snapshot", None)
        # The few values outside the registry (the suppressors' modes).
        self.queue.extend(a for a in sync_order(st) if a not in st.known)
        st.notice("show read: live")

    def _error(self, address: str, text: str) -> None:
        st = self.state
        if address == snapshot.ADDRESS:
            self._read_by_address()  # a surface the show does not list
            return
        if address.endswith("/fbs/spectrum") or (
            address.endswith("/fbs/mode") and "unknown" in text
        ):
            st.spectrum_supported = st.spectrum_supported and not address.endswith(
                "/fbs/spectrum"
            )
            return
        st.notice(f"engine refused {address}: {text}")

    def _output_of_spectrum(self, address: str) -> int | None:
        """The output whose spectrum ``address`` carries, if any."""
        n_bus = self.state.n_bus
        for o in range(n_bus + 1):
            if address == f"{out_prefixes(o, n_bus)[1]}/fbs/spectrum":
                return o
        return None

    # -- the timer ------------------------------------------------------------------

    def _resync(self, now: float) -> None:
        """The engine is (back): pair, subscribe, read the whole show at once."""
        self._due.clear()
        self.queue.clear()
        self._probe_names.clear()
        self._probe_until = 0.0
        self._sync_rounds = 0
        self.state.known.clear()  # it may have restarted: nothing read counts
        if self.pair:
            self.send("/ls/pair", self.pair)
        self._snapshot_tries = 0
        self._ask_snapshot(now)

    def _ask_snapshot(self, now: float) -> None:
        self._snapshot_tries += 1
        self._snapshot.expect(self._snapshot.ident + 1)
        self._pushed = None
        self._due["snapshot"] = now + SNAPSHOT_RETRY_S
        self.send(snapshot.ADDRESS, self._snapshot.ident)

    def _read_by_address(self) -> None:
        """Learn the engine's size from ``/ls/stats``, then read the names and
        everything else address by address."""
        self._due.pop("snapshot", None)
        self._pushed = None
        self._sizing = True
        self.send("/ls/stats")

    def _probe(self, engine: dict, now: float) -> None:
        """Size the show as the engine reports it and ask for its names."""
        st = self.state
        n_in, n_bus = int(engine.get("inputs", 0)), int(engine.get("buses", 0))
        if not (1 <= n_in <= MAX_IN and 2 <= n_bus <= MAX_BUS):
            n_in, n_bus = st.n_in, st.n_bus  # an engine that does not say
        self._sizing = False
        if (n_in, n_bus) != (st.n_in, st.n_bus):
            st.resize(n_in, n_bus)
        else:
            st.known.clear()
        self._probe_until = now + PROBE_S
        names = [f"/ch/{c + 1:02d}/config/name" for c in range(n_in)]
        self.query(names + [f"/bus/{b + 1:02d}/config/name" for b in range(n_bus)])

    def _finish_probe(self) -> None:
        st = self.state
        for address, name in self._probe_names.items():
            if address in st.registry.params:
                st.put(address, name, change=False)
                st.known.add(address)
        self._probe_names.clear()
        known = st.known
        self.queue.extend(a for a in sync_order(st) if a not in known)

    async def _run(self) -> None:
        while True:
            try:
                self.tick(time.monotonic())
            except Exception as exc:  # the link must outlive any one bad tick
                self.state.notice(f"link: {exc}")
            await asyncio.sleep(TICK_S)

    def _every(self, key: str, period: float, now: float) -> bool:
        if now >= self._due.get(key, 0.0):
            self._due[key] = now + period
            return True
        return False

    def tick(self, now: float) -> None:
        """Renew, poll, pace the sync, notice silence: called every 50 ms."""
        st = self.state
        if st.connected and now - st.last_heard > LOST_S:
            st.connected = False
            st.inputs.silence()
            st.outputs.silence()
            st.notice("ENGINE LOST: reconnecting", 3600)
            self.queue.clear()
        if not st.connected:
            # Knock until the engine answers; the first reply resyncs.
            if self._every("knock", 0.5, now):
                self._subscribe()
                self.send("/ls/stats")
            return
        if now >= self._due.get("snapshot", float("inf")):
            if self._snapshot_tries < SNAPSHOT_TRIES:
                self._ask_snapshot(now)
            else:
                self._read_by_address()
        if self._probe_until and now >= self._probe_until:
            self._probe_until = 0.0
            self._finish_probe()
        if self._every("renew", RENEW_S, now):
            self._subscribe()
        if self._every("stats", STATS_S, now):
            self.send("/ls/stats")
            self.send("/ls/scene/current")
        if self._every("scenes", SCENES_S, now):
            self.send("/ls/scene/list")
        if (
            self.spectrum_of is not None
            and st.spectrum_supported
            and self._every("spectrum", SPECTRUM_S, now)
        ):
            _, extra = out_prefixes(self.spectrum_of, st.n_bus)
            self.send(f"{extra}/fbs/spectrum")
        if self.queue:
            batch = [
                self.queue.popleft() for _ in range(min(SYNC_PER_TICK, len(self.queue)))
            ]
            self.query(batch)
            if not self.queue:
                self._due["resync_missing"] = now + 1.0
        elif (
            not self._probe_until
            and self._sync_rounds < 3
            and now >= self._due.get("resync_missing", float("inf"))
        ):
            # UDP may drop an answer: ask again for whatever never came.
            self._sync_rounds += 1
            self._due["resync_missing"] = float("inf")
            missing = [a for a in sync_order(st) if a not in st.known]
            if missing:
                self.queue.extend(missing)

    def _subscribe(self) -> None:
        self.send("/xremote")
        # The engine refuses X32 addresses quietly, as an X32, unless asked.
        self.send("/ls/errors", 1)
        if self.meters:
            self.send("/meters", "/ls/meters")

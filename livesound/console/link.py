"""The console's OSC link to the engine: non-blocking UDP on the app's loop.

Sends changes, subscribes to pushes (``/xremote``) and meters
(``/meters ,s /ls/meters``), renews both before they lapse, reads the whole
show in paced batches (the engine rate-limits each client), polls the
status and the scenes, and notices when the engine goes quiet ("engine
lost"), then keeps knocking until it answers and reads the show again.

Nothing here waits for a reply: every answer lands in ``ConsoleState`` when
it arrives, and the screens draw whatever the state holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from collections import deque
from typing import Any

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from livesound.console.state import ConsoleState, Status, out_prefixes
from livesound.control.registry import ParamError
from livesound.osc import dialect

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
PROBE_S = 0.4  # the size probe asks again for names not answered by then


def _message(address: str, *args: Any) -> OscMessageBuilder:
    b = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, tuple):
            b.add_arg(a[1], a[0])
        else:
            b.add_arg(a)
    return b


def encode(address: str, *args: Any) -> bytes:
    """One OSC message; ``(tag, value)`` pairs or plain Python values."""
    return _message(address, *args).build().dgram


def bundle(messages: list[bytes]) -> bytes:
    """Several messages in one datagram (one syscall, one engine wake-up)."""
    from pythonosc.osc_message import OscMessage

    b = OscBundleBuilder(IMMEDIATELY)
    for m in messages:
        b.add_content(OscMessage(m))
    return b.build().dgram


def sync_order(state: ConsoleState) -> list[str]:
    """Every address of the show, what the mixer view shows first."""
    first = []
    for c in range(state.n_in):
        p = f"/ch/{c + 1:02d}"
        first += [f"{p}/mix/fader", f"{p}/mix/on", f"{p}/mix/pan",
                  f"/-stat/solosw/{c + 1:02d}"]  # fmt: skip
    for o in range(state.n_bus + 1):
        x32, extra = out_prefixes(o, state.n_bus)
        first += [f"{x32}/mix/fader", f"{x32}/mix/on", f"{extra}/fbs/mode"]
    sends = [a for a in state.registry.params if "/mix/" in a and a.startswith("/ch/")]
    rest = [a for a in state.registry.params if a not in set(first) | set(sends)]
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
        self._probe_until = 0.0  # while probing: when to ask the unanswered again
        self._probe_names: dict[str, str] = {}
        self._probe_pending: set[str] = set()
        self._sync_rounds = 0

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
        self.send_raw(encode(address, *args))

    def send_raw(self, data: bytes) -> None:
        if self.transport is not None:
            self.sent += 1
            self.transport.sendto(data)

    def set(self, address: str, value: Any) -> bool:
        """Change a parameter: validated here, shown at once, sent to the engine.

        Returns False (and says why in the status bar) if the value is refused.
        """
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

    def set_many(self, changes: dict[str, Any]) -> None:
        """Several changes in one datagram (panic: every output at once)."""
        msgs = []
        for address, value in changes.items():
            p = self.state.param(address)
            if p is None:
                continue
            value = p.validate(value)
            self.state.put(address, value)
            msgs.append(encode(address, dialect.encode(p, value)))
        for k in range(0, len(msgs), MAX_BUNDLE):
            self.send_raw(bundle(msgs[k : k + MAX_BUNDLE]))

    def query(self, addresses: list[str]) -> None:
        """Ask for the values of ``addresses`` (answers arrive later)."""
        msgs = [encode(a) for a in addresses]
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
            blob = args[0]
            if len(blob) >= 4:
                (count,) = struct.unpack_from("<i", blob, 0)
                if 0 <= count <= (len(blob) - 4) // 4:
                    st.take_meters(np.frombuffer(blob, "<f4", count, 4).astype(float))
            return
        if address == "/ls/undo" and len(args) == 2:
            st.notice(f"undone: {args[0]} back to {args[1]}")
            return
        if address == "/ls/stats" and args:
            with contextlib.suppress(ValueError, TypeError):
                st.status = Status.from_stats(json.loads(args[0]))
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
        if address == "/ls/scene/saved":
            st.unsaved = 0
            st.notice(f"saved scene {args[0] if args else ''}")
            self._due["scenes"] = 0.0
            return
        if address == "/ls/error":
            self._error(str(args[0]) if args else "", str(args[-1]) if args else "")
            return
        if address.endswith("/fbs/spectrum"):
            if args and isinstance(args[0], bytes):
                o = self._output_of(address)
                if o is not None:
                    st.spectra[o] = np.frombuffer(args[0], "<f4").astype(float)
                    st.version += 1
            return
        if address in self._probe_pending:
            self._probe_pending.discard(address)
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

    def _error(self, address: str, text: str) -> None:
        st = self.state
        self._probe_pending.discard(address)  # refused is answered, too
        if address.endswith("/config/name") and "unknown" in text:
            return  # the size probe asks past the last strip on purpose
        if address.endswith("/fbs/spectrum") or (
            address.endswith("/fbs/mode") and "unknown" in text
        ):
            st.spectrum_supported = st.spectrum_supported and not address.endswith(
                "/fbs/spectrum"
            )
            return
        st.notice(f"engine refused {address}: {text}")

    def _output_of(self, address: str) -> int | None:
        if address.startswith("/ls/main/st/"):
            return self.state.n_bus
        with contextlib.suppress(ValueError, IndexError):
            return int(address.split("/")[3]) - 1
        return None

    # -- the timer ------------------------------------------------------------------

    def _resync(self, now: float) -> None:
        """The engine is (back): learn its size, subscribe, read everything."""
        self._due.clear()
        self.queue.clear()
        self._probe_names.clear()
        self._probe_until = now + PROBE_S
        self._sync_rounds = 0
        names = [f"/ch/{c + 1:02d}/config/name" for c in range(MAX_IN)]
        names += [f"/bus/{b + 1:02d}/config/name" for b in range(MAX_BUS)]
        # The engine's size is known once every name is answered (a name, or
        # "unknown" past the last strip): however long a busy machine takes.
        self._probe_pending = set(names)
        self.query(names)

    def _finish_probe(self) -> None:
        st = self.state
        n_in = sum(1 for a in self._probe_names if a.startswith("/ch/"))
        n_bus = sum(1 for a in self._probe_names if a.startswith("/bus/"))
        if n_in and n_bus and (n_in, n_bus) != (st.n_in, st.n_bus):
            st.resize(n_in, n_bus)
        else:
            st.known.clear()
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
        if self._probe_until and not self._probe_pending:
            self._probe_until = 0.0
            self._finish_probe()
            if self.pair:
                self.send("/ls/pair", self.pair)
        elif self._probe_until and now >= self._probe_until:
            # UDP may drop an answer: ask again for the names still missing.
            self._probe_until = now + PROBE_S
            self.query(sorted(self._probe_pending))
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
        if self.meters:
            self.send("/meters", "/ls/meters")

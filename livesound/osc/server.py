"""The OSC server: the engine's X32-dialect remote control over UDP.

Runs on the engine's asyncio loop, never on the audio thread: a change from
a tablet goes through ``Mixer.set`` like any other and reaches the audio
plane as a published change set. ``handle_datagram`` is a plain function
from one datagram to the replies it causes, so the fuzz tests drive it
without sockets.
"""

import asyncio
import contextlib
import json
import logging
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pythonosc.osc_packet import OscPacket

from livesound.audio.meters import Meters
from livesound.control.events import Change, Source
from livesound.control.mixer import Mixer
from livesound.control.registry import ParamError
from livesound.control.taper import db_to_fader
from livesound.osc import dialect, meterblob
from livesound.osc.discovery import ipv4_addresses
from livesound.osc.roles import Permissions, Role, load_permissions
from livesound.osc.wire import bundle, message

log = logging.getLogger("livesound.osc")

Address = tuple[str, int]
Reply = tuple[bytes, Address]

DEFAULT_PORT = 10023
SUBSCRIPTION_S = 10.0  # /xremote and /meters last this long unless renewed
MAX_SUBSCRIBERS = 64
MAX_PACKET = 16384  # bytes; larger datagrams are dropped unread
MAX_BUNDLE = 128  # messages per datagram
MAX_FUTURE_S = 10.0  # bundles timed further ahead than this are refused
METER_PERIOD_S = 0.05  # X32 sends meters every 50 ms
X32_MODEL, X32_VERSION = "X32", "4.06"


def _grow_receive_buffer(sock: socket.socket, size: int = 1 << 22) -> None:
    """A deep socket buffer absorbs bursts (a scene of faders from a surface)
    while the loop is busy; beyond the system's limit, only root may go."""
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            return
        except OSError:
            continue


SUPPORTED_TAGS = frozenset("ifsbhdTFN")
MAX_NESTING = 8


def _well_formed(data: bytes, depth: int = 0) -> bool:
    """Whether a bundle's element sizes are sane (all positive, 4-aligned,
    inside the datagram): python-osc loops forever on a negative size."""
    if not data.startswith(b"#bundle\0"):
        return True
    if depth > MAX_NESTING or len(data) < 16:
        return False
    pos = 16
    while pos < len(data):
        if pos + 4 > len(data):
            return False
        size = struct.unpack(">i", data[pos : pos + 4])[0]
        pos += 4
        if size <= 0 or size % 4 or pos + size > len(data):
            return False
        if not _well_formed(data[pos : pos + size], depth + 1):
            return False
        pos += size
    return True


def _supported(dgram: bytes) -> bool:
    """Whether every type tag of a message is one python-osc really decodes.

    python-osc silently skips tags it does not know without consuming their
    bytes, which would shift every following argument.
    """
    start = dgram.find(b"\0")
    start = (start // 4 + 1) * 4 if start >= 0 else len(dgram)
    end = dgram.find(b"\0", start)
    tags = dgram[start : end if end >= 0 else len(dgram)]
    return not tags or (tags[:1] == b"," and set(tags[1:].decode("ascii", "replace"))
                        <= SUPPORTED_TAGS)  # fmt: skip


def _tagged(value: Any) -> tuple[str, Any]:
    if isinstance(value, str):
        return "s", value
    if isinstance(value, bytes):
        return "b", value
    if isinstance(value, bool | int):
        return "i", int(value)
    return "f", float(value)


@dataclass
class TokenBucket:
    """Per-client rate limit: ``rate`` messages/s with bursts of ``burst``."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = 0.0
    warned: float = 0.0  # when the client was last told it is being limited

    def take(self, now: float) -> bool:
        # A clock stepped backwards (NTP) must not lock the client out.
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class ServerStats:
    """What the server saw, for the status bar and the tests."""

    counts: Counter = field(default_factory=Counter)

    def __getitem__(self, key: str) -> int:
        return self.counts[key]


class OscServer:
    """X32-dialect OSC over UDP in front of a Mixer."""

    def __init__(
        self,
        mixer: Mixer,
        permissions: Permissions | None = None,
        *,
        meters: Callable[[], Meters | None] | None = None,
        status: Callable[[], dict] | None = None,
        name: str = "livesound",
        rate: float = 2000.0,
        burst: float = 500.0,
    ) -> None:
        self.mixer = mixer
        self.registry = mixer.registry
        self.permissions = permissions or load_permissions(None)
        self.meters = meters
        self.status = status
        self.name = name
        self.rate, self.burst = rate, burst
        self.stats = ServerStats()
        self.subscribers: dict[Address, float] = {}
        self.meter_subscriptions: dict[tuple[Address, str], float] = {}
        self._buckets: dict[Address, TokenBucket] = {}
        self._logged: dict[Address, float] = {}
        self._extra: dict[str, Callable] = {}
        self._extra_stats: dict[str, Callable[[], object]] = {}
        self._pair_failures: dict[str, tuple[int, float]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._meter_task: asyncio.Task | None = None
        self._unsubscribe = mixer.subscribe(self._push_change)
        self.local_ip = "127.0.0.1"

    # -- socket ---------------------------------------------------------------

    async def start(self, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> int:
        """Bind and serve; returns the bound port."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        server = self

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr) -> None:
                for reply, to in server.handle_datagram(data, addr[:2]):
                    server._send(reply, to)

            def error_received(self, exc: Exception) -> None:
                server.stats.counts["socket_errors"] += 1

        self._transport, _ = await self._loop.create_datagram_endpoint(
            Protocol, local_addr=(host, port)
        )
        _grow_receive_buffer(self._transport.get_extra_info("socket"))
        self._meter_task = self._loop.create_task(self._meter_loop())
        if host not in ("0.0.0.0", "", "::"):
            self.local_ip = host
        else:
            self.local_ip = next(iter(ipv4_addresses()), "127.0.0.1")
        return self._transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        """Stop serving (from the loop's thread); see also ``aclose``."""
        self._unsubscribe()
        self._unsubscribe = lambda: None
        if self._meter_task:
            self._meter_task.cancel()
        if self._transport:
            self._transport.close()

    async def aclose(self) -> None:
        """Stop serving and wait for the meter task to end."""
        self.close()
        if self._meter_task:
            with contextlib.suppress(asyncio.CancelledError):
                await self._meter_task

    def _send(self, data: bytes, addr: Address) -> None:
        if self._transport is None or self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._transport.sendto(data, addr)
        else:
            self._loop.call_soon_threadsafe(self._transport.sendto, data, addr)

    # -- one datagram -----------------------------------------------------------

    def handle_datagram(
        self, data: bytes, addr: Address, now: float | None = None
    ) -> list[Reply]:
        """Everything one datagram causes: the replies to send (to ``addr``)."""
        now = time.time() if now is None else now
        counts = self.stats.counts
        counts["datagrams"] += 1
        if len(data) > MAX_PACKET:
            counts["oversized"] += 1
            return []
        if not _well_formed(data):
            counts["malformed"] += 1
            return []
        try:
            timed = OscPacket(data).messages
        except Exception:  # a hostile datagram may break the parser in any way
            counts["malformed"] += 1
            return []
        if len(timed) > MAX_BUNDLE:
            counts["oversized"] += 1
            return []
        bucket = self._buckets.get(addr)
        if bucket is None:
            if len(self._buckets) > 4096:
                self._buckets.clear()
                self._logged.clear()
            bucket = self._buckets[addr] = TokenBucket(
                self.rate, self.burst, self.burst, now
            )
        # python-osc stamps immediate messages with the wall clock, so
        # timetags are compared with the wall clock whatever ``now`` is.
        if any(t.time > time.time() + MAX_FUTURE_S for t in timed):
            counts["future"] += 1
            if not bucket.take(now):
                counts["rate_limited"] += 1
                return []
            return [
                (self._error(addr, "#bundle", "timetag too far in the future"), addr)
            ]
        bad = next((t.message for t in timed if not _supported(t.message.dgram)), None)
        if bad is not None:
            counts["malformed"] += 1
            if not bucket.take(now):
                counts["rate_limited"] += 1
                return []
            text = "unsupported OSC type tag (use i, f, s, b, h, d, T, F, N)"
            return [(self._error(addr, str(bad.address), text), addr)]
        role = self.permissions.role_for(addr[0])
        replies: list[Reply] = []
        for t in timed:
            if not bucket.take(now):
                counts["rate_limited"] += 1
                if now - bucket.warned > 1.0:
                    bucket.warned = now
                    text = f"rate limited: more than {self.rate:.0f} messages/s"
                    replies.append((self._error(addr, t.message.address, text), addr))
                continue
            counts["messages"] += 1
            msg = t.message
            out = self._handle(addr, role, msg.address, list(msg.params), now)
            replies.extend((r, addr) for r in out)
        return replies

    def _error(self, addr: Address, address: str, text: str) -> bytes:
        self.stats.counts["errors"] += 1
        # Logged, but at most once a second per client: a misbehaving
        # tablet must not flood the engine's log.
        now = time.monotonic()
        if now - self._logged.get(addr, 0.0) > 1.0:
            self._logged[addr] = now
            log.warning("refused %s from %s:%d: %s", address, addr[0], addr[1], text)
        return message("/ls/error", ("s", address), ("s", text))

    def _handle(
        self, addr: Address, role: Role, address: str, args: list, now: float
    ) -> list[bytes]:
        if not isinstance(address, str) or not address.startswith("/"):
            self.stats.counts["malformed"] += 1
            return []
        handler = self._commands.get(address) or self._extra.get(address)
        if handler is not None:
            if not role.may_read(address):
                return [self._error(addr, address, f"not allowed for role {role}")]
            return handler(self, addr, role, args, now)
        if address not in self.registry:
            self.stats.counts["unknown"] += 1
            return [self._error(addr, address, "unknown address")]
        param = self.registry[address]
        if not args:
            if not role.may_read(address):
                return [self._error(addr, address, f"not allowed for role {role}")]
            return [message(address, dialect.encode(param, self.mixer.get(address)))]
        if not role.may_write(address):
            self.stats.counts["refused"] += 1
            return [self._error(addr, address, f"read-only for role {role}")]
        try:
            value = dialect.decode(param, args)
            self.mixer.set(address, value, source=Source.surface(addr))
        except ParamError as exc:
            return [self._error(addr, address, str(exc))]
        self.stats.counts["sets"] += 1
        return []

    # -- X32 commands -------------------------------------------------------------

    def _xinfo(self, addr, role, args, now) -> list[bytes]:
        return [message("/xinfo", ("s", self.local_ip), ("s", self.name),
                        ("s", X32_MODEL), ("s", X32_VERSION))]  # fmt: skip

    def _info(self, addr, role, args, now) -> list[bytes]:
        return [message("/info", ("s", "V2.07"), ("s", self.name), ("s", X32_MODEL),
                        ("s", X32_VERSION))]  # fmt: skip

    def _status(self, addr, role, args, now) -> list[bytes]:
        return [
            message("/status", ("s", "active"), ("s", self.local_ip), ("s", self.name))
        ]

    def _xremote(self, addr, role, args, now) -> list[bytes]:
        self._expire(now)
        if addr not in self.subscribers and len(self.subscribers) >= MAX_SUBSCRIBERS:
            return [
                self._error(addr, "/xremote", f"{MAX_SUBSCRIBERS} subscribers already")
            ]
        self.subscribers[addr] = now + SUBSCRIPTION_S
        return []

    def _unsubscribe_cmd(self, addr, role, args, now) -> list[bytes]:
        self.subscribers.pop(addr, None)
        for key in [k for k in self.meter_subscriptions if k[0] == addr]:
            del self.meter_subscriptions[key]
        return []

    def _meters_cmd(self, addr, role, args, now) -> list[bytes]:
        bank = args[0] if args and isinstance(args[0], str) else ""
        if bank not in METER_BANKS and self._mix_meter(bank) is None:
            banks = ", ".join(METER_BANKS)
            return [self._error(addr, "/meters", f"ask for one of {banks} or "
                                "/ls/meters/mix/NN")]  # fmt: skip
        self._expire(now)
        key = (addr, bank)
        if (
            key not in self.meter_subscriptions
            and len(self.meter_subscriptions) >= MAX_SUBSCRIBERS
        ):
            return [
                self._error(
                    addr, "/meters", f"{MAX_SUBSCRIBERS} meter subscriptions already"
                )
            ]
        self.meter_subscriptions[key] = now + SUBSCRIPTION_S
        return []

    def _mix_meter(self, bank: str) -> int | None:
        """The mix of a per-mix meter bank ``/ls/meters/mix/NN``, else None."""
        prefix = "/ls/meters/mix/"
        if bank.startswith(prefix) and bank[len(prefix) :].isdigit():
            mix = int(bank[len(prefix) :])
            if 1 <= mix <= self.registry.n_bus:
                return mix
        return None

    def _meter_packet(self, bank: str, m: Meters) -> bytes:
        """One meter update: an X32 blob, or for a performer's mix a bundle of
        one message per input (level on the fader law, as tablet meter
        widgets expect) plus the mix master."""
        mix = self._mix_meter(bank)
        if mix is None:
            blob = meterblob.blob(METER_BANKS[bank](m, self.registry.n_bus))
            return message(bank, ("b", blob))
        levels = [*m.in_peak_db, m.out_peak_db[mix - 1]]
        names = [f"ch/{c + 1:02d}" for c in range(len(m.in_peak_db))] + ["master"]
        return bundle(
            message(f"{bank}/{name}", ("f", db_to_fader(float(db))))
            for name, db in zip(names, levels, strict=True)
        )

    def _renew(self, addr, role, args, now) -> list[bytes]:
        if (
            args
            and isinstance(args[0], str)
            and (addr, args[0]) in self.meter_subscriptions
        ):
            self.meter_subscriptions[(addr, args[0])] = now + SUBSCRIPTION_S
        elif addr in self.subscribers:
            self.subscribers[addr] = now + SUBSCRIPTION_S
        return []

    def _node(self, addr, role, args, now) -> list[bytes]:
        if len(args) != 1 or not isinstance(args[0], str):
            return [self._error(addr, "/node", "takes one string, e.g. ch/01/mix")]
        prefix = "/" + args[0].strip("/") + "/"
        fields = [p for p in self.registry if p.address.startswith(prefix)
                  and "/" not in p.address[len(prefix):]]  # fmt: skip
        if not fields:
            return [self._error(addr, "/node", f"no node {args[0]}")]
        text = " ".join(
            dialect.format_node_value(p, self.mixer.get(p.address)) for p in fields
        )
        return [message("node", ("s", f"{prefix[:-1]} {text}\n"))]

    def _pair(self, addr, role, args, now) -> list[bytes]:
        if len(args) != 1 or not isinstance(args[0], str):
            return [self._error(addr, "/ls/pair", "takes the pairing code as a string")]
        # Guessing codes: after a wrong one, that address waits a while
        # (doubling up to a minute) before it may try again.
        failures, until = self._pair_failures.get(addr[0], (0, 0.0))
        if now < until:
            return [self._error(addr, "/ls/pair", "too many wrong codes; wait")]
        granted = self.permissions.pair(addr[0], args[0])
        if granted is None:
            self._pair_failures[addr[0]] = (
                failures + 1,
                now + min(60.0, 0.5 * 2**failures),
            )
            return [self._error(addr, "/ls/pair", "unknown pairing code")]
        self._pair_failures.pop(addr[0], None)
        log.info("paired %s as %s", addr[0], granted)
        return [message("/ls/pair", ("s", str(granted)))]

    def _stats(self, addr, role, args, now) -> list[bytes]:
        report = {"osc": dict(self.stats.counts), "subscribers": len(self.subscribers)}
        if self.status is not None:
            report["engine"] = self.status()
        report.update(
            {key: report_of() for key, report_of in self._extra_stats.items()}
        )
        return [message("/ls/stats", ("s", json.dumps(report)))]

    def add_command(self, address: str, handler: Callable, write: bool = True) -> None:
        """Serve ``address`` with ``handler(args) -> list of (address, args...)``.

        ``write`` commands change the show and need a role that may write
        ``address`` (the engineer); replies go to the sender; a handler's
        ``ValueError`` becomes an error reply.
        """

        def run(server, addr, role, args, now) -> list[bytes]:
            if write and not role.may_write(address):
                server.stats.counts["refused"] += 1
                return [server._error(addr, address, f"not allowed for role {role}")]
            try:
                out = handler(args)
            except ValueError as exc:
                return [server._error(addr, address, str(exc))]
            return [message(a, *(_tagged(v) for v in vals)) for a, *vals in out]

        self._extra[address] = run

    def add_stats(self, key: str, report: Callable[[], object]) -> None:
        """Add ``key`` (``report()``, JSON-able) to the ``/ls/stats`` answer."""
        self._extra_stats[key] = report

    def push(self, address: str, *values: Any) -> None:
        """Push a status message (not a parameter) to every /xremote
        subscriber; safe from any thread."""
        if self._elsewhere():
            self._post(self.push, address, *values)
            return
        self._expire(time.time())
        data = message(address, *(_tagged(v) for v in values))
        for addr in list(self.subscribers):
            self._send(data, addr)
            self.stats.counts["pushes"] += 1

    _commands: dict[str, Callable] = {
        "/xinfo": _xinfo, "/info": _info, "/status": _status, "/xremote": _xremote,
        "/unsubscribe": _unsubscribe_cmd, "/meters": _meters_cmd, "/renew": _renew,
        "/node": _node, "/ls/pair": _pair, "/ls/stats": _stats,
    }  # fmt: skip

    # -- pushes -----------------------------------------------------------------

    def _expire(self, now: float) -> None:
        for a in [a for a, t in self.subscribers.items() if t < now]:
            del self.subscribers[a]
        for k in [k for k, t in self.meter_subscriptions.items() if t < now]:
            del self.meter_subscriptions[k]

    def _elsewhere(self) -> bool:
        """Whether this thread is not the network loop's (which alone
        touches the subscriber tables) while that loop runs."""
        return self._loop is not None and threading.get_ident() != self._loop_thread

    def _post(self, fn: Callable, *args: Any) -> None:
        """Run ``fn(*args)`` on the network loop's thread, soon."""
        # A loop that has closed has nobody left to tell.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    def _push_change(self, change: Change) -> None:
        """Tell every /xremote subscriber (but the sender) about a change,
        from the network loop's thread whichever thread made it."""
        if self._elsewhere():
            self._post(self._push_change, change)
            return
        if not self.subscribers:
            return
        self._expire(time.time())
        address, sender = change.address, change.source.peer
        data = message(address, dialect.encode(self.registry[address], change.new))
        for addr in list(self.subscribers):
            if addr != sender and self.permissions.role_for(addr[0]).may_read(address):
                self._send(data, addr)
                self.stats.counts["pushes"] += 1

    async def _meter_loop(self) -> None:
        while True:
            await asyncio.sleep(METER_PERIOD_S)
            self._expire(time.time())
            if not self.meter_subscriptions or self.meters is None:
                continue
            m = self.meters()
            if m is None:
                continue
            packets: dict[str, bytes] = {}
            for addr, bank in list(self.meter_subscriptions):
                if bank not in packets:
                    packets[bank] = self._meter_packet(bank, m)
                self._send(packets[bank], addr)


def _x32(values: np.ndarray, slots: int, fill: float = 0.0) -> np.ndarray:
    """Exactly the X32's number of slots: X32 apps read meters by position."""
    out = np.full(slots, fill)
    k = min(slots, len(values))
    out[:k] = values[:k]
    return out


def _lin(db: np.ndarray) -> np.ndarray:
    return np.power(10.0, np.asarray(db) / 20.0)


# Meter banks: X32 /meters/1 (inputs: level, gate and dynamics gain) and
# /meters/2 (buses, 6 matrix slots we do not have, main L/R, mono), levels
# as linear peak 0..1 and gain reductions as linear gains (1 = none), as the
# X32 sends them; /ls/meters holds everything livesound meters.
METER_BANKS: dict[str, Callable[[Meters, int], np.ndarray]] = {
    "/meters/1": lambda m, nb: np.concatenate(
        [
            _x32(_lin(m.in_peak_db), 32),
            _x32(_lin(m.gate_gr_db), 32, 1.0),
            _x32(_lin(m.comp_gr_db), 32, 1.0),
        ]  # fmt: skip
    ),
    "/meters/2": lambda m, nb: np.concatenate(
        [
            _x32(_lin(m.out_peak_db[:nb]), 16),
            np.zeros(6),
            _lin(m.out_peak_db[nb : nb + 2]),
            [0.0],
        ]  # fmt: skip
    ),
    "/ls/meters": lambda m, nb: meterblob.values(m),
}

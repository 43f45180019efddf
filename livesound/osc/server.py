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
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from livesound.audio.meters import Meters
from livesound.control.mixer import Mixer
from livesound.control.registry import ParamError
from livesound.control.taper import db_to_fader
from livesound.osc import dialect, links, snapshot
from livesound.osc.discovery import ipv4_addresses
from livesound.osc.guard import (
    ENGINEER_RATE_FACTOR,
    HOST_BURST,
    HOST_RATE,
    HostBuckets,
    LogThrottle,
    PairingGate,
    ReplyBudget,
)
from livesound.osc.roles import (
    ConfigError,
    Permissions,
    Role,
    load_permissions,
    parse_role,
)

log = logging.getLogger("livesound.osc")

Address = tuple[str, int]
Reply = tuple[bytes, Address]

DEFAULT_PORT = 10023
SUBSCRIPTION_S = 10.0  # /xremote and /meters last this long unless renewed
MAX_SUBSCRIBERS = 64
# Hosts the show does not know (not listed, not paired) share at most this
# many of the /xremote and of the /meters slots, each host at most
# UNKNOWN_PER_HOST of each: the show's own clients always find room.
UNKNOWN_SHARE = MAX_SUBSCRIBERS // 2
UNKNOWN_PER_HOST = 2
METER_STREAMS_PER_HOST = 8  # /meters banks one known host may stream at once
PAIR_VALID_MIN = (1, 1440)  # minutes a code from /ls/pair/new may be valid
PAIRING_STATUS = "/ls/status/pairing"
MAX_PACKET = 16384  # bytes; larger datagrams are dropped unread
MAX_BUNDLE = 128  # messages per datagram
MAX_FUTURE_S = 10.0  # bundles timed further ahead than this are refused
METER_PERIOD_S = 0.05  # X32 sends meters every 50 ms
X32_MODEL, X32_VERSION = "X32", "4.06"


def message(address: str, *args: tuple[str, Any]) -> bytes:
    """An OSC message from ``(typetag, value)`` pairs."""
    b = OscMessageBuilder(address)
    for tag, value in args:
        b.add_arg(value, tag)
    return b.build().dgram


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


def _messages(data: bytes, depth: int = 0) -> list[bytes] | None:
    """The messages of a datagram, None if it is malformed (neither a
    message nor a bundle of them).

    Checked before python-osc sees it: it loops forever on a negative
    bundle element size, and logs a warning for every element it cannot
    identify (a flood would flood the log).
    """
    if not data.startswith(b"#bundle\0"):
        return [data] if data.startswith(b"/") else None
    if depth > MAX_NESTING or len(data) < 16:
        return None
    found: list[bytes] = []
    pos = 16
    while pos < len(data):
        if pos + 4 > len(data):
            return None
        size = struct.unpack(">i", data[pos : pos + 4])[0]
        pos += 4
        if size <= 0 or size % 4 or pos + size > len(data):
            return None
        inner = _messages(data[pos : pos + size], depth + 1)
        if inner is None:
            return None
        found += inner
        pos += size
    return found


def _supported(dgram: bytes) -> bool:
    """Whether every type tag of a message is one python-osc really decodes.

    python-osc skips tags it does not know without consuming their bytes,
    which would shift every following argument, and logs each one.
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


def meter_blob(values: np.ndarray) -> bytes:
    """X32 meter blob: int32 count, then little-endian float32 values."""
    v = np.ascontiguousarray(values, dtype="<f4")
    return struct.pack("<i", v.size) + v.tobytes()


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
        rate: float = HOST_RATE,
        burst: float = HOST_BURST,
        budget: ReplyBudget | None = None,
        pairing: PairingGate | None = None,
    ) -> None:
        self.mixer = mixer
        self.registry = mixer.registry
        self.permissions = permissions or load_permissions(None)
        self.meters = meters
        self.status = status
        self.name = name
        self.hosts = HostBuckets(rate, burst)
        self.budget = budget or ReplyBudget()
        self.pairing = pairing or PairingGate()
        self.stats = ServerStats()
        # Touched on the network loop's thread only (pushes from other
        # threads are handed over to it).
        self.subscribers: dict[Address, float] = {}
        self.meter_subscriptions: dict[tuple[Address, str], float] = {}
        self._refusals = LogThrottle(log)
        self._extra: dict[str, Callable] = {}
        self._extra_stats: dict[str, Callable[[], object]] = {}
        self._pair_backoff: dict[str, tuple[int, float]] = {}
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
        if self._transport is not None:
            self._transport.sendto(data, addr)

    def _handed_over(self, fn: Callable, *args: Any) -> bool:
        """From a thread other than the network loop's, schedule ``fn(*args)``
        on the loop and return True: the subscriber tables are only ever
        touched there."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            return False
        with contextlib.suppress(RuntimeError):  # the loop is closed: no one to tell
            loop.call_soon_threadsafe(fn, *args)
        return True

    def _affordable(self, host: str, size: int, now: float) -> bool:
        """Whether ``size`` bytes may go to ``host``: always for a host the
        show knows; for others within their ``ReplyBudget``."""
        if self.permissions.known(host) or self.budget.spend(host, size, now):
            return True
        self.stats.counts["over_budget"] += 1
        return False

    # -- one datagram -----------------------------------------------------------

    def handle_datagram(
        self, data: bytes, addr: Address, now: float | None = None
    ) -> list[Reply]:
        """Everything one datagram causes: the replies to send (to ``addr``)."""
        now = time.time() if now is None else now
        self.stats.counts["datagrams"] += 1
        host = addr[0]
        if not self.permissions.known(host):
            self.budget.earn(host, len(data), now)
        replies = self._replies(data, addr, now)
        # Checked after the datagram: a /ls/pair in it may have made the host known.
        return [(r, to) for r, to in replies if self._affordable(host, len(r), now)]

    def _rate_factor(self, host: str) -> float:
        """How many times the normal rate limit ``host`` gets: more for a
        host the show lists (or paired) as an engineer."""
        role = self.permissions.by_address.get(host)
        return (
            ENGINEER_RATE_FACTOR
            if role is not None and role.kind == "engineer"
            else 1.0
        )

    def _replies(self, data: bytes, addr: Address, now: float) -> list[Reply]:
        counts = self.stats.counts
        if len(data) > MAX_PACKET:
            counts["oversized"] += 1
            return []
        parts = _messages(data)
        if parts is None or len(parts) > MAX_BUNDLE:
            counts["malformed" if parts is None else "oversized"] += 1
            return []
        bucket = self.hosts.bucket(addr[0], now, self._rate_factor(addr[0]))
        bad = next((m for m in parts if not _supported(m)), None)
        if bad is not None:
            # Refused before python-osc parses it (which would log each tag).
            counts["malformed"] += 1
            if not bucket.take(now):
                counts["rate_limited"] += 1
                return []
            address = bad[: bad.find(b"\0")].decode("utf-8", "replace")
            text = "unsupported OSC type tag (use i, f, s, b, h, d, T, F, N)"
            return [(self._error(addr, address, text), addr)]
        try:
            timed = OscPacket(data).messages
        except Exception:  # a hostile datagram may break the parser in any way
            counts["malformed"] += 1
            return []
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
        role = self.permissions.role_for(addr[0])
        replies: list[Reply] = []
        for t in timed:
            if not bucket.take(now):
                counts["rate_limited"] += 1
                if now - bucket.warned > 1.0:
                    bucket.warned = now
                    text = (f"rate limited: more than {bucket.rate:.0f} messages/s "
                            "from this address")  # fmt: skip
                    replies.append((self._error(addr, t.message.address, text), addr))
                continue
            counts["messages"] += 1
            msg = t.message
            out = self._handle(addr, role, msg.address, list(msg.params), now)
            replies.extend((r, addr) for r in out)
        return replies

    def _error(self, addr: Address, address: str, text: str) -> bytes:
        self.stats.counts["errors"] += 1
        # Logged, but at most once a second per host and a few lines a
        # second in all: a flood must not flood the engine's log.
        self._refusals.warning(addr[0], time.monotonic(), "refused %s from %s:%d: %s",
                               address, addr[0], addr[1], text)  # fmt: skip
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
        if not role.may_write(address, self._owner):
            self.stats.counts["refused"] += 1
            return [self._error(addr, address, self._read_only(role, address))]
        try:
            value = dialect.decode(param, args)
            changes = {address: value}
            # As on the X32: a linked pair's setting lands on both halves.
            partner = links.mirror(address, self._linked)
            if partner in self.registry:
                changes[partner] = value
            self.mixer.set_many(changes, source=addr)
        except ParamError as exc:
            return [self._error(addr, address, str(exc))]
        self.stats.counts["sets"] += 1
        self.stats.counts["mirrored"] += len(changes) - 1
        return []

    def _linked(self, link: str) -> bool:
        return link in self.registry and bool(self.mixer.get(link))

    def _owner(self, mix: int) -> int:
        return links.owner(mix, self._linked)

    def _read_only(self, role: Role, address: str) -> str:
        """Why ``role`` may not write ``address``, naming a linked pair's owner."""
        if role.kind == "performer" and role.may_write(address):
            link = links.link_address(role.mix)
            return (f"read-only for role {role}: mix {role.mix} is linked "
                    f"({link}), the pair belongs to performer:{self._owner(role.mix)}")  # fmt: skip
        return f"read-only for role {role}"

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

    def _no_room(self, holders: list[str], host: str, what: str, per_host: int) -> str:
        """Why ``host`` may not add one more of ``what`` held by ``holders``
        (one host per subscription), or "" if it may."""
        if len(holders) >= MAX_SUBSCRIBERS:
            return f"{MAX_SUBSCRIBERS} {what} already"
        known = self.permissions.known(host)
        if holders.count(host) >= (per_host if known else UNKNOWN_PER_HOST):
            return f"{holders.count(host)} {what} from this address already"
        unknown = sum(not self.permissions.known(h) for h in holders)
        if not known and unknown >= UNKNOWN_SHARE:
            return f"{UNKNOWN_SHARE} {what} from unpaired addresses already: pair first"
        return ""

    def _xremote(self, addr, role, args, now) -> list[bytes]:
        self._expire(now)
        if addr not in self.subscribers:
            holders = [a[0] for a in self.subscribers]
            refusal = self._no_room(holders, addr[0], "subscribers", MAX_SUBSCRIBERS)
            if refusal:
                return [self._error(addr, "/xremote", refusal)]
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
        if key not in self.meter_subscriptions:
            holders = [a[0] for a, _ in self.meter_subscriptions]
            refusal = self._no_room(holders, addr[0], "meter subscriptions",
                                    METER_STREAMS_PER_HOST)  # fmt: skip
            if refusal:
                return [self._error(addr, "/meters", refusal)]
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
            blob = meter_blob(METER_BANKS[bank](m, self.registry.n_bus))
            return message(bank, ("b", blob))
        bundle = OscBundleBuilder(IMMEDIATELY)
        levels = [*m.in_peak_db, m.out_peak_db[mix - 1]]
        names = [f"ch/{c + 1:02d}" for c in range(len(m.in_peak_db))] + ["master"]
        for name, db in zip(names, levels, strict=True):
            msg = OscMessageBuilder(f"{bank}/{name}")
            msg.add_arg(db_to_fader(float(db)), "f")
            bundle.add_content(msg.build())
        return bundle.build().dgram

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
        host, code = addr[0], args[0]
        perms = self.permissions
        if self.pairing.closed_for(now):
            # A device that holds the code's role already (a console
            # reconnecting) learns nothing new, so it is answered.
            held = perms.by_address.get(host)
            if held is not None and perms.code_role(code, now) == held:
                return [message("/ls/pair", ("s", str(held)))]
            return [self._error(addr, "/ls/pair", self.pairing_status(now))]
        # Guessing codes: after a wrong one, that address waits a while
        # (doubling up to a minute) before it may try again; and wrong codes
        # from every address together close pairing (``PairingGate``).
        failures, until = self._pair_backoff.get(host, (0, 0.0))
        if now < until:
            return [self._error(addr, "/ls/pair", "too many wrong codes; wait")]
        granted = perms.pair(host, code, now)
        if granted is None:
            if len(self._pair_backoff) > MAX_SUBSCRIBERS:
                self._pair_backoff = {h: f for h, f in self._pair_backoff.items()
                                      if f[1] > now}  # fmt: skip
            self._pair_backoff[host] = (
                failures + 1,
                now + min(60.0, 0.5 * 2**failures),
            )
            if self.pairing.failed(now):
                log.warning("pairing closed for %.0f s: %d wrong codes within %.0f s "
                            "(the last from %s)", self.pairing.closed_s,
                            self.pairing.limit, self.pairing.window, host)  # fmt: skip
                self.push(PAIRING_STATUS, self.pairing_status(now))
            return [self._error(addr, "/ls/pair", "unknown pairing code")]
        self._pair_backoff.pop(host, None)
        log.info("paired %s as %s", host, granted)
        return [message("/ls/pair", ("s", str(granted)))]

    def pairing_status(self, now: float) -> str:
        """``open``, or why and for how long pairing is closed."""
        closed = self.pairing.closed_for(now)
        if not closed:
            return "open"
        return f"pairing closed for {closed:.0f} s: too many wrong codes"

    def _pairing_cmd(self, addr, role, args, now) -> list[bytes]:
        return [message(PAIRING_STATUS, ("s", self.pairing_status(now)))]

    def _pair_new(self, addr, role, args, now) -> list[bytes]:
        """``/ls/pair/new ,s ROLE [,i MINUTES]``: a fresh random code (engineer only)."""
        if not role.may_write("/ls/pair/new"):
            self.stats.counts["refused"] += 1
            return [self._error(addr, "/ls/pair/new", f"not allowed for role {role}")]
        lo, hi = PAIR_VALID_MIN
        minutes = args[1] if len(args) == 2 else 10
        if (
            not 1 <= len(args) <= 2
            or not isinstance(args[0], str)
            or not isinstance(minutes, int)
            or not lo <= minutes <= hi
        ):
            text = f"takes a role and minutes {lo}..{hi}, e.g. ,si performer:2 10"
            return [self._error(addr, "/ls/pair/new", text)]
        try:
            granted = parse_role(args[0], self.registry.n_bus)
            code = self.permissions.new_code(granted, 60.0 * minutes, now)
        except ConfigError as exc:
            return [self._error(addr, "/ls/pair/new", str(exc))]
        log.info(
            "%s made a pairing code for %s, valid %d min", addr[0], granted, minutes
        )
        return [
            message("/ls/pair/new", ("s", code), ("s", str(granted)), ("i", minutes))
        ]

    def _stats(self, addr, role, args, now) -> list[bytes]:
        report = {"osc": dict(self.stats.counts), "subscribers": len(self.subscribers),
                  "pairing": self.pairing.report(now)}  # fmt: skip
        if self.status is not None:
            report["engine"] = self.status()
        report.update(
            {key: report_of() for key, report_of in self._extra_stats.items()}
        )
        return [message("/ls/stats", ("s", json.dumps(report)))]

    def _snapshot(self, addr, role, args, now) -> list[bytes]:
        # Kilobytes for a few bytes asked: only for surfaces the show knows
        # (listed or paired), never an amplifier for a spoofed address.
        if addr[0] not in self.permissions.by_address:
            return [self._error(addr, snapshot.ADDRESS, "pair first (/ls/pair)")]
        ident = args[0] if args and isinstance(args[0], int) else 0
        values = {a: v for a, v in self.mixer.snapshot().items() if role.may_read(a)}
        parts = snapshot.encode(values, self.registry.n_in, self.registry.n_bus)
        return [
            message(
                snapshot.ADDRESS, ("i", ident), ("i", k), ("i", len(parts)), ("b", part)
            )  # fmt: skip
            for k, part in enumerate(parts)
        ]

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
        if self._handed_over(self.push, address, *values):
            return
        now = time.time()
        self._expire(now)
        data = message(address, *(_tagged(v) for v in values))
        for addr in list(self.subscribers):
            if self._affordable(addr[0], len(data), now):
                self._send(data, addr)
                self.stats.counts["pushes"] += 1

    _commands: dict[str, Callable] = {
        "/xinfo": _xinfo, "/info": _info, "/status": _status, "/xremote": _xremote,
        "/unsubscribe": _unsubscribe_cmd, "/meters": _meters_cmd, "/renew": _renew,
        "/node": _node, "/ls/pair": _pair, "/ls/stats": _stats,
        "/ls/pair/new": _pair_new, PAIRING_STATUS: _pairing_cmd,
        snapshot.ADDRESS: _snapshot,
    }  # fmt: skip

    # -- pushes -----------------------------------------------------------------

    def _expire(self, now: float) -> None:
        for a in [a for a, t in self.subscribers.items() if t < now]:
            del self.subscribers[a]
        for k in [k for k, t in self.meter_subscriptions.items() if t < now]:
            del self.meter_subscriptions[k]

    def _push_change(self, address: str, value: Any, source: object) -> None:
        """Tell every /xremote subscriber (but the sender) about a change;
        from any thread (the Mixer calls it from whichever changed it)."""
        if self._handed_over(self._push_change, address, value, source):
            return
        if not self.subscribers:
            return
        now = time.time()
        self._expire(now)
        data = message(address, dialect.encode(self.registry[address], value))
        for addr in list(self.subscribers):
            if (
                addr != source
                and self.permissions.role_for(addr[0]).may_read(address)
                and self._affordable(addr[0], len(data), now)
            ):
                self._send(data, addr)
                self.stats.counts["pushes"] += 1

    async def _meter_loop(self) -> None:
        while True:
            await asyncio.sleep(METER_PERIOD_S)
            now = time.time()
            self._expire(now)
            if not self.meter_subscriptions or self.meters is None:
                continue
            m = self.meters()
            if m is None:
                continue
            packets: dict[str, bytes] = {}
            for addr, bank in list(self.meter_subscriptions):
                if bank not in packets:
                    packets[bank] = self._meter_packet(bank, m)
                if self._affordable(addr[0], len(packets[bank]), now):
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
    "/ls/meters": lambda m, nb: np.concatenate(
        [
            m.in_peak_db,
            m.in_rms_db,
            m.gate_gr_db,
            m.comp_gr_db,
            m.out_peak_db,
            m.out_rms_db,
            m.limiter_gr_db,
        ]  # fmt: skip
    ),
}

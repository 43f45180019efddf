"""The OSC server: the engine's X32-dialect remote control over UDP.

Runs on the engine's asyncio loop, never on the audio thread: a change from
a tablet goes through ``Mixer.set`` like any other and reaches the audio
plane as a published change set. ``handle_datagram`` is a plain function
from one datagram to the replies it causes, so the fuzz tests drive it
without sockets.

It answers as an X32 does: every address of the X32's tree (``x32tree``:
the registry where livesound has the concept, the X32's default elsewhere),
``/node`` text, subscriptions and meter banks, and no reply to what it
refuses unless the client asked for ``/ls/error`` replies.
"""

import asyncio
import contextlib
import functools
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

from livesound.audio.layout import matrix_outputs, mono_output
from livesound.audio.meters import Meters
from livesound.audio.settings import ConfigError
from livesound.control.events import Change, Source
from livesound.control.groups import solo_addresses
from livesound.control.mixer import Mixer
from livesound.control.registry import Param, ParamError
from livesound.control.taper import db_to_fader
from livesound.osc import dialect, links, meterblob, snapshot
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
    Permissions,
    Role,
    load_permissions,
    parse_role,
)
from livesound.osc.wire import bundle, message, typed
from livesound.osc.x32tree import tree_for

log = logging.getLogger("livesound.osc")

Address = tuple[str, int]
Reply = tuple[bytes, Address]

DEFAULT_PORT = 10023
SUBSCRIPTION_S = 10.0  # /xremote and /meters last this long unless renewed
MAX_SUBSCRIBERS = 64
# Hosts the show does not know (not listed, not paired) share at most this
# many of the /xremote and of the periodic-stream slots, each host at most
# UNKNOWN_PER_HOST of each: the show's own clients always find room.
UNKNOWN_SHARE = MAX_SUBSCRIBERS // 2
UNKNOWN_PER_HOST = 2
FEEDS_PER_HOST = 8  # periodic streams one known host may hold at once
PAIR_VALID_MIN = (1, 1440)  # minutes a code from /ls/pair/new may be valid
PAIRING_STATUS = "/ls/status/pairing"
MAX_PACKET = 16384  # bytes; larger datagrams are dropped unread
MAX_BUNDLE = 128  # messages per datagram
MAX_FUTURE_S = 10.0  # bundles timed further ahead than this are refused
METER_PERIOD_S = 0.05  # X32 sends meters every 50 ms (times the time factor)
MAX_TIME_FACTOR = 99  # X32: a time factor outside 1..99 counts as 1
MAX_FORMAT = 128  # values in one /formatsubscribe blob (names: 32 bytes each)
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


@dataclass
class ServerStats:
    """What the server saw, for the status bar and the tests."""

    counts: Counter = field(default_factory=Counter)

    def __getitem__(self, key: str) -> int:
        return self.counts[key]


@dataclass
class Feed:
    """One periodic stream to one client (``/meters``, ``/subscribe``,
    ``/formatsubscribe``, ``/batchsubscribe``): ``packet`` builds each
    datagram from the latest meters; it lasts until ``expires``."""

    expires: float
    period: float
    packet: Callable[[Meters | None], bytes | None]
    meters: bool = True  # needs a meter reading
    key: tuple = ()  # feeds with the same key share one datagram per tick
    due: float = 0.0


def time_factor(value: Any) -> float:
    """The X32 time factor as a period: 50 ms × factor, 1..99 (else 1)."""
    factor = value if isinstance(value, int) and not isinstance(value, bool) else 1
    return METER_PERIOD_S * (factor if 1 <= factor <= MAX_TIME_FACTOR else 1)


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
        # Periodic streams by (client, name): a meter bank, a subscribed
        # address or a subscription's alias.
        self.feeds: dict[tuple[Address, str], Feed] = {}
        self.tree = tree_for(self.registry)
        # Values of X32 addresses computed on demand (scenes, solo, prefs).
        self._live: dict[str, Callable[[], Any]] = {}
        self._selected = 0  # /-stat/selidx: the strip a surface selected
        self._wants_errors: set[Address] = set()
        self.provide("/-stat/solo", self._soloing)
        self.provide("/-stat/selidx", lambda: self._selected)
        self.provide("/-prefs/name", lambda: self.name)
        for k in range(4):
            self.provide(f"/-prefs/ip/addr/{k}", functools.partial(self._ip_byte, k))
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
            return [(r, addr) for r in self._refuse(addr, address, text)]
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
            text = "timetag too far in the future"
            return [(r, addr) for r in self._refuse(addr, "#bundle", text)]
        role = self.permissions.role_for(addr[0])
        replies: list[Reply] = []
        for t in timed:
            if not bucket.take(now):
                counts["rate_limited"] += 1
                if now - bucket.warned > 1.0:
                    bucket.warned = now
                    text = (f"rate limited: more than {bucket.rate:.0f} messages/s "
                            "from this address")  # fmt: skip
                    refusal = self._refuse(addr, t.message.address, text)
                    replies.extend((r, addr) for r in refusal)
                continue
            counts["messages"] += 1
            msg = t.message
            out = self._handle(addr, role, msg.address, list(msg.params), now)
            replies.extend((r, addr) for r in out)
        return replies

    def _refuse(self, addr: Address, address: str, text: str) -> list[bytes]:
        """An error reply, sent as the X32 would: never for its own addresses.

        The X32 answers nothing it refuses, and tree-reading clients store
        whatever comes back as the value, so ``/ls/error`` goes only to
        ``/ls/...`` requests and to clients that asked (``/ls/errors ,i 1``).
        """
        counts = self.stats.counts
        # Logged, but at most once a second per host and a few lines a
        # second in all: a flood must not flood the engine's log.
        self._refusals.warning(addr[0], time.monotonic(), "refused %s from %s:%d: %s",
                               address, addr[0], addr[1], text)  # fmt: skip
        if not address.startswith("/ls/") and addr not in self._wants_errors:
            counts["refused_quietly"] += 1
            return []
        counts["errors"] += 1
        return [message("/ls/error", ("s", address), ("s", text))]

    def param_at(self, address: str) -> Param | None:
        """The parameter at ``address``: the registry's, else the X32 tree's."""
        return self.registry.params.get(address) or self.tree.params.get(address)

    def value(self, address: str) -> Any:
        """The value (engineering units) an X32 address answers with."""
        live = self._live.get(address)
        if live is not None:
            return live()
        if address in self.registry:
            return self.mixer.get(address)
        return self.tree.params[address].default

    def provide(self, address: str, value: Callable[[], Any]) -> None:
        """Answer reads of the X32 address ``address`` with ``value()``."""
        self._live[address] = value

    def _handle(
        self, addr: Address, role: Role, address: str, args: list, now: float
    ) -> list[bytes]:
        if not isinstance(address, str) or not address.startswith("/"):
            self.stats.counts["malformed"] += 1
            return []
        handler = self._commands.get(address) or self._extra.get(address)
        if handler is not None:
            if not role.may_read(address):
                return self._refuse(addr, address, f"not allowed for role {role}")
            return handler(self, addr, role, args, now)
        param = self.param_at(address)
        if param is None:
            # The X32 answers nothing for an address it does not have.
            self.stats.counts["unknown"] += 1
            return self._refuse(addr, address, "unknown address")
        if not args:
            if not role.may_read(address):
                return self._refuse(addr, address, f"not allowed for role {role}")
            return [message(address, dialect.encode(param, self.value(address)))]
        if not role.may_write(address, self._owner):
            self.stats.counts["refused"] += 1
            return self._refuse(addr, address, self._read_only(role, address))
        mirrored = 0
        try:
            value = dialect.decode(param, args)
            if address in self.registry:
                changes = {address: value}
                # As on the X32: a linked pair's setting lands on both halves.
                partner = links.mirror(address, self._linked)
                if partner in self.registry:
                    changes[partner] = value
                mirrored = len(changes) - 1
                self.mixer.set_many(changes, source=Source.surface(addr))
        except ParamError as exc:
            return self._refuse(addr, address, str(exc))
        if address == "/-stat/selidx":
            self._selected = value
            self._push(address, value, addr)
        elif address not in self.registry:
            self.stats.counts["x32_compat_writes"] += 1  # taken, no effect
            return []
        self.stats.counts["sets"] += 1
        self.stats.counts["mirrored"] += mirrored
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
                return self._refuse(addr, "/xremote", refusal)
        self.subscribers[addr] = now + SUBSCRIPTION_S
        return []

    def _errors_cmd(self, addr, role, args, now) -> list[bytes]:
        """``/ls/errors ,i 1``: send this client ``/ls/error`` for every refusal."""
        if args:
            if len(args) != 1 or not isinstance(args[0], int | float):
                return self._refuse(addr, "/ls/errors", "takes 1 (send) or 0")
            if args[0]:
                if len(self._wants_errors) > 4096:
                    self._wants_errors.clear()
                self._wants_errors.add(addr)
            else:
                self._wants_errors.discard(addr)
        return [message("/ls/errors", ("i", int(addr in self._wants_errors)))]

    def _unsubscribe_cmd(self, addr, role, args, now) -> list[bytes]:
        """No argument: stop everything; ``,s name``: stop that stream."""
        name = _feed_name(args[0]) if args and isinstance(args[0], str) else None
        if name is None:
            self.subscribers.pop(addr, None)
        for key in [k for k in self.feeds if k[0] == addr and name in (None, k[1])]:
            del self.feeds[key]
        return []

    def _renew(self, addr, role, args, now) -> list[bytes]:
        """``,s name`` renews that stream; no argument renews all of them."""
        name = _feed_name(args[0]) if args and isinstance(args[0], str) else None
        for key, feed in self.feeds.items():
            if key[0] == addr and name in (None, key[1]) and feed.expires >= now:
                feed.expires = now + SUBSCRIPTION_S
        if (
            name is None or (addr, name) not in self.feeds
        ) and addr in self.subscribers:
            self.subscribers[addr] = now + SUBSCRIPTION_S
        return []

    def _add_feed(
        self, addr: Address, name: str, feed: Feed, now: float, command: str
    ) -> list[bytes]:
        """Start (or restart) stream ``name`` for ``addr``, if there is room."""
        self._expire(now)
        key = (addr, name)
        if key not in self.feeds:
            holders = [a[0] for a, _ in self.feeds]
            refusal = self._no_room(holders, addr[0], "subscriptions", FEEDS_PER_HOST)
            if refusal:
                return self._refuse(addr, command, refusal)
        feed.due = now
        self.feeds[key] = feed
        return []

    def _meters_cmd(self, addr, role, args, now) -> list[bytes]:
        """``/meters ,s bank [ints...] [time factor]``, as on the X32."""
        bank = _feed_name(args[0]) if args and isinstance(args[0], str) else ""
        n = 1 + _BANK_ARGS.get(bank, 0)
        factor = args[-1] if len(args) > n else 1
        feed = self._meter_feed(bank, bank, args[1:n], factor, now)
        if feed is None:
            return self._refuse(addr, "/meters", f"ask for one of {BANK_NAMES} or "
                                "/ls/meters/mix/NN")  # fmt: skip
        return self._add_feed(addr, bank, feed, now, "/meters")

    def _batchsubscribe(self, addr, role, args, now) -> list[bytes]:
        """``,ssiii alias bank arg0 arg1 tf``: a meter bank under ``alias``."""
        if len(args) != 5 or not all(isinstance(a, str) for a in args[:2]):
            text = "takes ,ssiii alias bank arg arg tf"
            return self._refuse(addr, "/batchsubscribe", text)
        alias = args[0]
        feed = self._meter_feed(alias, _feed_name(args[1]), args[2:4], args[4], now)
        if feed is None or not alias.startswith("/"):
            return self._refuse(addr, "/batchsubscribe", "unknown meter bank or alias")
        return self._add_feed(addr, alias, feed, now, "/batchsubscribe")

    def _meter_feed(
        self, address: str, bank: str, args: list, factor: Any, now: float
    ) -> Feed | None:
        """A stream of meter bank ``bank`` (with its arguments) sent at
        ``address``, every 50 ms × ``factor``; None for an unknown bank."""
        ints = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        ints += [0] * (2 - len(ints))
        mix = self._mix_meter(bank)
        make = METER_BANKS.get(bank)
        if mix is None and make is None:
            return None
        n_bus = self.registry.n_bus

        def packet(m: Meters | None) -> bytes | None:
            if m is None:
                return None
            if mix is not None:
                return _mix_bundle(bank, mix, m)
            blob = meterblob.blob(make(m, n_bus, ints, self._post_fader_gains))
            return message(address, ("b", blob))

        key = (address, bank, *ints[:2])
        return Feed(now + SUBSCRIPTION_S, time_factor(factor), packet, key=key)

    def _subscribe(self, addr, role, args, now) -> list[bytes]:
        """``,s address [tf]``: that parameter's value, periodically."""
        address = args[0] if args and isinstance(args[0], str) else ""
        param = self.param_at(address)
        if param is None or not role.may_read(address):
            return self._refuse(addr, "/subscribe", "takes an address this console has")

        def packet(meters: Meters | None) -> bytes:
            return message(address, dialect.encode(param, self.value(address)))

        period = time_factor(args[1] if len(args) > 1 else 1)
        feed = Feed(now + SUBSCRIPTION_S, period, packet, meters=False, key=(address,))
        return self._add_feed(addr, address, feed, now, "/subscribe")

    def _formatsubscribe(self, addr, role, args, now) -> list[bytes]:
        """``,ss..siii alias address... first last tf``: one blob of every
        value, ``*`` in an address standing for the numbers first..last."""
        strings = [a for a in args if isinstance(a, str)]
        ints = args[len(strings) :]
        if len(strings) < 2 or len(ints) != 3 or not strings[0].startswith("/"):
            return self._refuse(addr, "/formatsubscribe", "takes ,ss..siii alias "
                                "address... first last tf")  # fmt: skip
        alias, first, last = strings[0], ints[0], ints[1]
        addresses = [
            a for pattern in strings[1:] for a in _expand(pattern, first, last)
        ]
        if (
            not addresses
            or len(addresses) > MAX_FORMAT
            or not all(
                self.param_at(a) is not None and role.may_read(a) for a in addresses
            )
        ):
            return self._refuse(addr, "/formatsubscribe", "unknown address or range")

        def packet(meters: Meters | None) -> bytes:
            body = b"".join(
                _blob_value(self.param_at(a), self.value(a)) for a in addresses
            )
            return message(alias, ("b", struct.pack("<i", len(body) + 4) + body))

        feed = Feed(now + SUBSCRIPTION_S, time_factor(ints[2]), packet, meters=False)
        return self._add_feed(addr, alias, feed, now, "/formatsubscribe")

    def _post_fader_gains(self) -> np.ndarray:
        """Each input's fader and mute as a linear gain (post-fader meters)."""
        n_in = self.registry.n_in
        db = np.array(
            [self.mixer.get(f"/ch/{c + 1:02d}/mix/fader") for c in range(n_in)]
        )
        on = np.array([self.mixer.get(f"/ch/{c + 1:02d}/mix/on") for c in range(n_in)])
        return _lin(db) * on

    def _mix_meter(self, bank: str) -> int | None:
        """The mix of a per-mix meter bank ``/ls/meters/mix/NN``, else None."""
        prefix = "/ls/meters/mix/"
        if bank.startswith(prefix) and bank[len(prefix) :].isdigit():
            mix = int(bank[len(prefix) :])
            if 1 <= mix <= self.registry.n_bus:
                return mix
        return None

    def _node(self, addr, role, args, now) -> list[bytes]:
        """``/node ,s path``: a node's or one leaf's values as the X32's text."""
        if len(args) != 1 or not isinstance(args[0], str):
            return self._refuse(addr, "/node", "takes one string, e.g. ch/01/mix")
        path = "/" + args[0].strip("/")
        leaves = self.tree.nodes.get(path)
        if leaves is None and self.param_at(path) is not None:
            leaves = [path]
        if leaves is None:
            leaves = self._subnode(path)
        if not leaves:
            # A container (``ch/01``) answers with its first node, as the X32.
            path = next((n for n in self.tree.nodes if n.startswith(path + "/")), path)
            leaves = self.tree.nodes.get(path, [])
        if not leaves or not all(role.may_read(a) for a in leaves):
            self.stats.counts["unknown"] += 1
            return self._refuse(addr, "/node", f"no node {args[0]}")
        text = " ".join(
            dialect.format_field(self.tree.fmt[a], self.param_at(a), self.value(a))
            for a in leaves
        )
        return [message("node", ("s", f"{path} {text}\n"))]

    def _subnode(self, path: str) -> list[str]:
        """Leaves directly under ``path`` for nodes the X32 lacks (``/ls/...``)."""
        prefix = path + "/"
        return [p.address for p in self.registry if p.address.startswith(prefix)
                and "/" not in p.address[len(prefix):]]  # fmt: skip

    def _clearsolo(self, addr, role, args, now) -> list[bytes]:
        if not role.may_write("/-action/clearsolo"):
            self.stats.counts["refused"] += 1
            return self._refuse(addr, "/-action/clearsolo", f"not allowed for {role}")
        soloed = {a: 0 for a in self._solo_switches() if self.mixer.get(a)}
        if soloed:
            self.mixer.set_many(soloed, source=Source.surface(addr))
        return []

    def _solo_switches(self) -> list[str]:
        return solo_addresses(self.registry.n_in)

    def _ip_byte(self, k: int) -> int:
        """Byte ``k`` of the console's IPv4 address (``/-prefs/ip/addr/k``)."""
        parts = self.local_ip.split(".")
        return int(parts[k]) if len(parts) == 4 and parts[k].isdigit() else 0

    def _soloing(self) -> int:
        """``/-stat/solo``: 1 while any strip is soloed, as the X32's light."""
        return int(any(self.mixer.get(a) for a in self._solo_switches()))

    def _pair(self, addr, role, args, now) -> list[bytes]:
        if len(args) != 1 or not isinstance(args[0], str):
            return self._refuse(addr, "/ls/pair", "takes the pairing code as a string")
        host, code = addr[0], args[0]
        perms = self.permissions
        if self.pairing.closed_for(now):
            # A device that holds the code's role already (a console
            # reconnecting) learns nothing new, so it is answered.
            held = perms.by_address.get(host)
            if held is not None and perms.code_role(code, now) == held:
                return [message("/ls/pair", ("s", str(held)))]
            return self._refuse(addr, "/ls/pair", self.pairing_status(now))
        # Guessing codes: after a wrong one, that address waits a while
        # (doubling up to a minute) before it may try again; and wrong codes
        # from every address together close pairing (``PairingGate``).
        failures, until = self._pair_backoff.get(host, (0, 0.0))
        if now < until:
            return self._refuse(addr, "/ls/pair", "too many wrong codes; wait")
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
            return self._refuse(addr, "/ls/pair", "unknown pairing code")
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
            return self._refuse(addr, "/ls/pair/new", f"not allowed for role {role}")
        lo, hi = PAIR_VALID_MIN
        minutes = args[1] if len(args) == 2 else 10
        if (
            not 1 <= len(args) <= 2
            or not isinstance(args[0], str)
            or not isinstance(minutes, int)
            or not lo <= minutes <= hi
        ):
            text = f"takes a role and minutes {lo}..{hi}, e.g. ,si performer:2 10"
            return self._refuse(addr, "/ls/pair/new", text)
        try:
            granted = parse_role(args[0], self.registry.n_bus)
            code = self.permissions.new_code(granted, 60.0 * minutes, now)
        except ConfigError as exc:
            return self._refuse(addr, "/ls/pair/new", str(exc))
        log.info(
            "%s made a pairing code for %s, valid %d min", addr[0], granted, minutes
        )
        return [
            message("/ls/pair/new", ("s", code), ("s", str(granted)), ("i", minutes))
        ]

    def _snapshot(self, addr, role, args, now) -> list[bytes]:
        # Kilobytes for a few bytes asked: only for surfaces the show knows
        # (listed or paired), never an amplifier for a spoofed address.
        if not self.permissions.known(addr[0]):
            return self._refuse(addr, snapshot.ADDRESS, "pair first (/ls/pair)")
        ident = args[0] if args and isinstance(args[0], int) else 0
        values = {a: v for a, v in self.mixer.snapshot().items() if role.may_read(a)}
        parts = snapshot.encode(values, self.registry.n_in, self.registry.n_bus)
        return [
            message(
                snapshot.ADDRESS, ("i", ident), ("i", k), ("i", len(parts)), ("b", part)
            )  # fmt: skip
            for k, part in enumerate(parts)
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

    def add_command(self, address: str, handler: Callable, write: bool = True) -> None:
        """Serve ``address`` with ``handler(args) -> list of (address, args...)``.

        ``write`` commands change the show and need a role that may write
        ``address`` (the engineer); replies go to the sender; a handler's
        ``ValueError`` becomes an error reply (sent as ``_refuse`` says).
        """

        def run(server, addr, role, args, now) -> list[bytes]:
            if write and not role.may_write(address):
                server.stats.counts["refused"] += 1
                return server._refuse(addr, address, f"not allowed for role {role}")
            try:
                out = handler(args)
            except ValueError as exc:
                return server._refuse(addr, address, str(exc))
            return [message(a, *(typed(v, x32=True) for v in vals)) for a, *vals in out]

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
        data = message(address, *(typed(v, x32=True) for v in values))
        for addr in list(self.subscribers):
            if self._affordable(addr[0], len(data), now):
                self._send(data, addr)
                self.stats.counts["pushes"] += 1

    _commands: dict[str, Callable] = {
        "/xinfo": _xinfo, "/info": _info, "/status": _status, "/xremote": _xremote,
        "/unsubscribe": _unsubscribe_cmd, "/meters": _meters_cmd, "/renew": _renew,
        "/subscribe": _subscribe, "/formatsubscribe": _formatsubscribe,
        "/batchsubscribe": _batchsubscribe, "/node": _node,
        "/-action/clearsolo": _clearsolo, "/ls/pair": _pair, "/ls/stats": _stats,
        "/ls/errors": _errors_cmd, "/ls/pair/new": _pair_new,
        PAIRING_STATUS: _pairing_cmd, snapshot.ADDRESS: _snapshot,
    }  # fmt: skip

    # -- pushes -----------------------------------------------------------------

    def _expire(self, now: float) -> None:
        for a in [a for a, t in self.subscribers.items() if t < now]:
            del self.subscribers[a]
        for k in [k for k, f in self.feeds.items() if f.expires < now]:
            del self.feeds[k]

    def _push_change(self, change: Change) -> None:
        """Tell every /xremote subscriber (but the sender) about a change,
        from the network loop's thread whichever thread made it."""
        if self._handed_over(self._push_change, change):
            return
        sender = change.source.peer
        self._push(change.address, change.new, sender)
        if change.address.startswith("/-stat/solosw/"):
            self._push("/-stat/solo", self._soloing(), sender)

    def _push(self, address: str, value: Any, sender: object) -> None:
        if not self.subscribers:
            return
        now = time.time()
        self._expire(now)
        data = message(address, dialect.encode(self.param_at(address), value))
        for addr in list(self.subscribers):
            if (
                addr != sender
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
            due = [(k, f) for k, f in list(self.feeds.items()) if f.due <= now]
            if not due:
                continue
            wants = any(f.meters for _, f in due) and self.meters is not None
            m = self.meters() if wants else None
            packets: dict[tuple, bytes | None] = {}  # built once per tick
            for (addr, _), feed in due:
                # On time, keep the cadence; late, never send the next one
                # sooner than (nearly) a period from now: no bunching.
                feed.due = max(feed.due + feed.period, now + 0.9 * feed.period)
                key = feed.key or (id(feed),)
                if key not in packets:
                    packets[key] = feed.packet(m)
                data = packets[key]
                if data is not None and self._affordable(addr[0], len(data), now):
                    self._send(data, addr)


def _feed_name(name: str) -> str:
    """A stream's name as the server keys it: X32 clients write meter banks
    with or without the leading slash (``meters/5``)."""
    return "/" + name if name.startswith("meters/") else name


def _expand(pattern: str, first: int, last: int) -> list[str]:
    """``/ch/**/mix/on`` for 1..3: ``/ch/01/mix/on`` .. ``/ch/03/mix/on``
    (the run of ``*`` gives the digits)."""
    stars = pattern.count("*")
    if not stars:
        return [pattern]
    if not isinstance(first, int) or not isinstance(last, int) or last - first > 255:
        return []
    run = "*" * stars
    return [pattern.replace(run, f"{k:0{stars}d}") for k in range(first, last + 1)]


def _blob_value(param: Param, value: Any) -> bytes:
    """One value inside a ``/formatsubscribe`` blob: little-endian int or
    float, strings 32 bytes with NUL padding."""
    tag, arg = dialect.encode(param, value)
    if tag == "s":
        return arg.encode("utf-8")[:31].ljust(32, b"\0")
    return struct.pack("<f" if tag == "f" else "<i", arg)


def _mix_bundle(bank: str, mix: int, m: Meters) -> bytes:
    """A performer's mix: one message per input (level on the fader law, as
    tablet meter widgets expect) plus the mix master."""
    levels = [*m.in_peak_db, m.out_peak_db[mix - 1]]
    names = [f"ch/{c + 1:02d}" for c in range(len(m.in_peak_db))] + ["master"]
    return bundle(
        message(f"{bank}/{name}", ("f", db_to_fader(float(db))))
        for name, db in zip(names, levels, strict=True)
    )


def _x32(values: np.ndarray, slots: int, fill: float = 0.0) -> np.ndarray:
    """Exactly the X32's number of slots: X32 apps read meters by position."""
    out = np.full(slots, fill)
    k = min(slots, len(values))
    out[:k] = values[:k]
    return out


def _lin(db: np.ndarray) -> np.ndarray:
    return np.power(10.0, np.asarray(db) / 20.0)


def _gain(db: np.ndarray, slots: int) -> np.ndarray:
    """Gain reductions as the X32 sends them: linear gains, 1 = none."""
    return _x32(_lin(db), slots, 1.0)


# Meter banks as the X32 lays them out (levels linear 0..1, gain reductions
# as linear gains), filled with what livesound meters; slots for what it
# does not have (aux and FX returns) stay silent. Each takes
# the meters, the bus count, the bank's two int arguments and a function
# giving each input's fader gain. /ls/meters holds every livesound meter in dB.
MeterBank = Callable[[Meters, int, list[int], Callable[[], np.ndarray]], np.ndarray]


def _ins(m: Meters) -> np.ndarray:
    return _x32(_lin(m.in_peak_db), 32)


def _buses(m: Meters, nb: int) -> np.ndarray:
    return _x32(_lin(m.out_peak_db[:nb]), 16)


def _main_lr(m: Meters, nb: int) -> np.ndarray:
    return _lin(m.out_peak_db[nb : nb + 2])


def _mtx(m: Meters, nb: int) -> np.ndarray:
    return _lin(m.out_peak_db[matrix_outputs(nb)])


def _mono(m: Meters, nb: int) -> np.ndarray:
    return _lin(m.out_peak_db[[mono_output(nb)]])


def _surface(m: Meters, nb: int, chn: int, grp: int) -> np.ndarray:
    """/meters/5: 16 channel meters (bank chn), 8 group meters (bank grp),
    main L/R and mono, as the console's meter bridge."""
    strips = {0: _ins(m)[:16], 1: _ins(m)[16:], 3: _buses(m, nb)}
    groups = {1: _buses(m, nb)[:8], 2: _buses(m, nb)[8:]}
    return np.concatenate([strips.get(chn, np.zeros(16)), groups.get(grp, np.zeros(8)),
                           _main_lr(m, nb), _mono(m, nb)])  # fmt: skip


def _strip(m: Meters, nb: int, k: int, faders: Callable[[], np.ndarray]) -> np.ndarray:
    """/meters/6: one strip's input level, gate and dynamics gain, and
    post-fader level (inputs: the input level times fader and mute)."""
    n_in = len(m.in_peak_db)
    if k < n_in:
        level = _lin(m.in_peak_db[k])
        gains = _lin([m.gate_gr_db[k], m.comp_gr_db[k]])
        return np.array([level, *gains, level * faders()[k]])
    # The X32's strip numbers (``/-stat/selidx``): buses from 48, the
    # matrices from 64, main LR 70, M/C 71.
    strips = {48 + b: b for b in range(nb)} | {70: nb, 71: mono_output(nb)}
    strips |= {64 + k: o for k, o in enumerate(matrix_outputs(nb))}
    out = strips.get(k)
    if out is None:
        return np.array([0.0, 1.0, 1.0, 0.0])
    level = _lin(m.out_peak_db[out])
    return np.array([level, 1.0, _lin(m.limiter_gr_db[out]), level])


METER_BANKS: dict[str, MeterBank] = {
    "/meters/0": lambda m, nb, a, f: np.concatenate(
        [_ins(m), np.zeros(16), _buses(m, nb), _mtx(m, nb)]
    ),
    "/meters/1": lambda m, nb, a, f: np.concatenate(
        [_ins(m), _gain(m.gate_gr_db, 32), _gain(m.comp_gr_db, 32)]
    ),
    "/meters/2": lambda m, nb, a, f: np.concatenate(
        [
            _buses(m, nb),
            _mtx(m, nb),
            _main_lr(m, nb),
            _mono(m, nb),
            _gain(m.limiter_gr_db[:nb], 16),
            _lin(m.limiter_gr_db[matrix_outputs(nb)]),
            [_lin(min(m.limiter_gr_db[nb : nb + 2]))],
            _lin(m.limiter_gr_db[[mono_output(nb)]]),
        ]  # fmt: skip
    ),
    "/meters/5": lambda m, nb, a, f: _surface(m, nb, a[0], a[1]),
    "/meters/6": lambda m, nb, a, f: _strip(m, nb, a[0], f),
    "/meters/13": lambda m, nb, a, f: np.concatenate([_ins(m), np.zeros(16)]),
    "/ls/meters": lambda m, nb, a, f: meterblob.values(m),
}
BANK_NAMES = ", ".join(METER_BANKS)
# Int arguments a bank takes before the time factor.
_BANK_ARGS = {"/meters/5": 2, "/meters/6": 1}

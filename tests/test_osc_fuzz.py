"""Hostile datagrams through ``OscServer.handle_datagram``.

Tens of thousands of random and mutated packets (valid messages with
flipped bytes, truncated, random type tags, NaN/Inf, huge ints, blobs, nested
bundles, far-future timetags, oversized bundles, unknown addresses): the
server never raises, every reply is a well-formed OSC message (checked by the
strict parser in osc_helpers, not python-osc), no invalid value reaches the
Mixer or the audio plane, and the counters add up packet by packet.

The long run is marked ``slow`` and sized by ``LIVESOUND_FUZZ_PACKETS``
(default 50 000, some 20 s on a loaded 2-core machine; 200 000 or more for a
soak run); its only limit is a hang, never the wall clock.
"""

import faulthandler
import logging
import math
import os
import struct
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from osc_helpers import DEADLINE, IMMEDIATE, bundle, msg, ntp, osc_string, parse

from livesound.control.offline import BlockEngine
from livesound.control.registry import ParamError
from livesound.osc import dialect, links
from livesound.osc.guard import ReplyBudget
from livesound.osc.roles import ENGINEER, READONLY, Permissions, Role
from livesound.osc.server import MAX_BUNDLE, MAX_PACKET, OscServer

N_IN, N_BUS = 8, 4
SEED = 20261125
# The long run's size: enough to reach every outcome hundreds of times.
N_PACKETS = int(os.environ.get("LIVESOUND_FUZZ_PACKETS", "50000"))
ENG = ("10.0.0.1", 7000)
CLIENTS = [ENG, ("10.0.0.1", 7001), ("10.0.0.2", 7000), ("10.0.0.7", 7000),
           ("10.0.0.99", 7000)]  # fmt: skip
COMMAND_REPLIES = {"/xinfo": "ssss", "/info": "ssss", "/status": "sss", "node": "s",
                   "/ls/pair": "s", "/ls/stats": "s", "/ls/error": "ss",
                   "/ls/errors": "i"}  # fmt: skip
KNOWN_COUNTERS = {"datagrams", "messages", "malformed", "oversized", "future",
                  "rate_limited", "unknown", "refused", "errors", "sets", "pushes",
                  "mirrored", "refused_quietly", "x32_compat_writes"}  # fmt: skip


@pytest.fixture(scope="module")
def engine():
    return BlockEngine(n_in=N_IN, n_bus=N_BUS, phys_in=8, phys_out=8)


@pytest.fixture
def quiet_logs():
    """python-osc logs a warning for every unknown type tag: thousands here."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture
def watchdog():
    """A hang in the parser must not hang the test run: dump and exit when
    the run stops making progress (``watchdog()`` says it still does)."""

    def progress() -> None:
        faulthandler.dump_traceback_later(DEADLINE, exit=True)

    progress()
    yield progress
    faulthandler.cancel_dump_traceback_later()


def fuzz_server(engine, reset: bool = False) -> OscServer:
    mixer = engine.mixer
    if reset:
        mixer.set_many(mixer.registry.defaults())
    perms = Permissions(
        default=READONLY,
        by_address={
            "10.0.0.1": ENGINEER,
            "10.0.0.2": Role("performer", 2),
            "10.0.0.7": Role("viewer"),
        },
        by_code={"1234": ENGINEER},
    )
    # no rate limit nor reply budget: every message should get as far as it can
    budget = ReplyBudget(per_s=1e12, most=1e12)
    server = OscServer(mixer, perms, rate=1e12, burst=1e12, budget=budget)
    # The engineer asks for error replies (the X32's addresses send none
    # otherwise); the other clients are refused quietly.
    server.handle_datagram(msg("/ls/errors", 1), ENG)
    server.stats.counts.clear()  # the tests count from here
    return server


def python_osc_would_hang(data: bytes) -> bool:
    """Whether python-osc's bundle parser could loop forever on ``data``: it
    walks the elements by their int32 sizes, and a negative size sends it
    back (see test_negative_bundle_element_size_does_not_hang). Conservative."""

    def walk(d: bytes) -> bool:
        i = 16
        while i < len(d):
            if len(d) - i < 4:
                return False
            (size,) = struct.unpack_from(">i", d, i)
            if size < 0:
                return True
            sub = d[i + 4 : i + 4 + size]
            if sub.startswith(b"#bundle\0") and walk(sub):
                return True
            i += 4 + size
        return False

    return data.startswith(b"#bundle\0") and walk(data)


class Checker:
    """Runs datagrams through a server and checks every invariant per packet."""

    def __init__(self, srv: OscServer) -> None:
        self.srv = srv
        self.registry = srv.registry
        self.changes: list[tuple[str, object, object]] = []
        self.bad_values: list[tuple[str, object]] = []
        self.unsubscribe = srv.mixer.subscribe(self._changed)
        self.skipped_hangs = 0
        self.replies = Counter()
        self.packets = 0

    def _changed(self, change) -> None:
        address, value = change.address, change.new
        param = self.registry[address]
        try:
            ok = param.validate(value) == value  # NaN != NaN, and refused anyway
        except ParamError:
            ok = False
        if not ok:
            self.bad_values.append((address, value))
        self.changes.append((address, value, change.source.peer))

    def close(self) -> None:
        self.unsubscribe()
        self.srv.close()

    def check_reply(self, data: bytes) -> str:
        m = parse(data)  # raises on anything malformed
        if m.address in COMMAND_REPLIES:
            assert m.tags == COMMAND_REPLIES[m.address], m
            return m.address
        param = self.srv.param_at(m.address)  # a query reply: a known parameter
        assert param is not None, m
        tag, _ = dialect.encode(param, param.default)
        assert m.tags == tag, m
        if tag == "f":
            assert 0.0 <= m.arg <= 1.0, m
        elif tag == "i":
            hi = len(param.choices) - 1 if param.kind == "enum" else param.hi
            assert param.lo <= m.arg <= hi, m
        return "query"

    def feed(self, data: bytes, addr=ENG, now: float | None = None) -> list:
        if python_osc_would_hang(data):
            self.skipped_hangs += 1
            return []
        counts = self.srv.stats.counts
        before = counts.copy()
        n_changes = len(self.changes)
        replies = self.srv.handle_datagram(data, addr, now)
        d = counts - before
        self.packets += 1
        assert d["datagrams"] == 1
        # a datagram is dropped whole (oversized, unparseable), refused whole
        # with at most one error (far future, unsupported type tag), or its
        # messages are handled (or rate limited) one by one
        fate = d["oversized"] + d["malformed"] + d["future"]
        assert fate <= 1, d
        if fate:
            assert d["messages"] == 0 and d["sets"] == 0, d
            assert len(replies) <= 1
            if d["oversized"]:
                assert replies == []
        else:
            assert len(replies) <= d["messages"] + d["rate_limited"]
        kinds = [self.check_reply(r) for r, to in replies]
        assert all(to == addr for _, to in replies)
        assert kinds.count("/ls/error") == d["errors"], (kinds, d)
        # refused as the X32 does (quietly) unless the client asked for errors
        assert d["unknown"] + d["refused"] <= d["errors"] + d["refused_quietly"]
        own = [c for c in self.changes[n_changes:] if c[2] == addr]
        assert len(own) == d["sets"] + d["mirrored"], (own, d)
        assert len(data) <= MAX_PACKET or d["oversized"] == 1
        self.replies.update(kinds)
        return replies

    def check_end_state(self, engine) -> None:
        assert self.bad_values == []
        assert set(self.srv.stats.counts) <= KNOWN_COUNTERS
        for address, value in self.srv.mixer.snapshot().items():
            param = self.registry[address]
            assert param.validate(value) == value, (address, value)
        for name, array in engine.core.memory.arrays.items():
            if name.startswith("mail") and array.dtype.kind == "f":
                assert np.isfinite(array).all(), name
        rng = np.random.default_rng(1)
        for _ in range(20):
            block = rng.uniform(-1, 1, (64, 8)).astype(np.float32)
            out = engine.process(block)
            assert np.isfinite(out).all() and np.abs(out).max() <= 1.0


# -- the corpus and its mutations -----------------------------------------------------


def valid_corpus(registry, rng) -> list[bytes]:
    """Valid messages for every parameter and command, and bundles of them."""
    out = []
    for p in registry:
        out.append(msg(p.address))
        if p.kind == "float":
            out.append(msg(p.address, float(rng.uniform(0, 1))))
            out.append(msg(p.address, ("d", float(rng.choice([0.0, 1.0, 0.75])))))
        elif p.kind == "str":
            out.append(msg(p.address, f"Name {rng.integers(100)}"))
        else:
            hi = len(p.choices) - 1 if p.kind == "enum" else int(p.hi)
            out.append(msg(p.address, int(rng.integers(int(p.lo), hi + 1))))
            out.append(msg(p.address, float(rng.integers(int(p.lo), hi + 1))))
    out += [
        msg("/xinfo"), msg("/info"), msg("/status"), msg("/xremote"), msg("/renew"),
        msg("/renew", "/meters/1"), msg("/unsubscribe"), msg("/meters"),
        msg("/meters", "/meters/1"), msg("/meters", "/meters/2"),
        msg("/meters", "/ls/meters"), msg("/meters", "/meters/9"),
        msg("/node", "ch/01/mix"), msg("/node", "bus/02/mix"),
        msg("/node", "ch/01/mix/01"), msg("/node", "main/st/mix"),
        msg("/node", "-stat/solosw"), msg("/node", "nowhere"), msg("/node"),
        msg("/ls/pair", "0000"), msg("/ls/pair", "1234"), msg("/ls/pair", 1234),
        msg("/ls/stats"),
    ]  # fmt: skip
    singles = list(out)
    for _ in range(300):
        k = int(rng.integers(1, 6))
        picks = [singles[int(i)] for i in rng.integers(0, len(singles), k)]
        out.append(bundle(*picks, timetag=int(rng.choice([IMMEDIATE, ntp(1e9)]))))
    return out


SPECIAL_F = [math.nan, math.inf, -math.inf, 1.5, -0.1, -0.0, 1e-45, 3.4e38,
             1.0000001, 0.99999994, 1e30, -1e-30]  # fmt: skip
SPECIAL_I = [2**31 - 1, -(2**31), 2, -1, 1 << 20, 6, 12, 17]
SPECIAL_H = [2**63 - 1, -(2**63), 2**32, 1]
TAG_ALPHABET = np.frombuffer(b"ifsbhdtTFNmrcSI[]xX,", np.uint8)


class Mutator:
    def __init__(self, registry, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.corpus = valid_corpus(registry, self.rng)
        self.addresses = [p.address for p in registry] + [
            "/xinfo", "/xremote", "/meters", "/node", "/ls/pair", "/renew"
        ]  # fmt: skip
        self.ops = [
            self.as_is, self.flip_bits, self.overwrite, self.truncate, self.insert,
            self.delete, self.random_tags, self.special_number, self.blob,
            self.nested, self.too_many, self.unknown_address, self.noise,
            self.splice, self.extra_args,
        ]  # fmt: skip

    def pick(self) -> bytes:
        return self.corpus[int(self.rng.integers(len(self.corpus)))]

    def address(self) -> str:
        return self.addresses[int(self.rng.integers(len(self.addresses)))]

    def __call__(self) -> bytes:
        return self.ops[int(self.rng.integers(len(self.ops)))]()

    # valid, then damaged
    def as_is(self):
        return self.pick()

    def flip_bits(self):
        b = np.frombuffer(self.pick(), np.uint8).copy()
        n = int(self.rng.integers(1, 9))
        idx = self.rng.integers(0, len(b), n)
        b[idx] ^= (1 << self.rng.integers(0, 8, n)).astype(np.uint8)
        return b.tobytes()

    def overwrite(self):
        b = np.frombuffer(self.pick(), np.uint8).copy()
        n = int(self.rng.integers(1, 5))
        b[self.rng.integers(0, len(b), n)] = self.rng.integers(0, 256, n)
        return b.tobytes()

    def truncate(self):
        d = self.pick()
        return d[: int(self.rng.integers(0, len(d)))]

    def insert(self):
        d = self.pick()
        i = int(self.rng.integers(0, len(d) + 1))
        return d[:i] + self.rng.bytes(int(self.rng.integers(1, 9))) + d[i:]

    def delete(self):
        d = self.pick()
        i = int(self.rng.integers(0, len(d)))
        return d[:i] + d[i + int(self.rng.integers(1, 9)) :]

    # made up
    def random_tags(self):
        tags = self.rng.choice(TAG_ALPHABET, int(self.rng.integers(0, 7))).tobytes()
        payload = self.rng.bytes(4 * int(self.rng.integers(0, 10)))
        return osc_string(self.address()) + osc_string(b"," + tags) + payload

    def special_number(self):
        kind = int(self.rng.integers(4))
        if kind == 0:
            arg = ("f", SPECIAL_F[int(self.rng.integers(len(SPECIAL_F)))])
        elif kind == 1:
            arg = ("d", SPECIAL_F[int(self.rng.integers(len(SPECIAL_F)))])
        elif kind == 2:
            arg = ("i", SPECIAL_I[int(self.rng.integers(len(SPECIAL_I)))])
        else:
            arg = ("h", SPECIAL_H[int(self.rng.integers(len(SPECIAL_H)))])
        return msg(self.address(), arg)

    def blob(self):
        data = self.rng.bytes(int(self.rng.integers(0, 64)))
        d = msg(self.address(), ("b", data))
        if self.rng.random() < 0.3:  # lie about the size
            i = d.index(b",b\0\0") + 4
            d = d[:i] + struct.pack(">i", int(self.rng.integers(-8, 200))) + d[i + 4 :]
        return d

    def nested(self):
        now = time.time()
        tags = [IMMEDIATE, ntp(now - 100), ntp(now + 1), ntp(now + 5),
                ntp(now + 20), ntp(now + 1e6), 2**64 - 1, 0]  # fmt: skip
        d = self.pick()
        for _ in range(int(self.rng.integers(1, 5))):
            extra = [self.pick() for _ in range(int(self.rng.integers(0, 3)))]
            tt = tags[int(self.rng.integers(len(tags)))]
            d = bundle(d, *extra, timetag=tt)
        if self.rng.random() < 0.01:
            for _ in range(int(self.rng.integers(100, 800))):  # deep
                d = bundle(d)
        return d

    def too_many(self):
        # python-osc parses a whole bundle before the server counts it: keep
        # these few, or they take most of the run
        if self.rng.random() < 0.75:
            n = int(self.rng.integers(MAX_PACKET - 8, MAX_PACKET + 2000))
            return self.pick()[:12] + self.rng.bytes(n)
        n = int(self.rng.integers(MAX_BUNDLE - 2, MAX_BUNDLE + 40))
        return bundle(*[msg("/ch/01/mix/on", 0)] * n)

    def unknown_address(self):
        if self.rng.random() < 0.5:
            parts = self.rng.integers(0, 26, int(self.rng.integers(1, 12)))
            address = "/" + "/".join(chr(97 + int(p)) * 2 for p in parts)
        else:
            raw = self.rng.integers(1, 256, int(self.rng.integers(1, 40))).astype(
                np.uint8
            )
            address = b"/" + raw.tobytes()
        return msg(address, float(self.rng.random()))

    def noise(self):
        prefix = [b"", b"/", b"#bundle\0", b"#bundle\0" + struct.pack(">Q", 1)]
        p = prefix[int(self.rng.integers(len(prefix)))]
        return p + self.rng.bytes(int(self.rng.integers(0, 200)))

    def splice(self):
        a, b = self.pick(), self.pick()
        return (
            a[: int(self.rng.integers(0, len(a) + 1))]
            + b[int(self.rng.integers(0, len(b) + 1)) :]
        )

    def extra_args(self):
        address = self.address()
        n = int(self.rng.integers(2, 5))
        args = [float(x) for x in self.rng.uniform(0, 1, n)]
        return (
            msg(address, *args)
            if self.rng.random() < 0.5
            else osc_string(address) + osc_string(",")
        )


# -- the big loop -----------------------------------------------------------------


@pytest.mark.slow
def test_mutation_fuzz(engine, quiet_logs, watchdog):
    srv = fuzz_server(engine, reset=True)
    checker = Checker(srv)
    mutate = Mutator(srv.registry, SEED)
    arng = np.random.default_rng(SEED + 1)
    who = arng.choice(len(CLIENTS), 2 * N_PACKETS, p=[0.6, 0.1, 0.1, 0.1, 0.1])
    try:
        k = 0
        while checker.packets < N_PACKETS:
            checker.feed(mutate(), CLIENTS[who[k]])
            k += 1
            if k % 1000 == 0:
                watchdog()  # a hang, not a slow machine, ends the run
        checker.check_end_state(engine)
    finally:
        checker.close()
    counts = srv.stats.counts
    assert counts["datagrams"] == checker.packets == N_PACKETS
    assert checker.skipped_hangs < 0.05 * N_PACKETS
    # the run reached every outcome, so the invariants were tested on each
    # (thresholds for the default size, scaled with the run's)
    scale = N_PACKETS / 50_000
    for key in ["messages", "malformed", "oversized", "future", "unknown",
                "refused", "errors", "sets", "pushes"]:  # fmt: skip
        assert counts[key] > 25 * scale, (key, counts)
    assert checker.replies["query"] > 250 * scale
    assert checker.replies["node"] > 2 * scale
    assert len(checker.changes) > 2500 * scale


def test_limits(engine):
    """The documented limits, one by one, at their edges."""
    srv = fuzz_server(engine)
    checker = Checker(srv)
    c = srv.stats.counts
    try:
        now = time.time()
        fits = msg("/ch/01/config/name", "x" * (MAX_PACKET - 64))
        big = msg("/ch/01/config/name", "x" * (MAX_PACKET + 1))
        assert len(fits) <= MAX_PACKET < len(big)
        checker.feed(fits)  # parsed (and refused: a name is at most 32 chars)
        assert c["oversized"] == 0 and c["messages"] == 1
        assert checker.feed(big) == [] and c["oversized"] == 1
        q = msg("/ch/01/mix/on")
        assert len(checker.feed(bundle(*[q] * MAX_BUNDLE))) == MAX_BUNDLE
        assert checker.feed(bundle(*[q] * (MAX_BUNDLE + 1))) == []
        assert c["oversized"] == 2
        soon = bundle(msg("/ch/01/mix/on", 0), timetag=ntp(now + 5))
        assert checker.feed(soon, now=now) == [] and c["future"] == 0
        assert srv.mixer.get("/ch/01/mix/on") == 0
        late = bundle(msg("/ch/01/mix/on", 1), timetag=ntp(now + 20))
        (reply,) = [parse(r) for r, _ in checker.feed(late, now=now)]
        assert (reply.address, reply.args[0]) == ("/ls/error", "#bundle")
        assert c["future"] == 1 and srv.mixer.get("/ch/01/mix/on") == 0
        past = bundle(msg("/ch/01/mix/on", 1), timetag=ntp(now - 3600))
        assert checker.feed(past, now=now) == []
        assert srv.mixer.get("/ch/01/mix/on") == 1
    finally:
        checker.close()


# -- hypothesis ---------------------------------------------------------------------

FUZZ = settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=600).map(lambda b: b"/" + b),
        st.binary(max_size=600).map(lambda b: b"#bundle\0" + b),
        st.binary(max_size=300).map(lambda b: osc_string("/ch/01/mix/fader") + b),
    )
)
def test_random_bytes(engine, quiet_logs, data):
    checker = Checker(fuzz_server(engine))
    try:
        checker.feed(data)
        assert checker.bad_values == []
    finally:
        checker.close()


def _arg_strategy():
    return st.one_of(
        st.integers(-(2**31), 2**31 - 1).map(lambda v: ("i", v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: ("h", v)),
        st.floats(width=32).map(lambda v: ("f", v)),
        st.floats(-0.5, 1.5, width=32).map(lambda v: ("f", v)),
        st.floats().map(lambda v: ("d", v)),
        st.text(max_size=40).filter(lambda s: "\0" not in s).map(lambda v: ("s", v)),
        st.binary(max_size=16).map(lambda v: ("b", v)),
        st.sampled_from([("T", None), ("F", None), ("N", None)]),
    )


def expected_value(param, args):
    """What the X32 dialect says one set does: the stored value, or None if it
    must be refused. Written from the spec, not from dialect.decode."""
    if len(args) != 1:
        return None
    tag, v = args[0]
    if param.kind == "str":
        if tag != "s":
            return None
        text = v.strip()
        return text if 1 <= len(text) <= 32 and text.isprintable() else None
    if tag not in "ifhd":
        return None
    if param.kind == "float":
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            return None
        return param.from_norm(float(v))
    if tag in "fd" and not (math.isfinite(v) and float(v).is_integer()):
        return None
    hi = len(param.choices) - 1 if param.kind == "enum" else param.hi
    return int(v) if param.lo <= int(v) <= hi else None


@FUZZ
@given(data=st.data())
def test_structured_messages_set_exactly_what_the_dialect_says(engine, data):
    srv = fuzz_server(engine)
    checker = Checker(srv)
    params = list(srv.registry)
    try:
        param = data.draw(st.sampled_from(params))
        args = data.draw(st.lists(_arg_strategy(), max_size=3))
        before = srv.mixer.snapshot()
        replies = checker.feed(msg(param.address, *args))
        after = srv.mixer.snapshot()
        if not args:
            (reply,) = replies
            assert parse(reply[0]).address == param.address
            return
        want = expected_value(param, args)
        if want is None:
            assert after == before
            (reply,) = [parse(r) for r, _ in replies]
            assert (reply.address, reply.tags) == ("/ls/error", "ss")
            assert reply.args[0] == param.address
        else:
            assert replies == []
            got = after[param.address]
            if isinstance(want, float):
                assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
            else:
                assert got == want
            # A linked bus pair's setting lands on both halves, as on the X32.
            partner = links.mirror(param.address, lambda link: bool(before.get(link)))
            assert {a for a in after if after[a] != before[a]} <= {
                param.address,
                partner,
            }
            if partner is not None:
                assert after[partner] == got
    finally:
        checker.close()


def _bundles(now: float):
    leaf = st.sampled_from(
        [msg("/ch/01/mix/fader", 0.5), msg("/ch/02/mix/on", 0), msg("/xinfo"),
         msg("/nowhere", 1), msg("/ch/01/mix/fader", 7.0), msg("/bus/01/mix/fader")]
    )  # fmt: skip
    timetag = st.sampled_from(
        [IMMEDIATE, ntp(now - 5), ntp(now + 2), ntp(now + 30), 2**64 - 1]
    )
    tree = st.recursive(
        leaf.map(lambda m: ("m", m)),
        lambda kids: st.tuples(st.just("b"), timetag, st.lists(kids, max_size=6)),
        max_leaves=40,
    )
    return tree


def _encode(tree) -> bytes:
    if tree[0] == "m":
        return tree[1]
    return bundle(*[_encode(k) for k in tree[2]], timetag=tree[1])


def _leaves(tree):
    if tree[0] == "m":
        return [tree]
    return [leaf for k in tree[2] for leaf in _leaves(k)]


def _message_times(tree) -> list[float]:
    """When each message is due: its own bundle's timetag (Unix seconds)."""
    t = tree[1]
    own = -math.inf if t == IMMEDIATE else t / 2**32 - 2208988800
    times = []
    for k in tree[2]:
        times += [own] if k[0] == "m" else _message_times(k)
    return times


@settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_nested_bundles_counted(engine, data):
    now = time.time()
    tree = data.draw(_bundles(now))
    srv = fuzz_server(engine)
    checker = Checker(srv)
    try:
        encoded = _encode(tree)
        checker.feed(encoded, now=now)
        c = srv.stats.counts
        leaves = _leaves(tree)
        if len(encoded) > MAX_PACKET or len(leaves) > MAX_BUNDLE:
            assert c["oversized"] == 1
        elif tree[0] == "b" and any(t > now + 10 for t in _message_times(tree)):
            assert c["future"] == 1
        else:
            assert c["messages"] == len(leaves)
    finally:
        checker.close()


# -- known bugs ---------------------------------------------------------------------

HANG_REPRO = """
import struct, threading, sys
sys.path.insert(0, {tests!r})
from livesound.control.offline import BlockEngine
from livesound.osc.server import OscServer
e = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=2)
srv = OscServer(e.mixer)
data = b"#bundle\\0" + struct.pack(">Q", 1) + struct.pack(">i", -4)
srv.handle_datagram(data, ("10.0.0.1", 1))
print("returned")
"""


def test_negative_bundle_element_size_does_not_hang():
    code = textwrap.dedent(HANG_REPRO).format(tests=str(Path(__file__).parent))
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"handle_datagram did not return within {DEADLINE} s")
    assert "returned" in result.stdout, result.stderr

"""Shared helpers for the OSC tests.

- an OSC 1.0 codec written here, independent of python-osc (the server's
  parser), so a reply is checked by a second implementation;
- ``ServerThread``: an ``OscServer`` on an asyncio loop in a daemon thread;
- ``Client``: a UDP client that can bind any loopback address (127.0.0.2,
  127.0.0.3, ... are distinct clients with distinct roles);
- liblo's ``oscsend`` / ``oscdump`` and the real ``livesound engine`` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

HOST = "127.0.0.1"
NTP_UNIX_OFFSET = 2208988800  # seconds from 1900 (NTP) to 1970 (Unix)
IMMEDIATE = 1  # the OSC timetag "now"


# -- codec ---------------------------------------------------------------------


def osc_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else bytes(text)
    raw += b"\0"
    return raw + b"\0" * (-len(raw) % 4)


def osc_blob(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data + b"\0" * (-len(data) % 4)


def ntp(unix_seconds: float) -> int:
    """The OSC (NTP) timetag for a Unix time."""
    return int((unix_seconds + NTP_UNIX_OFFSET) * 2**32)


def _arg(tag: str, value: Any) -> bytes:
    if tag == "i":
        return struct.pack(">i", value)
    if tag in "cr":
        return struct.pack(">I", value if isinstance(value, int) else ord(value))
    if tag == "f":
        return struct.pack(">f", value)
    if tag == "d":
        return struct.pack(">d", value)
    if tag in "ht":
        return struct.pack(">q" if tag == "h" else ">Q", value)
    if tag in "sS":
        return osc_string(value)
    if tag == "b":
        return osc_blob(value)
    if tag == "m":
        return bytes(value)
    if tag in "TFNI[]":
        return b""
    raise ValueError(f"no encoding for type tag {tag!r}")


def _tagged(value: Any) -> tuple[str, Any]:
    if isinstance(value, tuple):
        return value
    if isinstance(value, bool):
        return ("T" if value else "F", None)
    if isinstance(value, int):
        return "i", value
    if isinstance(value, float):
        return "f", value
    if isinstance(value, str):
        return "s", value
    if isinstance(value, bytes | bytearray):
        return "b", bytes(value)
    raise TypeError(f"no OSC type for {value!r}")


def msg(address: str | bytes, *args: Any) -> bytes:
    """An OSC message. Arguments are Python values (int -> i, float -> f,
    str -> s, bytes -> b, bool -> T/F) or explicit ``(tag, value)`` pairs."""
    tagged = [_tagged(a) for a in args]
    tags = "," + "".join(t for t, _ in tagged)
    return osc_string(address) + osc_string(tags) + b"".join(_arg(*ta) for ta in tagged)


def bundle(*elements: bytes, timetag: int = IMMEDIATE) -> bytes:
    """An OSC bundle of messages and/or bundles (``timetag`` is raw NTP)."""
    body = b"".join(struct.pack(">i", len(e)) + e for e in elements)
    return b"#bundle\0" + struct.pack(">Q", timetag) + body


@dataclass(frozen=True)
class Msg:
    address: str
    tags: str
    args: tuple

    @property
    def arg(self) -> Any:
        (a,) = self.args
        return a


def _read_string(data: bytes, i: int) -> tuple[str, int]:
    end = data.index(b"\0", i)
    nxt = end + 1 + (-(end + 1 - i) % 4)
    if nxt > len(data) or any(data[end:nxt]):
        raise ValueError(f"string at {i} is not NUL-padded to 4 bytes")
    return data[i:end].decode("utf-8"), nxt


def parse(data: bytes) -> Msg:
    """Strict OSC 1.0 message parser: exact padding, known tags, no trailing
    bytes. Raises ValueError on anything else."""
    if len(data) % 4:
        raise ValueError(f"length {len(data)} is not a multiple of 4")
    try:
        address, i = _read_string(data, 0)
        if i == len(data):
            return Msg(address, "", ())
        tags, i = _read_string(data, i)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"bad string: {exc}") from None
    if not tags.startswith(","):
        raise ValueError(f"type tags {tags!r} do not start with a comma")
    args = []
    for t in tags[1:]:
        if t in "ic":
            (v,) = struct.unpack_from(">i", data, i)
            i += 4
        elif t == "f":
            (v,) = struct.unpack_from(">f", data, i)
            i += 4
        elif t in "hd":
            (v,) = struct.unpack_from(">q" if t == "h" else ">d", data, i)
            i += 8
        elif t in "sS":
            v, i = _read_string(data, i)
        elif t == "b":
            (n,) = struct.unpack_from(">i", data, i)
            if n < 0 or i + 4 + n + (-n % 4) > len(data):
                raise ValueError("bad blob size")
            v = data[i + 4 : i + 4 + n]
            i += 4 + n + (-n % 4)
        elif t in "TFN":
            v = {"T": True, "F": False, "N": None}[t]
        else:
            raise ValueError(f"unknown type tag {t!r}")
        args.append(v)
        if i > len(data):
            raise ValueError("arguments run past the end")
    if i != len(data):
        raise ValueError(f"{len(data) - i} bytes after the arguments")
    return Msg(address, tags[1:], tuple(args))


def parse_meter_blob(blob: bytes) -> np.ndarray:
    """X32 meter blob: little-endian int32 count, then count float32 (LE)."""
    (count,) = struct.unpack_from("<i", blob, 0)
    assert len(blob) == 4 + 4 * count, (len(blob), count)
    return np.frombuffer(blob, "<f4", count, 4)


def fader_norm(db: float) -> float:
    """The X32 fader law (dB -> 0..1), written out here from the X32 docs."""
    if db <= -90.0:
        return 0.0
    if db < -60.0:
        return (db + 90.0) / 480.0
    if db < -30.0:
        return (db + 70.0) / 160.0
    if db < -10.0:
        return (db + 50.0) / 80.0
    return (db + 30.0) / 40.0


# -- waiting, ports ------------------------------------------------------------

# The one deadline of every wait on a live component (a reply, a push, an
# engine starting or stopping, a console showing a change). Tests wait on
# conditions, so on a loaded machine they are slow, not failing; the deadline
# only turns a real hang into a failure.
DEADLINE = 60.0
# An engine's first start on a fresh machine compiles its kernels (cold cache).
START_DEADLINE = 2 * DEADLINE


def wait_until(
    pred: Callable[[], Any], timeout: float = DEADLINE, what: str = ""
) -> Any:
    """Poll ``pred`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def free_udp_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_tcp_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def send_from(port: int, data: bytes, to: tuple[str, int]) -> None:
    """Send one datagram from UDP ``port`` (then let the port go again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        s.sendto(data, to)


# -- a server on a loop thread ---------------------------------------------------


class ServerThread:
    """Run ``server`` (an OscServer) on its own asyncio loop in a daemon thread."""

    def __init__(self, server, host: str = HOST) -> None:
        self.server, self.host = server, host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> ServerThread:
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            self.server.start(self.host, 0), self.loop
        )
        self.port = fut.result(DEADLINE)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.call(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE)
        if not self.thread.is_alive():
            self.loop.close()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def call(self, fn: Callable[[], Any], timeout: float = DEADLINE) -> Any:
        """Run ``fn`` on the server's loop thread and return its result."""

        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    @contextlib.contextmanager
    def paused(self, limit: float = DEADLINE):
        """Hold the server's loop: datagrams queue up in its socket meanwhile
        (released on leaving the block, or after ``limit`` s at the latest)."""
        entered, release = threading.Event(), threading.Event()

        def hold():
            entered.set()
            release.wait(limit)

        self.loop.call_soon_threadsafe(hold)
        assert entered.wait(DEADLINE), "the server loop did not pause"
        try:
            yield
        finally:
            release.set()


# -- a UDP client ------------------------------------------------------------------


class Client:
    """An OSC client on its own UDP socket (``ip`` any loopback address)."""

    def __init__(self, server_port: int, ip: str = HOST, port: int = 0) -> None:
        self.to = (HOST, server_port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((ip, port))
        self.addr = self.sock.getsockname()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.to)

    def send(self, address: str, *args: Any) -> None:
        self.send_raw(msg(address, *args))

    def recv(self, timeout: float = DEADLINE) -> Msg:
        self.sock.settimeout(timeout)
        try:
            data, src = self.sock.recvfrom(65536)
        except TimeoutError:
            raise AssertionError(f"{self.addr}: no reply within {timeout} s") from None
        assert src == self.to, f"reply from {src}, expected {self.to}"
        return parse(data)

    def recv_all(self, timeout: float = 0.2) -> list[Msg]:
        """Everything that arrives until ``timeout`` s pass without a datagram:
        for "nothing (more) comes", once what should come has come."""
        out = []
        self.sock.settimeout(timeout)
        with contextlib.suppress(TimeoutError):
            while True:
                out.append(parse(self.sock.recvfrom(65536)[0]))
        return out

    def drain(self) -> None:
        self.sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.sock.recvfrom(65536)

    def request(self, address: str, *args: Any, timeout: float = DEADLINE) -> Msg:
        """Send and return the first reply."""
        self.drain()
        self.send(address, *args)
        return self.recv(timeout)

    def query(self, address: str, timeout: float = DEADLINE) -> Any:
        reply = self.request(address, timeout=timeout)
        assert reply.address == address, reply
        return reply.arg

    def stats(self) -> dict:
        """The engine's ``/ls/stats`` (blocks, xruns, clients, faults ...)."""
        return json.loads(self.query("/ls/stats"))


def stats(port: int) -> dict:
    """The ``/ls/stats`` of the engine on ``port``, asked from a new client."""
    with Client(port) as c:
        return c.stats()


# -- liblo's tools -------------------------------------------------------------------


def oscsend(port: int, address: str, types: str = "", *values: Any) -> None:
    """liblo's ``oscsend`` to the server on ``port`` (from an ephemeral port)."""
    cmd = ["oscsend", HOST, str(port), address]
    if types:
        cmd += [types, *map(str, values)]
    subprocess.run(cmd, check=True, timeout=DEADLINE, capture_output=True)


def liblo_encode(address: str, types: str = "", *values: Any) -> bytes:
    """The datagram liblo builds for a message (``oscsend -`` writes it out)."""
    cmd = ["oscsend", "-", address] + ([types, *map(str, values)] if types else [])
    done = subprocess.run(cmd, check=True, timeout=DEADLINE, capture_output=True)
    return done.stdout


_DUMP_START = re.compile(r"^(?:[0-9a-f]{8}\.[0-9a-f]{8} |/)")
_DUMP_LINE = re.compile(r"^(?:[0-9a-f]{8}\.[0-9a-f]{8} )?(\S+) ?(\S*) ?(.*)$", re.S)


@dataclass(frozen=True)
class Dumped:
    """One message as oscdump printed it."""

    address: str
    types: str
    values: str  # the rest of the line, as liblo formats it


class Oscdump:
    """liblo's ``oscdump -L PORT``, its stdout read line by line in a thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            ["oscdump", "-L", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[Dumped] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        # A string argument with a newline in it goes on over several lines:
        # a line that does not start a message continues the one before.
        pending = ""
        for line in self.proc.stdout:
            if pending and not _DUMP_START.match(line):
                pending += line
            else:
                if pending:
                    self.lines.put(pending)
                pending = line
            if pending.count('"') % 2 == 0:
                self.lines.put(pending)
                pending = ""
        if pending:
            self.lines.put(pending)

    def __enter__(self) -> Oscdump:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE)

    def ready(self, timeout: float = DEADLINE) -> None:
        """Wait until oscdump is bound and printing: ping it until a ping shows."""
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"oscdump exited {self.proc.returncode}: {self.proc.stderr.read()}"
                    )
                s.sendto(msg("/oscdump/ping"), (HOST, self.port))
                with contextlib.suppress(AssertionError):
                    self.wait_for(lambda d: d.address == "/oscdump/ping", 0.1)
                    return
        raise AssertionError(f"oscdump on {self.port} never printed a ping")

    def _next(self, timeout: float) -> Dumped | None:
        """The next message oscdump prints within ``timeout`` s (kept in
        ``seen``), or None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            m = _DUMP_LINE.match(line.rstrip("\n"))
            if m:
                self.seen.append(Dumped(*m.groups()))
                return self.seen[-1]
        return None

    def _shown(self) -> list[Dumped]:
        return [d for d in self.seen if d.address != "/oscdump/ping"]

    def wait_for(
        self, pred: Callable[[Dumped], bool], timeout: float = DEADLINE
    ) -> Dumped:
        """The first message printed (so far or from now on) that ``pred`` likes."""
        for d in self.seen:
            if pred(d):
                return d
        deadline = time.monotonic() + timeout
        while (d := self._next(deadline - time.monotonic())) is not None:
            if pred(d):
                return d
        raise AssertionError(
            f"oscdump never printed the message; it printed {self._shown()}"
        )

    def messages(self, at_least: int = 0, settle: float = 0.3) -> list[Dumped]:
        """Everything printed, pings left out: once ``at_least`` messages have
        come (waited for), whatever more comes before ``settle`` s of quiet."""
        deadline = time.monotonic() + DEADLINE
        while len(self._shown()) < at_least:
            if self._next(deadline - time.monotonic()) is None:
                raise AssertionError(
                    f"oscdump printed {self._shown()}, expected {at_least} messages"
                )
        while self._next(settle) is not None:
            pass
        return self._shown()


# -- the engine process ------------------------------------------------------------


class EngineProcess:
    """``livesound engine --virtual`` on a free UDP port. Ready when it has
    printed its "running" line (its Ctrl-C handler is installed by then) and
    answers ``/xinfo``. Discovery (zeroconf, OSCQuery) is off unless asked."""

    def __init__(
        self, *extra: str, inputs: int = 8, buses: int = 4, discovery: bool = False
    ) -> None:
        self.extra = (*extra, *(() if discovery else ("--no-discovery",)))
        self.inputs, self.buses = inputs, buses
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.stdout: list[str] = []
        self.errors: list[str] = []
        self._readers: list[threading.Thread] = []

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "livesound", "engine", "--virtual",
                "--inputs", str(self.inputs), "--buses", str(self.buses),
                "--osc-port", str(port), "--osc-host", HOST, "--quiet",
                *self.extra]  # fmt: skip

    def launch(self) -> None:
        """Start the process (on a fresh free port); do not wait."""
        self.port = free_udp_port()
        self.stdout, self.errors = [], []
        self.proc = subprocess.Popen(
            self.command(self.port),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._readers = [
            threading.Thread(target=lines.extend, args=(stream,), daemon=True)
            for stream, lines in [
                (self.proc.stdout, self.stdout),
                (self.proc.stderr, self.errors),
            ]  # fmt: skip
        ]
        for reader in self._readers:
            reader.start()

    @property
    def stderr(self) -> str:
        return "".join(self.errors)

    @property
    def running(self) -> bool:
        return any("OSC on UDP" in line for line in self.stdout)

    def answers(self, timeout: float = START_DEADLINE) -> bool:
        """Wait until the engine answers /xinfo; False if it exited."""
        deadline = time.monotonic() + timeout
        with Client(self.port) as c:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                c.send("/xinfo")
                with contextlib.suppress(AssertionError):
                    if c.recv(0.1).address == "/xinfo":
                        return True
        raise AssertionError(f"engine did not answer /xinfo within {timeout} s")

    def start(self, timeout: float = START_DEADLINE) -> EngineProcess:
        for _ in range(3):  # a free port may be taken between probe and bind
            self.launch()
            if self.answers(timeout):
                wait_until(lambda: self.running or self.proc.poll() is not None,
                           what="the engine's running line")  # fmt: skip
                if self.proc.poll() is None:
                    return self
            self.finished()
            if "OSC port" not in self.stderr:
                raise AssertionError(
                    f"engine exited {self.proc.returncode}: {self.stderr}"
                )
        raise AssertionError("engine could not bind a free UDP port")

    def stop(self) -> int | None:
        """Ctrl-C (SIGINT) and wait; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.finished()

    def finished(self, timeout: float = DEADLINE) -> int:
        """Wait until the process has exited and its last lines are read;
        returns the exit code."""
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)  # the pipe ends when the process does
        return code

    @contextlib.contextmanager
    def stopped(self):
        """SIGSTOP the engine: datagrams queue in its socket until SIGCONT."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)


# -- fakes -------------------------------------------------------------------------


def fake_meters(n_in: int, n_bus: int, seed: int = 0):
    """A ``Meters`` reading with distinct, known values in every slot."""
    from livesound.audio.layout import n_outputs
    from livesound.audio.meters import Meters

    rng = np.random.default_rng(seed)
    n_out = n_outputs(n_bus)

    def db(n, lo, hi):
        return rng.uniform(lo, hi, n)

    return Meters(
        in_peak_db=db(n_in, -60, 0),
        in_rms_db=db(n_in, -70, -10),
        gate_gr_db=db(n_in, -40, 0),
        comp_gr_db=db(n_in, -20, 0),
        in_clips=np.zeros(n_in, int),
        out_peak_db=db(n_out, -60, 0),
        out_rms_db=db(n_out, -70, -10),
        limiter_gr_db=db(n_out, -12, 0),
        out_clips=np.zeros(n_out, int),
    )


def other_value(param, current) -> Any:
    """An OSC argument that sets ``param`` to a valid value other than ``current``
    (so a refusal can only be about the sender, never the value)."""
    if param.kind == "str":
        return ("s", "Other" if current != "Other" else "Another")
    if param.kind == "enum":
        return ("i", (current + 1) % len(param.choices))
    if param.kind == "int":
        return ("i", int(param.lo) if current != param.lo else int(param.hi))
    target = 0.3 if abs(param.to_norm(current) - 0.3) > 0.01 else 0.6
    return ("f", target)

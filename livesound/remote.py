"""The command line's conversation with a running engine: ask, read, change,
stop.

``livesound get|set|scene|state`` speak the same OSC a tablet does, from
this machine (the engineer's role unless a show config says otherwise).
Every request waits for its reply: silence is ``NoEngine``, a refusal (the
engine's or, before anything is sent, the registry's) is ``Refused`` with
the reason in words. Values are in engineering units, read from and shown
as text the way an engineer types them (``-6dB``, ``2.5kHz``, ``off``).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket

from livesound.control.registry import Param, ParamError, Registry
from livesound.osc import dialect
from livesound.osc.client import Client, osc
from livesound.scenes.storage import LOCK_FILE, state_dir_locked

# The engine lets each client send 2000 messages/s in bursts of 500: reading
# a whole show stays under that, so no query is dropped by the rate limit.
BATCH = 100
PACE_PER_S, PACE_BURST = 1500.0, 400.0
STOP_TIMEOUT_S = 30.0  # a stopping engine writes its last autosave first


class NoEngine(OSError):
    """No engine answered; the message says where it was looked for."""


class Refused(ValueError):
    """The engine or the registry refused a request; the message says why."""


class Remote:
    """One engine at ``host``:``port``, asked one request at a time."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 10023, timeout: float = 2.0
    ) -> None:
        self.where = f"{host}:{port}"
        self.client = Client(port, host, timeout)
        if host in ("127.0.0.1", "localhost"):
            # Connected, a loopback socket hears "port unreachable" at once
            # when no engine listens: "not running" without waiting.
            self.client.sock.connect(self.client.server)
        self._registry: Registry | None = None

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------

    def _receive(self) -> OscMessage:
        try:
            return self.client.receive()
        except OSError:
            raise NoEngine(f"no engine answered on {self.where}") from None

    def ask(self, address: str, *args: Any) -> list:
        """Send one message and return its reply's arguments."""
        self.client.send(osc(address, *args))
        reply = self._receive()
        if reply.address == "/ls/error":
            raise Refused(f"the engine refused {address}: {reply.params[-1]}")
        return list(reply.params)

    def stats(self) -> dict:
        """The engine's ``/ls/stats`` report."""
        reply = self.ask("/ls/stats")
        try:
            return json.loads(reply[0])
        except (IndexError, TypeError, ValueError):
            raise NoEngine(
                f"what answers on {self.where} is no livesound engine"
            ) from None

    def registry(self) -> Registry:
        """The running engine's parameters (its real inputs and buses)."""
        if self._registry is None:
            engine = self.stats().get("engine", {})
            try:
                self._registry = Registry(int(engine["inputs"]), int(engine["buses"]))
            except (KeyError, TypeError, ValueError):
                raise NoEngine(
                    f"the engine on {self.where} does not report its size"
                ) from None
        return self._registry

    def param(self, address: str) -> Param:
        """The parameter at ``address``; ``Refused`` naming near misses."""
        registry = self.registry()
        if address in registry:
            return registry[address]
        shape = re.sub(r"\d+", "#", address)
        if any(re.sub(r"\d+", "#", a) == shape for a in registry.params):
            raise Refused(f"unknown address {address} (this engine has "
                          f"{registry.n_in} inputs and {registry.n_bus} buses)")  # fmt: skip
        near = difflib.get_close_matches(address, registry.params, n=1, cutoff=0.8)
        hint = f"did you mean {near[0]}?" if near else "livesound osc-map lists all"
        raise Refused(f"unknown address {address}; {hint}")

    def under(self, address: str) -> list[str]:
        """``address`` itself, or every parameter below it (``/ch/01/eq``)."""
        registry = self.registry()
        if address in registry:
            return [address]
        prefix = address.rstrip("/") + "/"
        found = [a for a in registry.params if a.startswith(prefix)]
        if not found:
            self.param(address)  # raises, with near misses
        return found

    def get(self, address: str) -> Any:
        """One parameter's live value (engineering units)."""
        p = self.param(address)
        return dialect.decode(p, self.ask(address))

    def set(self, address: str, value: Any) -> Any:
        """Change one parameter (validated here first, then by the engine)
        and return the value the engine holds afterwards."""
        p = self.param(address)
        try:
            value = p.validate(value)
        except ParamError as exc:
            raise Refused(str(exc)) from None
        _, arg = dialect.encode(p, value)
        self.client.send(osc(address, arg))
        # The engine answers a set only to refuse it, so the query after it
        # brings the refusal or the new value, in that order.
        return self.get(address)

    def values(self, addresses: list[str]) -> dict[str, Any]:
        """Live values of many parameters, in paced bundles of queries."""
        found: dict[str, Any] = {}
        tokens, last = PACE_BURST, time.monotonic()
        for attempt in range(3):  # UDP may drop an answer: ask again
            missing = [a for a in addresses if a not in found]
            for k in range(0, len(missing), BATCH):
                chunk = missing[k : k + BATCH]
                now = time.monotonic()
                tokens = min(PACE_BURST, tokens + (now - last) * PACE_PER_S)
                last = now
                if tokens < len(chunk):
                    time.sleep((len(chunk) - tokens) / PACE_PER_S)
                tokens -= len(chunk)
                self._query(chunk, found, last_try=attempt == 2)
        missing = [a for a in addresses if a not in found]
        if missing:
            raise NoEngine(f"the engine on {self.where} did not answer for "
                           f"{len(missing)} of {len(addresses)} values "
                           f"({missing[0]} ...)")  # fmt: skip
        return found

    def _query(self, chunk: list[str], found: dict, last_try: bool) -> None:
        registry = self.registry()
        bundle = OscBundleBuilder(IMMEDIATELY)
        for address in chunk:
            bundle.add_content(OscMessage(osc(address)))
        self.client.send(bundle.build().dgram)
        waiting = set(chunk)
        while waiting:
            try:
                data = self.client.sock.recv(65536)
            except OSError:
                if found or not last_try:
                    return
                raise NoEngine(f"no engine answered on {self.where}") from None
            for timed in OscPacket(data).messages:
                m = timed.message
                if m.address == "/ls/error" and m.params and m.params[0] in waiting:
                    raise Refused(f"the engine refused {m.params[0]}: {m.params[-1]}")
                if m.address in waiting and m.params:
                    found[m.address] = dialect.decode(registry[m.address], m.params)
                    waiting.discard(m.address)


# -- values as an engineer types and reads them -----------------------------------

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf"
# The units each parameter unit accepts, with their factor to it.
_UNITS: dict[str, dict[str, float]] = {
    "dB": {"db": 1.0},
    "Hz": {"hz": 1.0, "k": 1e3, "khz": 1e3},
    "ms": {"ms": 1.0, "s": 1e3},
    "s": {"s": 1.0, "ms": 1e-3, "min": 60.0},
    "oct": {"oct": 1.0},
}
_SWITCH = {"on": 1, "off": 0, "yes": 1, "no": 0, "true": 1, "false": 0}


def parse_value(param: Param, text: str) -> Any:
    """``text`` as a value of ``param``: ``-6``, ``-6dB``, ``-inf`` (a fader
    off), ``2.5kHz``, ``1.5 s``, ``on``/``off``, a choice's name or number,
    a name. ``Refused`` says what the parameter takes."""
    raw = text.strip()
    if param.kind == "str":
        return raw
    if param.kind == "enum":
        names = {c.lower(): k for k, c in enumerate(param.choices)}
        if raw.lower() in names:
            return names[raw.lower()]
        if re.fullmatch(r"\d+", raw):
            return int(raw)
        raise Refused(f"{param.address} takes one of {', '.join(param.choices)}; "
                      f"got {raw!r}")  # fmt: skip
    if param.kind == "int":
        if param.hi == 1 and raw.lower() in _SWITCH:
            return _SWITCH[raw.lower()]
        if re.fullmatch(r"[-+]?\d+", raw):
            return int(raw)
        words = " (or on/off)" if param.hi == 1 else ""
        raise Refused(f"{param.address} takes a whole number{words}; got {raw!r}")
    if param.taper == "fader" and raw.lower() in ("off", "-oo", "-inf", "-infdb"):
        return -math.inf
    m = re.fullmatch(rf"({_NUMBER})\s*([a-zA-Z]*)", raw)
    if m is None:
        raise Refused(f"{param.address} takes a number{_unit_words(param)}; "
                      f"got {raw!r}")  # fmt: skip
    number, unit = float(m.group(1)), m.group(2).lower()
    if not unit:
        return number
    factor = _UNITS.get(param.unit, {}).get(unit)
    if factor is None:
        raise Refused(f"{param.address} takes a number{_unit_words(param)}; "
                      f"got {m.group(2)!r}")  # fmt: skip
    return number * factor


def _unit_words(param: Param) -> str:
    return f" in {param.unit}" if param.unit else " without a unit"


def show_value(param: Param, value: Any) -> str:
    """A value as ``parse_value`` reads it back: ``-6 dB``, ``music``, ``on``."""
    if param.kind == "enum":
        return param.choices[value]
    if param.kind == "int":
        return ("on" if value else "off") if param.hi == 1 else str(value)
    if param.kind == "str":
        return str(value)
    if math.isinf(value):
        return f"{value} {param.unit}".rstrip()
    # Five significant digits: what survives the float32 trip over OSC.
    return f"{float(f'{value:.5g}'):g} {param.unit}".rstrip()


# -- stopping -------------------------------------------------------------------------


def engine_pid(state_dir: Path) -> int | None:
    """The pid of the engine holding ``state_dir``, None if none holds it."""
    if not state_dir_locked(state_dir):
        return None
    try:
        return int((state_dir / LOCK_FILE).read_text().strip())
    except (OSError, ValueError):
        raise Refused(
            f"an engine holds {state_dir} but its pid is unreadable: not stopped"
        ) from None


def stop_engine(state_dir: Path, timeout: float = STOP_TIMEOUT_S) -> int | None:
    """Stop the engine that holds ``state_dir`` as Ctrl-C would (SIGTERM:
    it writes its last autosave and closes its device) and wait until it
    is gone; returns its pid, None if no engine holds the folder."""
    pid = engine_pid(state_dir)
    if pid is None:
        return None
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid  # it went away by itself in the meantime
    except PermissionError:
        raise Refused(
            f"the engine (pid {pid}) belongs to another user: not stopped"
        ) from None
    deadline = time.monotonic() + timeout
    while state_dir_locked(state_dir):  # the lock goes with the process
        if time.monotonic() > deadline:
            raise Refused(f"the engine (pid {pid}) did not stop within "
                          f"{timeout:.0f} s; it still runs")  # fmt: skip
        time.sleep(0.05)
    return pid

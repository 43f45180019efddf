"""The console's local copy of the engine: values, meters, status, scenes.

Fed only by the OSC link; read by the widgets on every frame. Nothing here
touches the network, so a redraw never waits for the engine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livesound.audio.layout import n_outputs
from livesound.control.groups import solo_addresses
from livesound.control.registry import Param, Registry, out_prefixes
from livesound.osc.meterblob import Reading

METER_FLOOR_DB = -90.0
HOLD_S = 2.0  # peak hold, as on most digital desks
CLIP_DB = -0.1  # a peak this close to full scale lights the clip indicator
CLIP_LATCH_S = 3.0
FALL_DB_PER_S = 26.0  # peak fall-back of the displayed bar (IEC PPM-like)


@dataclass
class MeterBank:
    """Meter readings of one kind of strip, with the console's ballistics.

    The engine sends the peak and RMS since its previous reading; hold,
    fall-back and clip latching belong to the surface that draws them.
    """

    n: int
    peak: np.ndarray = field(init=False)
    rms: np.ndarray = field(init=False)
    gr: np.ndarray = field(init=False)  # comp GR (inputs) or limiter GR (outputs)
    gate: np.ndarray = field(init=False)  # gate GR (inputs only)
    shown: np.ndarray = field(init=False)  # peak with fall-back, what the bar shows
    hold: np.ndarray = field(init=False)
    hold_until: np.ndarray = field(init=False)
    clip_until: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        floor = lambda: np.full(self.n, METER_FLOOR_DB)  # noqa: E731
        self.peak, self.rms, self.shown, self.hold = floor(), floor(), floor(), floor()
        self.gr, self.gate = np.zeros(self.n), np.zeros(self.n)
        self.hold_until, self.clip_until = np.zeros(self.n), np.zeros(self.n)

    def update(
        self,
        peak: np.ndarray,
        rms: np.ndarray,
        gr: np.ndarray,
        gate: np.ndarray | None,
        now: float,
        dt: float,
    ) -> None:
        """Take one reading taken ``dt`` s after the previous one."""
        peak = np.maximum(np.nan_to_num(peak, nan=METER_FLOOR_DB), METER_FLOOR_DB)
        self.peak[:] = peak
        self.rms[:] = np.maximum(np.nan_to_num(rms, nan=METER_FLOOR_DB), METER_FLOOR_DB)
        self.gr[:] = np.nan_to_num(gr)
        if gate is not None:
            self.gate[:] = np.nan_to_num(gate)
        fallen = self.shown - FALL_DB_PER_S * min(dt, 0.5)
        self.shown[:] = np.maximum(peak, fallen)
        expired = now >= self.hold_until
        higher = peak >= self.hold
        take = higher | expired
        self.hold[take] = peak[take]
        self.hold_until[higher] = now + HOLD_S
        self.clip_until[peak >= CLIP_DB] = now + CLIP_LATCH_S

    def clipping(self, i: int, now: float) -> bool:
        return now < self.clip_until[i]

    def silence(self) -> None:
        """The engine is gone: meters drop instead of freezing at a level."""
        for a in (self.peak, self.rms, self.shown, self.hold):
            a[:] = METER_FLOOR_DB
        self.gr[:] = 0.0
        self.gate[:] = 0.0


@dataclass
class Status:
    """What the status bar shows, from the engine's ``/ls/stats``."""

    device: str = "—"
    engine: str = ""  # the engine's name (two engines: FOH and monitors)
    sample_rate: int = 0
    block: int = 0
    latency_ms: float = 0.0
    dsp_load: float = 0.0
    xruns: int = 0
    blocks: int = 0
    clients: int = 0
    audio: str = ""  # "AUDIO DEVICE LOST: ..." while the device is gone
    storage: str = ""  # the storage fault ("disk full: FILE")
    pairing: str = ""  # why pairing is closed (too many wrong codes), else ""
    # The suppressor's estimate of each analysed loop's margin (dB before
    # it howls), by output prefix (``/ls/bus/01``); 99: no colouration.
    margins_db: dict[str, float] = field(default_factory=dict)
    # The feedback cancellers (``afc`` in /ls/stats): per path its mic
    # (input number), output (engine name: "1", "L", "MTX1"), on, ERLE, frozen.
    afc: list[dict] = field(default_factory=list)

    @classmethod
    def from_stats(cls, report: dict) -> Status:
        eng = report.get("engine", {})
        audio, storage = report.get("audio") or {}, report.get("storage") or {}
        lost = f"AUDIO DEVICE LOST: {audio.get('device', '?')}" if audio else ""
        if audio.get("fallback"):
            lost += f" (playing on {audio['fallback']})"
        return cls(
            device=str(eng.get("device", "—")),
            engine=str(report.get("name", "")),
            sample_rate=int(eng.get("sample_rate", 0)),
            block=int(eng.get("block", 0)),
            latency_ms=float(eng.get("latency_ms", 0.0)),
            dsp_load=float(eng.get("dsp_load", 0.0)),
            xruns=int(eng.get("xruns", 0)),
            blocks=int(eng.get("blocks", 0)),
            clients=int(report.get("subscribers", 0)),
            audio=lost,
            storage=f"{storage.get('fault')}: {storage.get('file')}" if storage else "",
            pairing=_pairing_text(report.get("pairing") or {}),
            margins_db={
                str(k): float(v) for k, v in (eng.get("margins_db") or {}).items()
            },
            afc=[p for p in report.get("afc") or [] if isinstance(p, dict)],
        )


def _pairing_text(pairing: dict) -> str:
    if pairing.get("open", True):
        return ""
    return f"pairing closed for {pairing.get('closed_for_s', 0):.0f} s: too many wrong codes"


class ConsoleState:
    """Everything the console knows about the engine it is attached to."""

    def __init__(self, n_in: int = 32, n_bus: int = 16) -> None:
        self.version = 0  # bumped on every value change: widgets redraw on it
        self.n_in, self.n_bus = n_in, n_bus
        self.start_over()

    def start_over(self) -> None:
        """Forget all but the size: a console that moves to another engine
        reads its show afresh (and learns its size again)."""
        self.resize(self.n_in, self.n_bus)
        self.connected = False
        self.ever_connected = False
        self.last_heard = 0.0
        self.status = Status()
        self.scenes: list[str] = []
        self.scene_current = ""
        self.scene_next = ""
        self.scene_notes: dict[str, str] = {}  # scene name: its note, as read
        self.safes: list[str] = []  # strips and groups no recall touches
        self.unsaved = 0  # changes seen since the last scene save or recall
        self.message = ""  # the last error or notice, shown in the status bar
        self.message_until = 0.0
        self.spectra: dict[int, np.ndarray] = {}
        self.spectrum_supported = True

    def resize(self, n_in: int, n_bus: int) -> None:
        """Start over for an engine of ``n_in`` inputs and ``n_bus`` buses."""
        self.n_in, self.n_bus = n_in, n_bus
        self.registry = Registry(n_in, n_bus)
        self.values: dict[str, Any] = self.registry.defaults()
        self.known: set[str] = set()  # addresses the engine has told us
        self.inputs = MeterBank(n_in)
        self.outputs = MeterBank(n_outputs(n_bus))
        self.meter_stamp = 0.0
        self.version += 1

    # -- values ---------------------------------------------------------------

    def param(self, address: str) -> Param | None:
        return self.registry.params.get(address)

    def get(self, address: str, default: Any = None) -> Any:
        return self.values.get(address, default)

    def put(self, address: str, value: Any, *, change: bool = True) -> None:
        """Store a value (engineering units) and mark the screen stale.

        ``change``: a change made on this console or pushed by the engine
        (counted as unsaved), not the answer to one of our queries.
        """
        if self.values.get(address) != value:
            self.values[address] = value
            self.version += 1
            # Scene recalls arrive as pushes too; the scene poll resets the
            # count once it sees the new current scene.
            if change:
                self.unsaved += 1

    def label(self, address: str) -> str:
        """Whose parameter ``address`` is, as an engineer says it: "Kick mix/fader"."""
        parts = address.strip("/").split("/")
        k = 3 if parts[0] == "ls" else 2
        strip = "/" + "/".join(parts[:k])
        x32 = strip.removeprefix("/ls")
        name = self.values.get(f"{x32}/config/name") or x32.strip("/")
        return f"{name} {'/'.join(parts[k:])}"

    def text(self, address: str, value: Any = None) -> str:
        """A value as the console prints it (name of an enum, dB of a fader);
        ``value``: another value of that parameter than the one it holds."""
        value = self.values.get(address) if value is None else value
        p = self.param(address)
        if value is None:
            return "—"
        if p is None:
            return str(value)
        if p.kind == "enum":
            return p.choices[int(value)] if 0 <= int(value) < len(p.choices) else "?"
        if p.kind == "str":
            return str(value)
        if p.kind == "int":
            return ("on" if value else "off") if p.hi == 1 else str(value)
        if p.taper == "fader":
            return "-oo" if value == -math.inf or value <= -90.0 else f"{value:+.1f}"
        if p.unit == "Hz":
            return f"{value / 1000:.2f}k" if value >= 1000 else f"{value:.0f}"
        if p.unit == "ms":
            return f"{value:.1f}" if value < 100 else f"{value:.0f}"
        if p.unit == "oct":
            return f"1/{1 / value:.0f}" if value < 1 else f"{value:.2f}"
        return f"{value:.1f}"

    def fbs_mode(self, o: int) -> str:
        """The feedback suppressor's mode of output ``o`` ('—' if unknown)."""
        _, extra = out_prefixes(o, self.n_bus)
        address = f"{extra}/fbs/mode"
        if address not in self.values:
            return "—"
        return self.text(address)

    def notches(self, o: int) -> list[dict]:
        """The notch bank of output ``o``: the slots that are on."""
        _, extra = out_prefixes(o, self.n_bus)
        out = []
        for k in range(self.registry.n_notch):
            n = f"{extra}/notch/{k + 1:02d}"
            if self.values.get(f"{n}/on"):
                out.append({
                    "slot": k + 1,
                    "freq_hz": self.values[f"{n}/f"],
                    "depth_db": self.values[f"{n}/depth"],
                    "width_oct": self.values[f"{n}/width"],
                    "fixed": bool(self.values.get(f"{n}/fixed", 0)),
                })  # fmt: skip
        return out

    # -- meters and status ------------------------------------------------------

    def take_meters(self, m: Reading, now: float | None = None) -> None:
        """One ``/ls/meters`` reading of this engine's size."""
        now = time.monotonic() if now is None else now
        dt = now - self.meter_stamp if self.meter_stamp else 0.05
        self.meter_stamp = now
        self.inputs.update(m.in_peak_db, m.in_rms_db, m.comp_gr_db, m.gate_gr_db, now,
                           dt)  # fmt: skip
        self.outputs.update(m.out_peak_db, m.out_rms_db, m.limiter_gr_db, None, now,
                            dt)  # fmt: skip

    def notice(self, text: str, seconds: float = 5.0) -> None:
        """Show ``text`` in the status bar for a while."""
        self.message = text
        self.message_until = time.monotonic() + seconds
        self.version += 1

    def synced(self) -> float:
        """How much of the show has been read from the engine (0..1)."""
        return min(1.0, len(self.known) / max(1, len(self.registry)))

    def soloed(self) -> list[str]:
        """The solo switches that are on."""
        return [a for a in solo_addresses(self.n_in) if self.values.get(a)]

    def live(self) -> bool:
        """Attached and every value read: keys may act on what is shown."""
        return self.connected and all(a in self.known for a in self.registry.params)

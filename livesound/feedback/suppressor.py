"""The feedback suppressor: analysis of every output, notches through the Mixer.

One ``Suppressor`` watches all outputs that can feed back (each monitor bus
and the main pair) on the engine's output taps. Every ``hop`` frames it
takes the spectra of all of them in one FFT, runs each output's howl
detector and notch planner in the output's mode, and applies the planner's
decisions through the Mixer — the same path as a fader move — so notches
land at a block boundary with coefficient ramps, show up in OSC pushes,
autosave and scenes, and the engineer can pin or delete them like any
parameter.

Live engine: ``FeedbackThread`` polls the taps every few milliseconds.
Simulation and tests: ``attach(block_engine)`` runs the same analysis
synchronously after every block, at the same cadence.
"""

import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from livesound.audio.core import AudioCore
from livesound.audio.layout import main_outputs, matrix_outputs, mono_output
from livesound.audio.taps import TapReader
from livesound.control.events import SUPPRESSOR, Change, Origin
from livesound.control.mixer import Mixer
from livesound.control.registry import FBS_MODES, Registry, out_prefixes
from livesound.feedback.detect import HowlDetector, spectra_db
from livesound.feedback.margin import MarginEstimator
from livesound.feedback.notches import MODES, Action, Notch, NotchPlanner

SILENT_DB = -80.0  # below this an output is not analysed
LIMITING_DB = 2.0  # within this of its ceiling an output is held by its limiter
SPECTRUM_BANDS = 96  # log-spaced bands of the spectrum served for the console


NOTCH_FIELDS = ("on", "f", "depth", "width", "fixed")


def notch_address(prefix: str, slot: int) -> str:
    """Where notch slot ``slot`` (0-based) of the bank at ``prefix`` lives."""
    return f"{prefix}/notch/{slot + 1:02d}"


def notch_values(registry: Registry, prefix: str, slot: int,
                 notch: Notch | None) -> dict[str, object]:  # fmt: skip
    """The parameters of notch slot ``slot`` (0-based) of the bank at ``prefix``."""
    n = notch_address(prefix, slot)
    if notch is None:
        return {f"{n}/on": 0, f"{n}/fixed": 0}
    return {
        f"{n}/on": 1,
        f"{n}/f": registry[f"{n}/f"].clamp(notch.freq_hz),
        f"{n}/depth": registry[f"{n}/depth"].clamp(notch.depth_db),
        f"{n}/width": registry[f"{n}/width"].clamp(notch.width_oct),
        f"{n}/fixed": int(notch.fixed),
    }


@dataclass
class Output:
    """One notch bank and what feeds it: ``prefix`` is its /ls address."""

    prefix: str
    channels: tuple[int, ...]  # engine outputs analysed (two for a stereo pair)
    planner: NotchPlanner
    margin: MarginEstimator
    detector: HowlDetector | None = None
    mode: str = "off"
    spectrum_db: np.ndarray | None = None


class Suppressor:
    """Howl detection and notch decisions for every output of one engine."""

    def __init__(self, mixer: Mixer, core: AudioCore, sample_rate: float) -> None:
        self.mixer, self.core, self.sample_rate = mixer, core, float(sample_rate)
        reg = mixer.registry
        self.n_bus, self.n_notch = reg.n_bus, reg.n_notch
        frame = max(m.detector.frame for m in MODES.values())
        self.hop = min(m.detector.hop for m in MODES.values())
        # One notch bank per output (the main's for both its sides): the
        # buses, the main, the mono bus, the matrices.
        banks = [(out_prefixes(b, self.n_bus)[1], (b,)) for b in range(self.n_bus)]
        banks.append((out_prefixes(self.n_bus, self.n_bus)[1],
                      main_outputs(self.n_bus)))  # fmt: skip
        for o in (mono_output(self.n_bus), *matrix_outputs(self.n_bus)):
            banks.append((out_prefixes(o, self.n_bus)[1], (o,)))
        self.outputs = [
            Output(
                prefix,
                channels,
                NotchPlanner(self.n_notch),
                MarginEstimator(self.sample_rate, self.hop),
            )  # fmt: skip
            for prefix, channels in banks
        ]
        self.by_prefix = {o.prefix: o for o in self.outputs}
        # The bank and slot of every notch parameter, so an edit is placed
        # without taking its address apart.
        self._slot_of = {
            f"{notch_address(o.prefix, slot)}/{name}": (o, slot)
            for o in self.outputs
            for slot in range(self.n_notch)
            for name in NOTCH_FIELDS
        }
        self.taps = TapReader(core)
        self.buffer = np.zeros((frame, core.dims.n_out), np.float32)
        # Mean square of each hop of the frame, per output (a ring).
        self.energy = np.zeros((-(-frame // self.hop), core.dims.n_out))
        self.hops = 0
        self.write = 0
        self.pending = 0  # frames read since the last analysis
        self.analysed = 0  # frames of audio analysed: the suppressor's clock
        self.events: deque[tuple[str, Action]] = deque(maxlen=4096)
        self._lock = threading.Lock()  # one analysis at a time; OSC commands too
        # The outputs analysed, as of the Mixer's changes counted so far: modes,
        # limits and bus links are read again after any change, not each hop.
        self._changes = 0
        self._active: tuple[int, list[Output]] = (-1, [])
        mixer.subscribe(self._changed)
        for out in self.outputs:
            self._load(out)

    # -- the analysis ---------------------------------------------------------

    def poll(self) -> int:
        """Analyse whatever the taps hold since the last call; returns frames read."""
        new = self.taps.read()
        self.feed(new)
        return len(new)

    def feed(self, frames: np.ndarray) -> None:
        """Analyse ``[frames, n_out]`` of output audio, one hop at a time."""
        while len(frames):
            take = min(len(frames), self.hop - self.pending)
            # A ring: the newest sample is just before ``self.write``.
            rows = (self.write + np.arange(take)) % len(self.buffer)
            self.buffer[rows] = frames[:take]
            self.write = (self.write + take) % len(self.buffer)
            frames = frames[take:]
            self.pending += take
            self.analysed += take
            if self.pending == self.hop:
                self.pending = 0
                self._analyse()

    def _analyse(self) -> None:
        now = self.analysed / self.sample_rate
        # Each hop's mean square, of every output (one analysed again later
        # has its level): a frame's level is the mean of its hops'.
        newest = self.buffer[
            (self.write - self.hop + np.arange(self.hop)) % len(self.buffer)
        ]
        self.energy[self.hops % len(self.energy)] = np.mean(
            np.square(newest, dtype=float), axis=0
        )
        self.hops += 1
        with self._lock:
            seen, active = self._active
            if seen != self._changes:
                seen = self._changes  # a change from here on is read next hop
                active = [o for o in self.outputs if self._refresh(o)]
                self._active = (seen, active)
            if not active:
                return
            channels = sorted({c for o in active for c in o.channels})
            # Only what is heard is put in order and made a spectrum: most
            # outputs (matrices, unused buses) are quiet.
            peak_db = 20 * np.log10(np.max(np.abs(newest[:, channels]), axis=0) + 1e-12)
            rms_db = 10 * np.log10(np.mean(self.energy[:, channels], axis=0) + 1e-20)
            loud = rms_db >= SILENT_DB
            mags = np.full((len(channels), len(self.buffer) // 2 + 1), -200.0)
            if loud.any():
                heard = [c for c, on in zip(channels, loud, strict=True) if on]
                frame = np.roll(self.buffer[:, heard], -self.write, axis=0)
                mags[loud] = spectra_db(frame.T.astype(float))
            row = {c: i for i, c in enumerate(channels)}
            for out in active:
                rows = [row[c] for c in out.channels]
                mode = MODES[out.mode]
                if max(rms_db[r] for r in rows) < SILENT_DB:
                    # Nothing to hear, but live notches still age and release.
                    out.detector.reset()
                    out.margin.reset()
                    actions = out.planner.update(now, [], [], mode)
                else:
                    mag = mags[rows].max(axis=0)
                    out.spectrum_db = mag
                    ceiling = self.mixer.get(f"{out.prefix}/limiter/ceiling")
                    limiting = max(peak_db[r] for r in rows) >= ceiling - LIMITING_DB
                    howls = out.detector.analyse_spectrum(mag, limiting)
                    out.margin.update(mag)
                    actions = out.planner.update(now, howls, out.detector.latest, mode)
                if actions:
                    self._apply(out, actions)

    def _refresh(self, out: Output) -> bool:
        """Follow the output's mode and limits; whether it is analysed now."""
        mode = FBS_MODES[self.mixer.get(f"{out.prefix}/fbs/mode")]
        if mode != out.mode or out.detector is None:
            out.mode = mode
            if mode != "off":
                out.detector = HowlDetector(self.sample_rate, MODES[mode].detector)
        out.planner.max_depth_db = self.mixer.get(f"{out.prefix}/fbs/maxdepth")
        out.planner.release_s = self.mixer.get(f"{out.prefix}/fbs/release")
        out.channels, follower = self._pairing(out)
        return mode != "off" and not follower

    def _pairing(self, out: Output) -> tuple[tuple[int, ...], bool]:
        """The outputs a bank hears, and whether it is the even bus of a linked
        pair (its odd partner's bank then serves both)."""
        first = out.channels[0]
        if first >= self.n_bus:  # the main pair
            return out.channels, False
        linked = self.mixer.topology.linked(self.mixer.values, first)
        if first % 2:
            return (first,), linked
        return ((first, first + 1) if linked else (first,)), False

    # -- the notch bank as Mixer parameters --------------------------------------

    def _apply(self, out: Output, actions: list[Action]) -> None:
        changes: dict[str, object] = {}
        for action in actions:
            self.events.append((out.prefix, action))
            changes.update(
                notch_values(self.mixer.registry, out.prefix, action.slot, action.notch)
            )
        self.mixer.set_many(changes, source=SUPPRESSOR)

    def _changed(self, change: Change) -> None:
        """Someone else (engineer, scene) edited a notch: take it as it is.
        Any change of theirs may be a mode, a limit or a bus link."""
        if change.source.origin is Origin.SUPPRESSOR:
            return
        self._changes += 1
        slot = self._slot_of.get(change.address)
        if slot is not None:
            self._load(*slot)

    def _load(self, out: Output, only: int | None = None) -> None:
        get = self.mixer.get
        for slot in range(self.n_notch) if only is None else (only,):
            n = notch_address(out.prefix, slot)
            if not get(f"{n}/on"):
                out.planner.slots[slot] = None
                continue
            known = out.planner.slots[slot]
            notch = known or Notch(0.0, 0.0, 0.0, placed_s=self.now, seen_s=self.now)
            notch.freq_hz, notch.depth_db = get(f"{n}/f"), get(f"{n}/depth")
            notch.width_oct, notch.fixed = get(f"{n}/width"), bool(get(f"{n}/fixed"))
            out.planner.slots[slot] = notch

    # -- what the console and OSC ask ------------------------------------------

    @property
    def now(self) -> float:
        return self.analysed / self.sample_rate

    def output(self, prefix: str) -> Output:
        try:
            return self.by_prefix[prefix]
        except KeyError:
            raise ValueError(f"no notch bank at {prefix}") from None

    def clear(self, prefix: str) -> int:
        """Remove the live notches of one output; returns how many."""
        out = self.output(prefix)
        with self._lock:
            gone = out.planner.clear()
            changes: dict[str, object] = {}
            for slot in gone:
                changes.update(notch_values(self.mixer.registry, prefix, slot, None))
            if changes:
                self.mixer.set_many(changes, source=SUPPRESSOR)
        return len(gone)

    def spectrum(self, prefix: str) -> np.ndarray:
        """The output's latest spectrum in ``SPECTRUM_BANDS`` log bands, dB."""
        mag = self.output(prefix).spectrum_db
        edges = np.geomspace(20.0, 20000.0, SPECTRUM_BANDS + 1)
        if mag is None:
            return np.full(SPECTRUM_BANDS, -120.0, np.float32)
        hz = self.sample_rate / (2 * (len(mag) - 1))
        bins = np.clip(np.rint(edges / hz).astype(int), 0, len(mag) - 1)
        power = 10 ** (mag / 10)
        out = [10 * math.log10(power[a : max(b, a + 1)].max() + 1e-20)
               for a, b in zip(bins[:-1], bins[1:], strict=True)]  # fmt: skip
        return np.asarray(out, np.float32)

    def notches(self, prefix: str) -> list[dict]:
        """Every occupied slot of an output's bank."""
        return [
            {
                "slot": s + 1,
                "freq_hz": n.freq_hz,
                "depth_db": n.depth_db,
                "width_oct": n.width_oct,
                "fixed": n.fixed,
            }  # fmt: skip
            for s, n in enumerate(self.output(prefix).planner.slots)
            if n is not None
        ]

    def margins(self) -> dict[str, float]:
        """The estimated margin (dB) of every analysed output's loop that has
        one (``MarginEstimator``: after two seconds of sound); a loop with no
        colouration to speak of reads 99."""
        out = {}
        for o in self.outputs:
            peak = o.margin.peak() if o.mode != "off" else None
            if peak is not None:
                out[o.prefix] = round(min(peak[1], 99.0), 1)
        return out

    def counts(self) -> dict[str, int]:
        """Live and fixed notches over every output."""
        slots = [n for o in self.outputs for n in o.planner.slots if n is not None]
        fixed = sum(n.fixed for n in slots)
        return {"live": len(slots) - fixed, "fixed": fixed}

    def attach(self, engine) -> None:
        """Run synchronously after every block of a ``BlockEngine``."""
        engine.block_hooks.append(lambda _now: self.poll())


class FeedbackThread:
    """The live engine's analysis thread: polls the taps every ``period_s``."""

    def __init__(self, suppressor: Suppressor, period_s: float = 0.005) -> None:
        self.suppressor, self.period_s = suppressor, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feedback", daemon=True)
        self.errors = 0

    def start(self) -> "FeedbackThread":
        self._thread.start()
        return self

    @property
    def native_id(self) -> int | None:
        """The kernel's id of the thread (for measuring its CPU)."""
        return self._thread.native_id

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.suppressor.poll()
            except Exception as exc:  # noqa: BLE001 - analysis must never stop the show
                self.errors += 1
                if self.errors <= 3:
                    print(f"feedback analysis: {exc!r}", flush=True)

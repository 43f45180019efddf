"""``livesound bench feedback``: the suppressor in closed loops, scored as the
literature scores it (van Waterschoot & Moonen, Proc. IEEE 2011).

Each condition is one wedge feeding back into one vocal mic (the vocal
channel high-passed at 100 Hz), closed around a real engine block by block
with the suppressor running at its normal cadence. Three rooms are
``sim.stage_path`` (direct sound and a decaying-noise tail); the fourth is
an image-source room (``sim.image_source_ir``), built another way. All are
heard through the same wedge and vocal mic model.

- the send starts 3 dB below the loop's maximum stable gain (MSG), holds
  for 5 s, rises by ΔK (10 or 15 dB) over the next 5 s (an engineer
  pushing the wedge) and holds there for the rest of the run;
- the same source through the same engine without the room is the
  reference (what the wedge would play if nothing fed back).

Per condition: ΔMSG (MSG with the final notch bank minus MSG without, from
the loop's frequency response, the engine's part measured once by an
impulse through it and the bank applied by its coefficients); the final
margin (``sim.margin_db``: the loop's MSG from the engine's forward path as
it is at the end, measured anew with its send and notches, minus nothing:
how many dB more the loop takes before it howls); SD (ERB-weighted
log-spectral distortion against the reference) next to the loop alone's SD
(same source and room, suppressor off, unpushed); HOP (share of frames
howling: a bin 20 dB over the reference for 5 frames in a frame within
20 dB of the reference's loudest); the residual-ringing share
(``metrics.ringing_share``: a narrowband tone 20 dB over the reference,
held 130 ms or more, in the last 10 s); the level over the last 10 s
against the reference's (a howl adds to it; a canceller that takes the
source itself off, as one that has learnt a held note does, takes from
it); TRI (how long each howl lasted); notches at the end; and false
notches (placed while the loop, with the notches it had, was stable).

A single run of a loop pushed to its edge is sensitive to where in the
source the decisive moment falls; ``takes`` runs every speech and music
condition on that many takes of its source (each its own seed), and the
summaries are over all of them.

Mode ``afc``: an adaptive feedback canceller (``livesound.audio.afc``, in
``sim.AfcLoop``) on the path with its decorrelation delay, the suppressor in
its ``afc`` mode behind it, as in the engine. Its loop is what the
canceller leaves of the path, F − F̂ (F̂ its final estimate), delayed, times
the forward path with the final notch bank: ΔMSG, the margin at the end and
false notches (judged by the estimate of that moment) are taken on that
loop, against the same MSG0. Mode ``afc, learnt``: the same after a
soundcheck, the canceller having learnt the path from the white noise its
output plays (``AfcPaths.learn``) for ``LEARN_S``, the stage silent and
the send at K0, before the run (and the suppressor) start.
"""

import functools
import math
import os
import pathlib
import time
from dataclasses import dataclass

import numpy as np

from livesound.audio.layout import (
    AFC_COLD_TAPS,
    AFC_DELAY_S,
    AFC_TAPS,
    N_NOTCH,
    afc_partitions,
)
from livesound.control.afcpaths import LEARN_S
from livesound.control.offline import BlockEngine
from livesound.enginehost import Engine, EngineConfig
from livesound.feedback.margin import SAFE_MARGIN_DB
from livesound.feedback.notches import Notch
from livesound.feedback.suppressor import Suppressor, notch_values
from livesound.virtual import metrics, sources
from livesound.virtual.sim import (
    AfcLoop,
    FeedbackLoop,
    Path,
    engine_response,
    image_source_ir,
    margin_db,
    notch_bank_response,
    stage_path,
    through_transducers,
)

SR = 48000
BLOCK = 64
N_FFT = 1 << 17
BUS = "/ls/bus/01"
HOLD_S, RAMP_S = 5.0, 5.0
PUSHES_DB = (10.0, 15.0)
# Residual ringing is judged over the end of a run, after the push.
RINGING_LAST_S = 10.0
# A howl counts when its frame is within this of the reference's loudest: the
# loop is loud, not a stable loop ringing on in the pauses of speech.
LOUD_DB = 20.0


@dataclass(frozen=True)
class Room:
    """One wedge-to-mic situation."""

    name: str
    distance_m: float
    t60_s: float
    drr_db: float
    seed: int

    def ir(self) -> np.ndarray:
        return stage_path(SR, self.distance_m, self.t60_s, drr_db=self.drr_db,
                          seed=self.seed, length_s=min(self.t60_s, 0.6))  # fmt: skip


@dataclass(frozen=True)
class ImageRoom:
    """A wedge and a mic in a shoebox room (image sources)."""

    name: str
    room_m: tuple[float, float, float]
    wedge_m: tuple[float, float, float]
    mic_m: tuple[float, float, float]
    absorption: float

    def ir(self) -> np.ndarray:
        room = image_source_ir(SR, self.room_m, self.wedge_m, self.mic_m,
                               self.absorption, length_s=0.6)  # fmt: skip
        return through_transducers(room, SR)


ROOMS = (
    Room("club stage, wedge 1.5 m, T60 0.8 s", 1.5, 0.8, 0.0, 1),
    Room("small room, wedge 1.0 m, T60 1.2 s", 1.0, 1.2, 3.0, 2),
    Room("theatre, wedge 2.5 m, T60 0.6 s", 2.5, 0.6, -3.0, 3),
    ImageRoom(
        "bar, image sources 12x7x3.2 m, wedge 1.9 m",
        (12.0, 7.0, 3.2),
        (3.0, 2.0, 0.5),
        (3.3, 3.6, 1.6),
        0.3,
    ),
)
SOURCES = {"speech": sources.speech, "music": sources.music}
# The adaptive feedback canceller's mode: a canceller on the path, the
# suppressor's notches armed behind it.
AFC = "afc"
# The decorrelation delay the engine gives a mic with a canceller.
AFC_DELAY = round(AFC_DELAY_S * SR)
# The canceller's settings (``livesound.audio.afc.make_state``) in the bench.
AFC_SETTINGS: dict[str, object] = {
    "delay": AFC_DELAY,
    "partitions": afc_partitions(AFC_TAPS, BLOCK),
    "cold_partitions": afc_partitions(AFC_COLD_TAPS, BLOCK),
}
# The canceller after a soundcheck: it learnt the path from its test signal
# (``AfcPaths.learn``) for LEARN_S with the stage silent before the run.
AFC_LEARNT = "afc, learnt"
# The canceller's estimate is kept this often, to judge notches by the loop
# as it was when they were placed.
ESTIMATE_EVERY_S = 0.25


def _engine(mode: str) -> BlockEngine:
    """A vocal mic (input 1, high-passed at 100 Hz as any vocal channel is)
    sent pre-fader to its wedge (bus 1)."""
    engine = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=6, sample_rate=SR)
    engine.mixer.set_many({"/ch/01/preamp/hpon": 1, "/ch/01/preamp/hpf": 100.0,
                           "/ch/01/mix/01/type": 3, f"{BUS}/fbs/mode": mode})  # fmt: skip
    return engine


@functools.cache
def _off() -> BlockEngine:
    """The bench's engine at 0 dB send with its notches off (never run)."""
    engine = _engine("off")
    engine.mixer.set("/ch/01/mix/01/level", 0.0)
    return engine


@functools.cache
def forward_response() -> np.ndarray:
    """The engine's response from the mic to the wedge at 0 dB send, notches
    off (``sim.engine_response``); a bank's effect is its response on top."""
    return engine_response(_off(), N_FFT, block=BLOCK)


def msg_db(path: np.ndarray, bank: dict[str, object]) -> float:
    """MSG of the loop (send level in dB that is just stable) with ``bank``."""
    loop = forward_response() * notch_bank_response(_off(), BUS, N_FFT, bank)
    return metrics.msg_db(loop * metrics.path_response(path, N_FFT))


def _residual(path: np.ndarray, estimate: np.ndarray | None,
              delay: int = 0) -> np.ndarray:  # fmt: skip
    """The path a cancelled loop is left with: F − F̂ (``estimate``: taps from
    lag 0, none without a canceller), ``delay`` samples later (the
    canceller's decorrelation delay, in the loop wherever it sits)."""
    size = max(len(path), 0 if estimate is None else len(estimate))
    residual = np.zeros(delay + size)
    residual[delay : delay + len(path)] = path
    if estimate is not None:
        residual[delay : delay + len(estimate)] -= estimate
    return residual


def bank_values(slots: dict[int, Notch]) -> dict[str, object]:
    """The bus's notch parameters for a bank of ``slots``."""
    registry = _off().mixer.registry
    out: dict[str, object] = {}
    for slot in range(N_NOTCH):
        out.update(notch_values(registry, BUS, slot, slots.get(slot)))
    return out


def send_db(t: float, k0: float, dk: float) -> float:
    return k0 + dk * min(max((t - HOLD_S) / RAMP_S, 0.0), 1.0)


def _run(engine: BlockEngine, source: np.ndarray, path: np.ndarray | None,
         k0: float, dk: float, cancel: bool = False, learn_s: float = 0.0,
         suppressor: Suppressor | None = None,
         ) -> tuple[np.ndarray, list[tuple[float, np.ndarray]]]:  # fmt: skip
    """The wedge's signal; with ``cancel``, a canceller on the path and its
    estimate F̂ every ``ESTIMATE_EVERY_S`` and at the end, as (time s, taps).
    With ``learn_s`` the canceller first learns the path from its test
    signal that long, the stage silent and the send at ``k0`` (a soundcheck);
    then ``suppressor`` (if any) is attached and the run starts."""
    if path is None:
        loop = None
    elif cancel:
        loop = AfcLoop(engine, [Path(0, 0, path)], settings=AFC_SETTINGS)
    else:
        loop = FeedbackLoop(engine, [Path(0, 0, path)])
    if learn_s:
        if not isinstance(loop, AfcLoop):
            raise ValueError("only a canceller learns")
        engine.mixer.set("/ch/01/mix/01/level", k0)
        loop.learning = True
        silent = np.zeros((BLOCK, 2))
        for _ in range(round(learn_s * SR / BLOCK)):
            loop.process(silent)
        loop.learning = False
    if suppressor is not None:
        suppressor.attach(engine)
    blocks = len(source) // BLOCK
    out = np.empty(blocks * BLOCK)
    x = np.zeros((BLOCK, 2))
    estimates: list[tuple[float, np.ndarray]] = []
    every = round(ESTIMATE_EVERY_S * SR / BLOCK)
    for b in range(blocks):
        if b % 8 == 0:  # the fader moves every 10.7 ms
            engine.mixer.set("/ch/01/mix/01/level", send_db(b * BLOCK / SR, k0, dk))
        x[:, 0] = source[b * BLOCK : (b + 1) * BLOCK]
        y = loop.process(x) if loop else engine.process(x)
        out[b * BLOCK : (b + 1) * BLOCK] = y[:, 0]
        if isinstance(loop, AfcLoop) and ((b + 1) % every == 0 or b + 1 == blocks):
            estimates.append(((b + 1) * BLOCK / SR, loop.estimate(0)))
    return out, estimates


def condition(room: Room | ImageRoom, kind: str, dk: float, seconds: float,
              mode: str, source: np.ndarray | None = None,
              learn_s: float = 0.0) -> dict:  # fmt: skip
    """One closed-loop run, scored. ``mode`` is the suppressor's, or ``AFC``:
    the canceller, with the notches in the source's mode behind it; with
    ``learn_s`` it learns the path from its test signal first."""
    path = room.ir()
    msg0 = msg_db(path, {})
    k0 = msg0 - 3.0
    source = SOURCES[kind](SR, seconds) if source is None else source
    cancel = mode == AFC
    delay = AFC_DELAY if cancel else 0
    engine = _engine(mode)
    suppressor = Suppressor(engine.mixer, engine.core, SR)
    t0 = time.perf_counter()
    out, estimates = _run(engine, source, path, k0, dk, cancel, learn_s, suppressor)
    wall = time.perf_counter() - t0
    ref, _ = _run(_engine("off"), source, None, k0, dk)
    # The dry reference as late as the canceller's delay makes the wedge:
    # latency is not colouring, and frames compared must hold the same sound.
    ref = np.concatenate([np.zeros(delay), ref[: len(ref) - delay]])
    final = {s: n for s, n in enumerate(suppressor.output(BUS).planner.slots) if n}
    # With the canceller the loop is what F̂ leaves of the path: F − F̂.
    left = _residual(path, estimates[-1][1] if estimates else None, delay)
    msg1 = msg_db(left, bank_values(final))
    flags = metrics.howling(out, ref, SR, min_frames=5, quiet_db=LOUD_DB)
    tri = metrics.recovery_times(flags, 1024 / SR)
    false = _false_notches(suppressor, path, k0, dk, estimates, delay)
    last_s = min(RINGING_LAST_S, seconds - HOLD_S - RAMP_S)
    return {
        "room": room.name, "source": kind, "mode": AFC_LEARNT if learn_s else mode,
        "dk_db": dk,
        "msg0_db": msg0, "delta_msg_db": msg1 - msg0,
        # The loop's MSG with the canceller's delay but no canceller, no notch:
        # what the delay alone moves.
        "msg0_delayed_db": msg_db(_residual(path, None, delay), {}),
        "margin_db": margin_db(engine, Path(0, 0, left), N_FFT),
        # What the suppressor itself believes (``MarginEstimator``).
        "margin_estimate_db": suppressor.margins().get(BUS, math.nan),
        "sd_db": metrics.spectral_distortion_db(out, ref, SR),
        "hop": metrics.howl_fraction(flags),
        "ringing": metrics.ringing_share(out, ref, SR, last_s=last_s),
        "level_db": level_re_db(out, ref, round(last_s * SR)),
        # JSON has no infinity: a howl that never recovered is None.
        "tri_s": [t if np.isfinite(t) else None for t in tri], "notches": len(final), "false_notches": false,
        "changes": len(suppressor.events), "realtime_x": seconds / wall,
    }  # fmt: skip


def level_re_db(out: np.ndarray, ref: np.ndarray, frames: int) -> float:
    """The level of the last ``frames`` of ``out`` against ``ref``'s, dB."""
    heard = float(np.mean(np.square(out[-frames:])))
    dry = float(np.mean(np.square(ref[-frames:])))
    return 10 * math.log10((heard + 1e-20) / (dry + 1e-20))


def _false_notches(suppressor: Suppressor, path: np.ndarray, k0: float, dk: float,
                   estimates: list[tuple[float, np.ndarray]],
                   delay: int = 0) -> int:  # fmt: skip
    """New notches placed while the loop, with the bank it had (and the
    canceller's latest estimate before then), was stable."""
    slots: dict[int, Notch] = {}
    false = 0
    for _, action in suppressor.events:
        if action.what in ("place", "reuse"):
            known = [f for t, f in estimates if t <= action.time_s]
            left = _residual(path, known[-1] if known else None, delay)
            stable = msg_db(left, bank_values(slots))
            false += send_db(action.time_s, k0, dk) < stable
        if action.notch is None:
            slots.pop(action.slot, None)
        else:
            slots[action.slot] = action.notch
    return false


HEADER = ("| room | source (mode) | take | ΔK dB | MSG0 dB | ΔMSG dB | margin at end dB | "
          "its estimate dB | "
          "SD dB | SD loop alone dB | HOP | ringing | level re dry dB | "
          "TRI median/max s | notches | "
          "false notches |")  # fmt: skip


def _line(r: dict) -> str:
    done = [t for t in r["tri_s"] if t is not None]
    tri_text = f"{np.median(done):.2f}/{max(done):.2f}" if done else "-"
    if len(done) < len(r["tri_s"]):
        tri_text += " (one never recovered)"
    return (f"| {r['room']} | {r['source']} ({r['mode']}) | {r['take'] + 1} | "
            f"{r['dk_db']:.0f} | "
            f"{r['msg0_db']:.1f} | {r['delta_msg_db']:.1f} | {r['margin_db']:+.2f} | "
            f"{r['margin_estimate_db']:+.1f} | "
            f"{r['sd_db']:.1f} | {r['sd_loop_db']:.1f} | {100 * r['hop']:.1f} % | "
            f"{100 * r['ringing']:.1f} % | {r['level_db']:+.1f} | {tri_text} | "
            f"{r['notches']} | "
            f"{r['false_notches']} |")  # fmt: skip


def analysis_cpu(seconds: float = 10.0) -> float:
    """Share of one core the live engine's analysis thread uses on the virtual
    stage (32 inputs, 16 buses, every output's suppressor on)."""
    engine = Engine(EngineConfig(virtual=True))
    engine.start()
    try:
        time.sleep(2.0)  # past the start-up
        stat = pathlib.Path(f"/proc/self/task/{engine.feedback.native_id}/stat")

        def cpu() -> float:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before, t0 = cpu(), time.monotonic()
        time.sleep(seconds)
        return (cpu() - before) / (time.monotonic() - t0)
    finally:
        engine.stop()


def _summary(kind: str, rows: list[dict]) -> dict:
    """One source's pushed runs in the figures the issue's targets are set in."""
    ringing = [r["ringing"] for r in rows]
    extra_sd = [r["sd_db"] - r["sd_loop_db"] for r in rows]
    return {
        "runs": len(rows),
        "delta_msg_mean_db": float(np.mean([r["delta_msg_db"] for r in rows])),
        "delta_msg_by_push_db": {
            f"{dk:.0f}": float(np.mean([r["delta_msg_db"] for r in rows
                                        if r["dk_db"] == dk]))
            for dk in sorted({r["dk_db"] for r in rows})
        },
        "safe": sum(r["margin_db"] >= SAFE_MARGIN_DB for r in rows),
        "margin_min_db": float(min(r["margin_db"] for r in rows)),
        "ringing_mean": float(np.mean(ringing)), "ringing_max": float(max(ringing)),
        "level_mean_db": float(np.mean([r["level_db"] for r in rows])),
        "level_min_db": float(min(r["level_db"] for r in rows)),
        "sd_over_loop_mean_db": float(np.mean(extra_sd)),
        "sd_over_loop_max_db": float(max(extra_sd)),
        "false_notches": sum(r["false_notches"] for r in rows),
        "tri_median_s": float(np.median([t for r in rows for t in r["tri_s"]
                                         if t is not None] or [0])),
        "tri_max_s": float(max([t for r in rows for t in r["tri_s"]
                                if t is not None] or [0])),
        "unrecovered": sum(t is None for r in rows for t in r["tri_s"]),
    }  # fmt: skip


def _summary_line(kind: str, s: dict) -> str:
    by_push = ", ".join(f"+{k}: {v:.1f}" for k, v in s["delta_msg_by_push_db"].items())
    return (f"{kind}: ΔMSG mean {s['delta_msg_mean_db']:.1f} dB ({by_push}); "
            f"margin ≥ {SAFE_MARGIN_DB:.0f} dB at the end in {s['safe']}/{s['runs']} "
            f"runs (least {s['margin_min_db']:+.2f} dB); ringing mean "
            f"{100 * s['ringing_mean']:.1f} %, max {100 * s['ringing_max']:.1f} %; "
            f"level re dry mean {s['level_mean_db']:+.1f} dB, least "
            f"{s['level_min_db']:+.1f} dB; "
            f"SD - loop alone mean {s['sd_over_loop_mean_db']:+.1f} dB, max "
            f"{s['sd_over_loop_max_db']:+.1f} dB; false notches {s['false_notches']}; "
            f"TRI median {s['tri_median_s']:.2f} s, max {s['tri_max_s']:.2f} s, "
            f"{s['unrecovered']} never recovered")  # fmt: skip


HELD = {"sustained notes": sources.sustained_notes, "held notes": sources.held_notes}


def scenarios(room: Room | ImageRoom, seconds: float, pushes: tuple[float, ...],
              seed: int = 0, emit=print, cancel: bool = True,
              takes: int = 1) -> list[dict]:  # fmt: skip
    """Every source in one room, on ``takes`` takes of it: the loop alone,
    then each push suppressed (notches only, then with ``cancel`` the
    canceller with notches behind it, from nothing and after it learnt the
    path from its test signal at a soundcheck); then held material on the stable
    loop (``seed`` picks its notes)."""
    results = []
    modes = ((None, False), (AFC, False), (AFC, True)) if cancel else ((None, False),)
    for kind in SOURCES:
        for take in range(takes):
            source = SOURCES[kind](SR, seconds, take)
            # The loop itself, unpushed and unsuppressed: the floor of SD and HOP.
            alone = condition(room, kind, 0.0, seconds, "off", source)
            rows = [alone] + [condition(room, kind, dk, seconds, mode or kind, source,
                                        LEARN_S if learn else 0.0)
                              for dk in pushes for mode, learn in modes]  # fmt: skip
            for r in rows:
                r["sd_loop_db"], r["take"] = alone["sd_db"], take
            results += rows
    for kind, render in HELD.items():
        held = render(SR, seconds, seed)
        results.append(condition(room, kind, 0.0, seconds, "music", held))
        # Unpushed and stable: the run is its own loop alone.
        results[-1]["sd_loop_db"], results[-1]["take"] = math.nan, 0
    for r in results:
        emit(_line(r))
    return results


def run(emit=print, quick: bool = False, takes: int = 1) -> dict:
    """Every condition, speech and music on ``takes`` takes each; emits a
    Markdown table as it goes."""
    if takes < 1:
        raise ValueError(f"takes must be 1 or more, not {takes}")
    seconds = 16.0 if quick else 30.0
    share = analysis_cpu(5.0 if quick else 20.0)
    emit(f"live analysis thread on the virtual stage: {100 * share:.1f} % of one core")
    rooms = ROOMS[:1] if quick else ROOMS
    pushes = (10.0,) if quick else PUSHES_DB
    last_s = min(RINGING_LAST_S, seconds - HOLD_S - RAMP_S)
    emit(f"closed loop at {SR} Hz, {BLOCK}-frame blocks, {seconds:.0f} s per run; "
         "send K0 = MSG - 3 dB for 5 s, then +ΔK over 5 s; ringing and level over "
         f"the last {last_s:.0f} s; {takes} take(s) of speech and music")  # fmt: skip
    emit(HEADER)
    emit("|---" * HEADER.count(" | ") + "|---|")
    results = [r for seed, room in enumerate(rooms)
               for r in scenarios(room, seconds, pushes, seed, emit, takes=takes)]  # fmt: skip
    summary = {}
    for kind in SOURCES:
        for mode in (kind, AFC, AFC_LEARNT):
            name = kind if mode == kind else f"{kind} ({mode})"
            rows = [r for r in results if r["source"] == kind and r["mode"] == mode]
            summary[name] = _summary(name, rows)
            emit(_summary_line(name, summary[name]))
    for kind in HELD:
        # The loop is stable throughout: every notch placed is a false one.
        held = [r for r in results if r["source"] == kind]
        summary[f"false_notches_{kind.split()[0]}"] = placed = sum(
            r["false_notches"] for r in held
        )
        emit(f"{kind} on stable loops: {placed} notches placed in {len(held)} runs")
    return {"analysis_cpu": share, "conditions": results, "summary": summary}

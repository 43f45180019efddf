"""``livesound bench feedback``: the suppressor in closed loops, scored as the
literature scores it (van Waterschoot & Moonen, Proc. IEEE 2011).

Each condition is one wedge feeding back into one vocal mic on a stage
(``sim.stage_path``: room, wedge and mic; the vocal channel high-passed at
100 Hz), closed around a real engine block by block with the suppressor
running at its normal cadence:

- the send starts 3 dB below the loop's maximum stable gain (MSG), holds
  for 5 s, rises by ΔK over the next 5 s (an engineer pushing the wedge)
  and holds there for the rest of the run;
- the same source through the same engine without the room is the
  reference (what the wedge would play if nothing fed back).

Per condition: ΔMSG (MSG with the final notch bank minus MSG without, from
the loop's frequency response, the engine's part measured once by an
impulse through it and the bank applied by its coefficients), SD (ERB-weighted log-spectral distortion against the
reference), HOP (share of frames howling: a bin 20 dB over the reference
for 5 frames in a frame within 20 dB of the reference's loudest), TRI (how long each howl lasted), notches at the end, and
false notches (placed while the loop, with the notches it had, was stable).
A row with the suppressor off and no push shows what the loop alone costs
in SD and HOP (its ringing after every word).
"""

import functools
import os
import pathlib
import time
from dataclasses import dataclass

import numpy as np

from livesound.audio.layout import N_NOTCH
from livesound.control.offline import BlockEngine
from livesound.enginehost import Engine, EngineConfig
from livesound.feedback.notches import Notch
from livesound.feedback.suppressor import Suppressor, notch_values
from livesound.virtual import metrics, sources
from livesound.virtual.sim import (
    FeedbackLoop,
    Path,
    engine_response,
    notch_bank_response,
    stage_path,
)

SR = 48000
BLOCK = 64
N_FFT = 1 << 17
BUS = "/ls/bus/01"
HOLD_S, RAMP_S = 5.0, 5.0
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


ROOMS = (
    Room("club stage, wedge 1.5 m, T60 0.8 s", 1.5, 0.8, 0.0, 1),
    Room("small room, wedge 1.0 m, T60 1.2 s", 1.0, 1.2, 3.0, 2),
    Room("theatre, wedge 2.5 m, T60 0.6 s", 2.5, 0.6, -3.0, 3),
)
SOURCES = {"speech": sources.speech, "music": sources.music}


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
         k0: float, dk: float) -> np.ndarray:  # fmt: skip
    loop = FeedbackLoop(engine, [Path(0, 0, path)]) if path is not None else None
    blocks = len(source) // BLOCK
    out = np.empty(blocks * BLOCK)
    x = np.zeros((BLOCK, 2))
    for b in range(blocks):
        if b % 8 == 0:  # the fader moves every 10.7 ms
            engine.mixer.set("/ch/01/mix/01/level", send_db(b * BLOCK / SR, k0, dk))
        x[:, 0] = source[b * BLOCK : (b + 1) * BLOCK]
        y = loop.process(x) if loop else engine.process(x)
        out[b * BLOCK : (b + 1) * BLOCK] = y[:, 0]
    return out


def condition(room: Room, kind: str, dk: float, seconds: float, mode: str,
              source: np.ndarray | None = None) -> dict:  # fmt: skip
    """One closed-loop run, scored."""
    path = room.ir()
    msg0 = msg_db(path, {})
    k0 = msg0 - 3.0
    source = SOURCES[kind](SR, seconds) if source is None else source
    engine = _engine(mode)
    suppressor = Suppressor(engine.mixer, engine.core, SR)
    suppressor.attach(engine)
    t0 = time.perf_counter()
    out = _run(engine, source, path, k0, dk)
    wall = time.perf_counter() - t0
    ref = _run(_engine("off"), source, None, k0, dk)
    final = {s: n for s, n in enumerate(suppressor.output(BUS).planner.slots) if n}
    msg1 = msg_db(path, bank_values(final))
    flags = metrics.howling(out, ref, SR, min_frames=5, quiet_db=LOUD_DB)
    tri = metrics.recovery_times(flags, 1024 / SR)
    false = _false_notches(suppressor, path, k0, dk)
    return {
        "room": room.name, "source": kind, "mode": mode, "dk_db": dk,
        "msg0_db": msg0, "delta_msg_db": msg1 - msg0,
        "stable_at_end": bool(send_db(seconds, k0, dk) < msg1),
        "sd_db": metrics.spectral_distortion_db(out, ref, SR),
        "hop": metrics.howl_fraction(flags),
        # JSON has no infinity: a howl that never recovered is None.
        "tri_s": [t if np.isfinite(t) else None for t in tri], "notches": len(final), "false_notches": false,
        "changes": len(suppressor.events), "realtime_x": seconds / wall,
    }  # fmt: skip


def _false_notches(
    suppressor: Suppressor, path: np.ndarray, k0: float, dk: float
) -> int:
    """New notches placed while the loop, with the bank it had, was stable."""
    slots: dict[int, Notch] = {}
    false = 0
    for _, action in suppressor.events:
        if action.what in ("place", "reuse"):
            false += send_db(action.time_s, k0, dk) < msg_db(path, bank_values(slots))
        if action.notch is None:
            slots.pop(action.slot, None)
        else:
            slots[action.slot] = action.notch
    return false


def _line(r: dict) -> str:
    done = [t for t in r["tri_s"] if t is not None]
    tri_text = f"{np.median(done):.2f}/{max(done):.2f}" if done else "-"
    if len(done) < len(r["tri_s"]):
        tri_text += " (one never recovered)"
    return (f"| {r['room']} | {r['source']} ({r['mode']}) | {r['dk_db']:.0f} | "
            f"{r['msg0_db']:.1f} | {r['delta_msg_db']:.1f} | "
            f"{'yes' if r['stable_at_end'] else 'no'} | {r['sd_db']:.1f} | "
            f"{100 * r['hop']:.1f} % | {tri_text} | {r['notches']} | "
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


def run(emit=print, quick: bool = False) -> dict:
    """Every condition; emits a Markdown table as it goes."""
    seconds = 12.0 if quick else 30.0
    share = analysis_cpu(5.0 if quick else 20.0)
    emit(f"live analysis thread on the virtual stage: {100 * share:.1f} % of one core")
    rooms = ROOMS[:1] if quick else ROOMS
    emit(f"closed loop at {SR} Hz, {BLOCK}-frame blocks, {seconds:.0f} s per run; "
         "send K0 = MSG - 3 dB for 5 s, then +ΔK over 5 s")  # fmt: skip
    emit("| room | source (mode) | ΔK dB | MSG0 dB | ΔMSG dB | stable at end | "
         "SD dB | HOP | TRI median/max s | notches | false notches |")  # fmt: skip
    emit("|---|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for room in rooms:
        for kind in SOURCES:
            # The loop itself, unpushed and unsuppressed: the floor of SD and HOP.
            results.append(condition(room, kind, 0.0, seconds, "off"))
            emit(_line(results[-1]))
            for dk in (5.0, 10.0):
                results.append(condition(room, kind, dk, seconds, kind))
                emit(_line(results[-1]))
        held = sources.sustained_notes(SR, seconds)
        results.append(condition(room, "sustained notes", 0.0, seconds, "music", held))
        emit(_line(results[-1]))
    summary = {}
    for kind in SOURCES:
        rows = [r for r in results if r["source"] == kind and r["mode"] != "off"]
        summary[kind] = {
            "delta_msg_mean_db": float(np.mean([r["delta_msg_db"] for r in rows])),
            "delta_msg_max_db": float(np.max([r["delta_msg_db"] for r in rows])),
            "sd_mean_db": float(np.mean([r["sd_db"] for r in rows])),
            "tri_median_s": float(np.median([t for r in rows for t in r["tri_s"]
                                             if t is not None] or [0])),
            "unrecovered": sum(t is None for r in rows for t in r["tri_s"]),
        }  # fmt: skip
        s = summary[kind]
        emit(f"{kind}: ΔMSG mean {s['delta_msg_mean_db']:.1f} dB, max "
             f"{s['delta_msg_max_db']:.1f} dB; SD mean {s['sd_mean_db']:.1f} dB; "
             f"TRI median {s['tri_median_s']:.2f} s, {s['unrecovered']} howls "
             "never recovered")  # fmt: skip
    held = [r for r in results if r["source"] == "sustained notes"]
    summary["false_notches_sustained"] = sum(r["notches"] for r in held)
    emit(
        f"sustained notes on stable loops: {summary['false_notches_sustained']} "
        "notches placed"
    )
    return {"analysis_cpu": share, "conditions": results, "summary": summary}

"""``livesound bench``: what the audio plane costs, measured.

Times the compiled C callback itself (its own cycle-counter timing, the
same numbers the live engine reports) on the reference show with every
processor engaged, at several block sizes and input counts; times the same
filter-and-mix chain written with scipy.signal for comparison; and times a
warm start (process start to first processed block, numba cache loaded).
"""

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from livesound.audio import afc
from livesound.audio.layout import (
    N_MTX,
    SLOT_MAIL,
    Dims,
    matrix_outputs,
    mono_output,
    n_outputs,
)
from livesound.bench.common import free_jack_name, machine
from livesound.bench.faults import EngineProcess, jackd, wait
from livesound.control import derive
from livesound.control.offline import BlockEngine
from livesound.control.registry import ch_prefix, out_prefixes

BLOCKS = (16, 32, 64, 128, 256)
INPUT_COUNTS = (8, 32, 64, 128)
SECONDS = 3.0  # of audio per measurement
AFC_PATHS = (1, 4)  # feedback cancellers measured
LARGE = (128, 64)  # a dLive-size show: inputs, mix buses
LARGE_TARGET_PCT = 25.0
LATENCY_BLOCKS = (16, 32, 64)
LOOKAHEADS_MS = (1.0, 0.2)  # the default, and the least the limiter takes
X32_LATENCY_MS = 0.83  # Behringer's figure: any input to any output at 48 kHz


def reference_show(n_in: int, n_bus: int) -> dict[str, Any]:
    """Every processor of every strip engaged, as in a busy show."""
    show: dict[str, Any] = {}
    for c in range(n_in):
        p = ch_prefix(c)
        show.update({
            f"{p}/preamp/trim": 3.0, f"{p}/preamp/hpon": 1, f"{p}/preamp/hpf": 90.0,
            f"{p}/preamp/hpslope": 1, f"{p}/delay/on": 1, f"{p}/delay/time": 2.0,
            f"{p}/gate/on": 1, f"{p}/gate/thr": -50.0, f"{p}/dyn/on": 1,
            f"{p}/dyn/thr": -24.0, f"{p}/mix/fader": -6.0, f"{p}/mix/pan": -20.0,
            f"{p}/mix/mono": 1, f"{p}/mix/mlevel": -6.0,
        })  # fmt: skip
        for k, g in enumerate((2.0, -3.0, 4.0, -2.0), start=1):
            show[f"{p}/eq/{k}/g"] = g
        for b in range(n_bus):
            show[f"{p}/mix/{b + 1:02d}/level"] = -12.0
            if b % 2 == 0:
                show[f"{p}/mix/{b + 1:02d}/type"] = 3 if b < n_bus // 2 else 4
    processed = [*range(n_bus + 1), mono_output(n_bus), *matrix_outputs(n_bus)]
    for x32, extra in (out_prefixes(o, n_bus) for o in processed):
        for k, g in enumerate((3.0, -2.0, 1.5, -4.0, 2.0, -1.0), start=1):
            show[f"{x32}/eq/{k}/g"] = g
        show[f"{extra}/delay/time"] = 1.0
        for k in range(16):
            n = f"{extra}/notch/{k + 1:02d}"
            show.update({f"{n}/on": 1, f"{n}/f": 200.0 * 1.15**k, f"{n}/depth": -6.0})
    # Every matrix fed: from a bus, the main and the mono bus.
    for m in range(N_MTX):
        show[f"{out_prefixes(m % n_bus, n_bus)[0]}/mix/{m + 1:02d}/level"] = -6.0
        show[f"/main/st/mix/{m + 1:02d}/level"] = -10.0
        show[f"/main/m/mix/{m + 1:02d}/level"] = -10.0
    return show


def _signal(frames: int, channels: int, sample_rate: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(frames) / sample_rate
    x = 0.1 * rng.standard_normal((frames, channels))
    x += 0.3 * np.sin(2 * np.pi * 220.0 * t)[:, None]
    return x.astype(np.float32)


def measure(n_in: int = 32, n_bus: int = 16, block: int = 64, sample_rate: int = 48000,
            seconds: float = SECONDS, afc_paths: int = 0,
            afc_learnt: bool = False) -> dict[str, float]:  # fmt: skip
    """Callback time per block of the reference show, from the callback's timer;
    with ``afc_paths`` feedback cancellers (input k into bus k, adapting: from
    nothing, or with ``afc_learnt`` as after a soundcheck's learning, on all
    their partitions)."""
    paths = tuple((k, k) for k in range(afc_paths))
    dims = Dims(n_in=n_in, n_bus=n_bus, sample_rate=sample_rate, max_block=1024,
                phys_in=n_in, phys_out=n_outputs(n_bus), afc_paths=paths,
                afc_block=block)  # fmt: skip
    engine = BlockEngine(dims)
    engine.mixer.set_many(reference_show(n_in, n_bus))
    n_blocks = max(50, int(seconds * sample_rate / block))
    x = _signal(block * 64, n_in, sample_rate)
    out = np.empty((block, dims.n_out), np.float32)
    core = engine.core
    for k in range(64):  # warm caches, let the first change set land
        core.run(x[k * block : (k + 1) * block], out)
    # Past the start's reset of every path (its output's mode was set).
    core.arrays["afc_counters"][:, afc.I_LEARNT] = int(afc_learnt)
    core.reset_timing()
    for k in range(n_blocks):
        j = k % 64
        core.run(x[j * block : (j + 1) * block], out)
    s = core.stats()
    hist = core.arrays["hist"]
    period_us = 1e6 * block / sample_rate
    return {
        "inputs": n_in, "buses": n_bus, "block": block, "afc_paths": afc_paths,
        "blocks": s.blocks,
        "mean_us": s.mean_us, "min_us": s.min_us, "max_us": s.max_us,
        "p50_us": s.percentile_us(hist, 50), "p99_us": s.percentile_us(hist, 99),
        "p999_us": s.percentile_us(hist, 99.9),
        "load_pct": 100.0 * s.mean_us / period_us,
    }  # fmt: skip


def scipy_chain(n_in: int = 32, n_bus: int = 16, block: int = 64,
                sample_rate: int = 48000, seconds: float = SECONDS) -> dict[str, float]:  # fmt: skip
    """The same filters and mix written with scipy.signal: sosfilt per block.

    Per block: 6 sections per input (HPF + EQ), trim, the mix matrix as a
    matrix product, 22 sections per output (EQ + notches), master gains. It
    leaves out the dynamics and the limiter, so it flatters scipy.
    """
    from scipy import signal

    n_out = n_outputs(n_bus)
    engine = BlockEngine(n_in=n_in, n_bus=n_bus, phys_in=n_in, phys_out=n_out)
    engine.mixer.set_many(reference_show(n_in, n_bus))
    v = engine.mixer.values

    def sos(rows: np.ndarray) -> np.ndarray:
        return np.hstack([rows[:, :3], np.ones((len(rows), 1)), rows[:, 3:]])

    sos_in = [sos(np.vstack([derive.hpf_coeffs(v, c, sample_rate),
                             derive.eq_coeffs(v, ch_prefix(c), 4, sample_rate)]))
              for c in range(n_in)]  # fmt: skip
    mail = {k: engine.core.arrays[k][SLOT_MAIL]
            for k in ("mail_bq_out", "mail_mix", "mail_bq_mtx", "mail_mtx")}  # fmt: skip
    n_mix = n_out - N_MTX
    banks = [mail["mail_bq_out"][:, :, o] for o in range(n_mix)]
    banks += [mail["mail_bq_mtx"][:, :, m] for m in range(N_MTX)]
    sos_out = [sos(bank) for bank in banks]
    zi_in = [np.zeros((s.shape[0], 2)) for s in sos_in]
    zi_out = [np.zeros((s.shape[0], 2)) for s in sos_out]
    matrix = mail["mail_mix"][:n_in]
    gains = np.ones(n_out)
    x = _signal(block * 64, n_in, sample_rate).astype(np.float64)
    n_blocks = max(50, int(seconds * sample_rate / block))
    times = np.empty(n_blocks)
    for k in range(n_blocks):
        j = k % 64
        t0 = time.perf_counter()
        xb = x[j * block : (j + 1) * block] * 1.41
        ch_out = np.empty_like(xb)
        for c in range(n_in):
            ch_out[:, c], zi_in[c] = signal.sosfilt(sos_in[c], xb[:, c], zi=zi_in[c])
        mixed = np.empty((block, n_out))
        mixed[:, :n_mix] = ch_out @ matrix
        for o in range(n_out):
            if o == n_mix:  # the matrices, from the processed first stage
                mixed[:, n_mix:] = mixed[:, :n_mix] @ mail["mail_mtx"][:, :N_MTX]
            mixed[:, o], zi_out[o] = signal.sosfilt(
                sos_out[o], mixed[:, o], zi=zi_out[o]
            )
            mixed[:, o] *= gains[o]
        times[k] = time.perf_counter() - t0
    mean = float(times.mean() * 1e6)
    return {"block": block, "mean_us": mean,
            "load_pct": 100.0 * mean / (1e6 * block / sample_rate)}  # fmt: skip


_START_PROBE = """
import time, numpy as np
t0 = time.perf_counter()
from livesound.control.offline import BlockEngine
e = BlockEngine(n_in=32, n_bus=16, phys_in=32, phys_out=20, max_block=1024)
e.process(np.zeros((64, 32), np.float32))
print(time.perf_counter() - t0)
"""


def start_times() -> dict[str, float]:
    """Seconds from process start to the first processed block, twice.

    The first start may compile (cold numba cache); the second loads the
    compiled kernels from the cache (warm).
    """
    result = {}
    for label in ("first", "warm"):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _START_PROBE], capture_output=True,
                             text=True, check=True)  # fmt: skip
        result[f"{label}_start_s"] = time.perf_counter() - t0
        result[f"{label}_to_audio_s"] = float(out.stdout.strip().splitlines()[-1])
    return result


def latencies(root: Path) -> list[dict[str, Any]]:
    """Input-to-output latency of real engines (``--jack``) on a JACK
    server's dummy driver at each period in ``LATENCY_BLOCKS``, with each
    limiter lookahead in ``LOOKAHEADS_MS``: the capture and playback buffers
    JACK reports for the engine's connected ports, plus the lookahead (the
    engine's only latency of its own)."""
    rows = []
    for block in LATENCY_BLOCKS:
        name = free_jack_name("livesound-latency")
        server = jackd(name, root / f"jackd-{name}.log", period=block)
        env = {"JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
        try:
            for ms in LOOKAHEADS_MS:
                e = EngineProcess(root / f"{name}-{ms}", "--jack", "livesound",
                                  "--lookahead-ms", str(ms), env=env)  # fmt: skip
                try:
                    answered = wait(e.start().stats, 30)
                    if not answered:
                        raise RuntimeError("an engine on JACK did not start: "
                                           + "".join(e.output[-5:]))  # fmt: skip
                    total = answered["engine"]["latency_ms"]
                finally:
                    e.close()
                lookahead = 1000 * Dims(lookahead_ms=ms).lookahead / 48000
                rows.append({"block": block, "lookahead_ms": lookahead,
                             "device_ms": total - lookahead, "total_ms": total})  # fmt: skip
        finally:
            server.terminate()
            server.wait(10)
    return rows


def run(quick: bool = False, emit=print) -> dict[str, Any]:
    """Every measurement; ``emit`` receives progress lines."""
    seconds = 0.5 if quick else SECONDS
    report: dict[str, Any] = {"machine": machine(), "seconds_per_point": seconds}
    emit(f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores")
    emit(
        "reference show (32 in, 16 buses, main, cue, mono, 6 matrices; every "
        "processor on) at 48 kHz"
    )
    emit(f"{'block':>6} {'mean us':>9} {'p50':>7} {'p99':>7} {'p99.9':>7} {'max':>8} "
         f"{'load %':>7}")  # fmt: skip
    report["blocks"] = []
    for block in BLOCKS:
        r = measure(block=block, seconds=seconds)
        report["blocks"].append(r)
        emit(f"{block:>6} {r['mean_us']:>9.1f} {r['p50_us']:>7.0f} {r['p99_us']:>7.0f} "
             f"{r['p999_us']:>7.0f} {r['max_us']:>8.1f} {r['load_pct']:>7.2f}")  # fmt: skip
    emit("scaling at 64 frames, 16 buses")
    report["scaling"] = []
    for n_in in INPUT_COUNTS:
        r = measure(n_in=n_in, block=64, seconds=seconds)
        report["scaling"].append(r)
        per = r["mean_us"] / (n_in * 16)
        emit(f"{n_in:>6} inputs {r['mean_us']:>9.1f} us  {r['load_pct']:>6.2f} %  "
             f"({per:.3f} us per input x bus)")  # fmt: skip
    r = report["large"] = measure(n_in=LARGE[0], n_bus=LARGE[1], block=64,
                                  seconds=seconds)  # fmt: skip
    emit(f"large show ({LARGE[0]} in, {LARGE[1]} buses, main, cue, mono, matrices; "
         "every processor "
         f"on) at 64 frames: {r['mean_us']:.1f} us mean, p99 {r['p99_us']:.0f} us, "
         f"{r['load_pct']:.1f} % of a core (target {LARGE_TARGET_PCT:g} %)")  # fmt: skip
    # Against a run without cancellers measured alongside, by the median:
    # the mean of a shared machine's run carries its preemptions.
    none, *runs = (
        measure(block=64, seconds=seconds, afc_paths=n) for n in (0, *AFC_PATHS)
    )
    learnt = [measure(block=64, seconds=seconds, afc_paths=n, afc_learnt=True)
              for n in AFC_PATHS]  # fmt: skip
    report["afc"], report["afc_learnt"] = runs, learnt
    for label, rows in (("from nothing", runs), ("learnt", learnt)):
        emit(f"adaptive feedback cancellers ({label}) in the reference show at 64 "
             f"frames (p50 {none['p50_us']:.0f} us without): " + ", ".join(
            f"{n} path{'s' * (n > 1)} p50 {r['p50_us']:.0f} us "
            f"(+{(r['p50_us'] - none['p50_us']) / n:.1f} per path), mean {r['mean_us']:.1f}"
            for n, r in zip(AFC_PATHS, rows, strict=True)))  # fmt: skip
    try:
        sp = scipy_chain(block=64, seconds=seconds)
    except ImportError:
        emit("scipy not installed: comparison skipped")
    else:
        ours = report["blocks"][BLOCKS.index(64)]["mean_us"]
        sp["ratio"] = sp["mean_us"] / ours
        report["scipy"] = sp
        emit(f"scipy.signal chain (filters + mix only) at 64 frames: {sp['mean_us']:.0f} us "
             f"({sp['load_pct']:.1f} %), {sp['ratio']:.1f}x the engine's full chain")  # fmt: skip
    if shutil.which("jackd"):
        emit("input to output, engines on a JACK server's dummy driver (48 kHz; "
             f"X32: {X32_LATENCY_MS} ms)")  # fmt: skip
        emit(f"{'block':>6} {'device ms':>10} {'lookahead':>10} {'total ms':>9}")
        with tempfile.TemporaryDirectory() as root:
            report["latency"] = latencies(Path(root))
        for r in report["latency"]:
            emit(f"{r['block']:>6} {r['device_ms']:>10.2f} {r['lookahead_ms']:>10.2f} "
                 f"{r['total_ms']:>9.2f}")  # fmt: skip
    else:
        emit("input to output latency: skipped (jackd not installed)")
    st = start_times()
    report["start"] = st
    emit(f"start to first audio: {st['first_to_audio_s']:.2f} s (first run), "
         f"{st['warm_to_audio_s']:.2f} s (warm numba cache; "
         f"{st['warm_start_s']:.2f} s with interpreter start)")  # fmt: skip
    return report

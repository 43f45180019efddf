"""``livesound bench console``: what the terminal console costs.

Three measurements, 32 inputs and 16 buses, 30 frames per second, 120x40:

- in process, headless (Textual's test driver, no terminal): CPU per frame
  of the whole refresh (our state-to-widgets pass, Textual's render and
  compositing), idle (nothing changes) and with meters changing at the
  engine's 20 Hz;
- the real thing: a ``livesound engine`` on the virtual stage and
  ``livesound console`` in a tmux terminal, the console process's CPU read
  from /proc while it shows the mixer (meters running) and while it shows
  the scenes list (idle: nothing moves);
- attach to live: from the console starting (in process, on loopback) to
  the moment it has read every value of a running engine's show and its
  keys act.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

from livesound.audio.layout import n_outputs
from livesound.bench.common import free_port
from livesound.console.app import ConsoleApp
from livesound.console.launch import engine_answers
from livesound.osc.meterblob import Reading
from livesound.virtual.demo import DemoApp

FPS = 30.0
SIZE = (120, 40)
SECONDS = 5.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``."""
    from pathlib import Path

    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _headless(meters: bool, seconds: float) -> dict:
    app = DemoApp(fps=FPS)
    rng = np.random.default_rng(0)
    st = app.state
    n, m = st.n_in, n_outputs(st.n_bus)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        bank = app.screen.channels
        frames0, ftime0, drawn0 = app.frames, app.frame_time, bank.frames
        cpu0, t0 = time.process_time(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            if meters:
                # What the engine sends every 50 ms: a new reading per meter.
                peak = rng.uniform(-40.0, -3.0, n + m)
                st.take_meters(Reading(
                    in_peak_db=peak[:n], in_rms_db=peak[:n] - 8,
                    gate_gr_db=np.zeros(n), comp_gr_db=-rng.uniform(0, 6, n),
                    out_peak_db=peak[n:], out_rms_db=peak[n:] - 8,
                    limiter_gr_db=-rng.uniform(0, 3, m),
                ))  # fmt: skip
            await asyncio.sleep(0.05)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        frames = app.frames - frames0
        drawn = bank.frames - drawn0
        ours = app.frame_time - ftime0
    return {
        "frames": frames,
        "drawn_frames": drawn,
        "cpu_ms_per_drawn_frame": 1000 * cpu / drawn if drawn else None,
        "fps": frames / wall,
        "cpu_percent": 100 * cpu / wall,
        "cpu_ms_per_frame": 1000 * cpu / max(1, frames),
        "state_to_widgets_ms_per_frame": 1000 * ours / max(1, frames),
    }


@contextlib.contextmanager
def _engine(port: int):
    proc = subprocess.Popen(
        [sys.executable, "-m", "livesound", "engine", "--virtual", "--quiet",
         "--no-discovery", "--osc-host", "127.0.0.1", "--osc-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not engine_answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the engine did not start")
        yield proc
    finally:
        proc.terminate()
        proc.wait(20)


async def _attach(port: int) -> float:
    """Seconds from a console's start to its first live moment."""
    app = ConsoleApp(port=port, fps=FPS)
    t0 = time.perf_counter()
    async with app.run_test(size=SIZE) as pilot:
        while not app.state.live():
            if time.perf_counter() - t0 > 60:
                raise RuntimeError("the console did not read the show in 60 s")
            await pilot.pause(0.005)
        return time.perf_counter() - t0


def _attach_times(tries: int, emit: Callable[[str], None]) -> dict:
    port = free_port()
    with _engine(port):
        times = [asyncio.run(_attach(port)) for _ in range(tries)]
    out = {"median_s": float(np.median(times)), "max_s": max(times), "tries": tries}
    emit(f"  attach to live (32x16 show, loopback): median {out['median_s']:.2f} s, "
         f"worst {out['max_s']:.2f} s of {tries}")  # fmt: skip
    return out


def _terminal(seconds: float, emit: Callable[[str], None]) -> dict:
    """The console process in tmux against a real engine: its CPU use."""
    port = free_port()
    sock = f"ls-bench-{os.getpid()}"
    state = tempfile.mkdtemp(prefix="livesound-bench-")
    tmux = ["tmux", "-L", sock]
    cmd = (f"exec env LIVESOUND_STATE={shlex.quote(state)} TERM=xterm-256color "
           f"{shlex.quote(sys.executable)} -m livesound console --port {port} "
           f"--fps {FPS:g}")  # fmt: skip
    out = {}
    with _engine(port):
        subprocess.run([*tmux, "new-session", "-d", "-s", "b", "-x", str(SIZE[0]),
                        "-y", str(SIZE[1]), cmd], check=True)  # fmt: skip
        try:
            pid = int(subprocess.run([*tmux, "display-message", "-p", "-t", "b",
                                      "#{pane_pid}"], capture_output=True, text=True,
                                     check=True).stdout)  # fmt: skip
            time.sleep(8.0)  # start, attach, read the whole show
            for label, keys in (("mixer", []), ("sends_on_faders", ["f"]),
                                ("idle_scenes", ["n"])):  # fmt: skip
                for k in keys:
                    subprocess.run([*tmux, "send-keys", "-t", "b", k], check=True)
                time.sleep(1.0)
                c0, t0 = _cpu_seconds(pid), time.perf_counter()
                time.sleep(seconds)
                cpu = _cpu_seconds(pid) - c0
                out[label] = {"cpu_percent": 100 * cpu / (time.perf_counter() - t0)}
                emit(f"  terminal, {label.replace('_', ' ')}: console process CPU "
                     f"{out[label]['cpu_percent']:.1f}% of one core")  # fmt: skip
        finally:
            subprocess.run([*tmux, "kill-server"], check=False)
            shutil.rmtree(state, ignore_errors=True)
    return out


def run(emit: Callable[[str], None] = print, quick: bool = False) -> dict:
    """Measure and report; returns every figure as a dict."""
    seconds = SECONDS / 5 if quick else SECONDS
    emit(f"console: 32 inputs, 16 buses, {FPS:g} fps, {SIZE[0]}x{SIZE[1]}, "
         f"python {sys.version.split()[0]}, {os.cpu_count()} cores")  # fmt: skip
    result: dict = {"fps": FPS, "size": SIZE}
    for label, meters in (("headless_idle", False), ("headless_meters", True)):
        r = asyncio.run(_headless(meters, seconds))
        result[label] = r
        drawn = (f"{r['cpu_ms_per_drawn_frame']:.2f} ms CPU per drawn frame"
                 if r["drawn_frames"] else "nothing changed")  # fmt: skip
        emit(f"  headless, {'meters running' if meters else 'idle'}: "
             f"{r['fps']:.1f} fps, {r['drawn_frames']} frames drawn ({drawn}; "
             f"state to widgets {r['state_to_widgets_ms_per_frame']:.2f} ms a "
             f"tick), {r['cpu_percent']:.1f}% of one core")  # fmt: skip
    result["attach"] = _attach_times(3 if quick else 10, emit)
    if shutil.which("tmux"):
        result["terminal"] = _terminal(seconds * 2, emit)
    else:
        emit("  (no tmux: the terminal measurement is skipped)")
    return result

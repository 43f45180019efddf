"""``livesound bench scenes``: from a recall request to the scene being live.

Two full scenes that differ in some 2,000 values (the reference show of
``livesound bench`` and the default show), recalled in turn:

- in this process, on a running virtual-stage engine (32 inputs, 16 buses):
  the audio blocks from the call to ``recall`` to the block that took the
  GO, and the time until the call returned and saw it taken (the call's
  bookkeeping after the GO included), with the scene made ready ahead (as
  the engine keeps every scene) and cold (read and derived on the request);
- against a real ``livesound engine`` process with 10 OSC clients
  subscribed to the X32 tree and to meters (and a console in a terminal when
  ``tmux`` is there): ``/ls/scene/recall`` over OSC, and the engine's own
  count of audio blocks between the request and the block that took the GO
  (``go`` in ``/ls/stats``; 0 or 1 is the next block boundary).
"""

import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from livesound.audio import layout as L
from livesound.audio.atomics import load_header
from livesound.bench import engine as bench
from livesound.bench.faults import EngineProcess, wait
from livesound.control.offline import BlockEngine
from livesound.enginehost import GIL_SWITCH_S, Engine, EngineConfig
from livesound.osc.client import Client, osc
from livesound.scenes.manager import SceneManager

RECALLS = 40
CLIENTS = 10
NAMES = ("ref", "default")


def _measure(scenes: SceneManager, engine: Engine, ready: bool, n: int) -> dict:
    ms, blocks = [], []
    hdr = engine.core.hdr
    for k in range(n):
        name = NAMES[k % 2]
        if ready:
            scenes.prepare_all()
        time.sleep(0.01)
        t0 = time.perf_counter()
        b0 = int(load_header(hdr, L.H_BLOCKS))
        scenes.recall(name, 0.0)
        gos = engine.mixer.last_go()[0]
        while load_header(hdr, L.H_GO_ACK) < gos:
            time.sleep(0)
        ms.append(1000 * (time.perf_counter() - t0))
        blocks.append(int(hdr[L.H_GO_BLOCK]) - b0)
        engine.mixer.flush()
    return _summary(np.array(ms), np.array(blocks))


def _summary(ms: np.ndarray | None, blocks: np.ndarray) -> dict:
    out = {"recalls": len(blocks), "next_block_pct": 100.0 * float(np.mean(blocks <= 1)),
           "blocks_max": int(blocks.max())}  # fmt: skip
    if ms is not None:
        out |= {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
                "max_ms": float(ms.max())}  # fmt: skip
    return out


def _line(label: str, r: dict) -> str:
    times = (f"call returns in median {r['median_ms']:.2f} ms, p99 {r['p99_ms']:.2f} "
             f"ms, max {r['max_ms']:.2f} ms; live " if "median_ms" in r else "live ")  # fmt: skip
    return (
        f"  {label:>22}: {times}at the next block boundary "
        f"{r['next_block_pct']:.0f} % of {r['recalls']}, "
        f"latest {r['blocks_max']} block(s) after the request"
    )


def _two_scenes(folder: Path) -> int:
    """Scenes ``default`` and ``ref`` in ``folder``; how many values differ."""
    e = BlockEngine(n_in=32, n_bus=16)
    scenes = SceneManager(e.mixer, folder)
    scenes.save("default")
    e.mixer.set_many(bench.reference_show(32, 16))
    scenes.save("ref")
    return len(scenes.recall("default", 0.0))


class _Listener(threading.Thread):
    """An OSC client subscribed to the tree's changes and to meters, reading
    all it is sent, renewing as a tablet app does."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.client, self.stop = Client(port, timeout=0.1), stop
        self.received = 0

    def run(self) -> None:
        renewed = 0.0
        while not self.stop.is_set():
            if time.monotonic() - renewed > 5.0:
                renewed = time.monotonic()
                self.client.send(osc("/xremote"))
                self.client.send(osc("/meters", "/meters/1"))
            with contextlib.suppress(OSError):
                self.client.receive()
                self.received += 1
        self.client.close()


@contextlib.contextmanager
def _console(port: int):
    """A console attached to the engine in a terminal of its own (tmux),
    when tmux is there; yields whether one runs."""
    if shutil.which("tmux") is None:
        yield False
        return
    sock = f"livesound-bench-{port}"
    command = ["tmux", "-L", sock, "new-session", "-d", "-x", "160", "-y", "50",
               f"python3 -m livesound console --port {port}"]  # fmt: skip
    subprocess.run(command, check=False, capture_output=True)
    try:
        yield True
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)


def over_osc(root: Path, n: int) -> dict:
    """Recalls over OSC on a real engine with clients (see the module)."""
    (root / "scenes").mkdir()
    _two_scenes(root / "scenes")
    e = EngineProcess(root, "--inputs", "32", "--buses", "16")
    stop = threading.Event()
    try:
        e.start()
        listeners = [_Listener(e.port, stop) for _ in range(CLIENTS)]
        for listener in listeners:
            listener.start()
        with _console(e.port) as console:
            time.sleep(2.0)  # subscriptions, the console's first read
            blocks, lost = [], 0
            for k in range(n):
                count = e.stats()["engine"]["go"]["count"]
                e.client.send(osc("/ls/scene/recall", NAMES[k % 2]))
                go = wait(lambda c=count: (s := e.stats()) and
                          s["engine"]["go"]["count"] > c and s["engine"]["go"], 10)  # fmt: skip
                if go and go["blocks"] is not None:
                    blocks.append(go["blocks"])
                else:
                    lost += 1
                # The engine makes the recalled scene ready again meanwhile.
                time.sleep(0.3)
        result = _summary(None, np.array(blocks))
        result |= {"clients": CLIENTS, "console": console, "never_landed": lost,
                   "received": sum(li.received for li in listeners)}  # fmt: skip
        return result
    finally:
        stop.set()
        e.close()


def run(emit=print, quick: bool = False) -> dict:
    """Recall to live, ready and cold in this process, and over OSC."""
    n = 10 if quick else RECALLS
    engine = Engine(EngineConfig(virtual=True))
    engine.start()
    report: dict = {"block_ms": 1000 * engine.cfg.block / engine.cfg.sample_rate}
    # As in an engine process (enginehost.run): background derivation hands
    # the interpreter over within GIL_SWITCH_S, not Python's default 5 ms.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_S)
    try:
        with tempfile.TemporaryDirectory() as folder:
            report["values_changed"] = _two_scenes(Path(folder))
            scenes = SceneManager(engine.mixer, Path(folder))
            emit(f"full 32-in/16-bus scenes, {report['values_changed']} values differ; "
                 f"one block is {report['block_ms']:.2f} ms")  # fmt: skip
            for label, ready in (("ready", True), ("cold", False)):
                report[label] = _measure(scenes, engine, ready, n)
                emit(_line(f"{label}, in process", report[label]))
    finally:
        sys.setswitchinterval(switch)
        engine.stop()
    with tempfile.TemporaryDirectory() as root:
        r = report["osc"] = over_osc(Path(root), n)
    with_console = " and a console" if r["console"] else ""
    emit(_line(f"over OSC, {CLIENTS} clients{with_console}", r))
    return report

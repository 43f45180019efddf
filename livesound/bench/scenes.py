"""``livesound bench scenes``: from a recall request to the scene being live.

A running engine (virtual sound card, 32 inputs, 16 buses) alternates
between two full scenes that differ in some 2,000 values (the reference
show of ``livesound bench`` and the default show). The clock runs from the
call to ``recall`` until the audio plane has taken the change set
(``Mixer.flush``), with and without the scene prepared ahead (as the engine
prepares the next cue).
"""

import tempfile
import time
from pathlib import Path

import numpy as np

from livesound.bench import engine as bench
from livesound.enginehost import Engine, EngineConfig
from livesound.scenes.manager import SceneManager

RECALLS = 40


def _measure(
    scenes: SceneManager, engine: Engine, prepared: bool, n: int
) -> np.ndarray:
    times = []
    for k in range(n):
        name = ("ref", "default")[k % 2]
        if prepared:
            scenes.prepare(name)
        time.sleep(0.01)
        t0 = time.perf_counter()
        scenes.recall(name, 0.0)
        engine.mixer.flush()
        times.append(time.perf_counter() - t0)
    return np.array(times) * 1000


def run(emit=print, quick: bool = False) -> dict:
    """Recall to live, prepared and cold, on a running virtual-stage engine."""
    n = 10 if quick else RECALLS
    engine = Engine(EngineConfig(virtual=True))
    engine.start()
    report: dict = {"block_ms": 1000 * engine.cfg.block / engine.cfg.sample_rate}
    try:
        with tempfile.TemporaryDirectory() as folder:
            scenes = SceneManager(engine.mixer, Path(folder))
            scenes.save("default")
            engine.mixer.set_many(bench.reference_show(32, 16))
            scenes.save("ref")
            changed = len(scenes.recall("default", 0.0))
            report["values_changed"] = changed
            emit(f"full 32-in/16-bus scenes, {changed} values differ; one block is "
                 f"{report['block_ms']:.2f} ms")  # fmt: skip
            for label, prepared in (("prepared", True), ("cold", False)):
                ms = _measure(scenes, engine, prepared, n)
                report[label] = {"median_ms": float(np.median(ms)),
                                 "p99_ms": float(np.percentile(ms, 99)),
                                 "max_ms": float(ms.max())}  # fmt: skip
                r = report[label]
                emit(f"  {label:>8} recall to live: median {r['median_ms']:.2f} ms, "
                     f"p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.2f} ms")  # fmt: skip
    finally:
        engine.stop()
    return report

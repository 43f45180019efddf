"""Prepared change sets: invisible until applied, exact when applied."""

import threading

import numpy as np

from livesound.control.offline import BlockEngine


def test_readers_never_see_a_prepared_change_before_apply():
    e = BlockEngine(n_in=8, n_bus=4, phys_in=8, phys_out=8)
    e.mixer.set("/ch/01/mix/fader", 0.0)
    scene = {f"/ch/{c:02d}/mix/fader": -30.0 for c in range(1, 9)}
    stop = threading.Event()
    seen = set()

    def reader() -> None:
        while not stop.is_set():
            seen.add(e.mixer.get("/ch/01/mix/fader"))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(200):
            e.mixer.discard(e.mixer.prepare(scene))
    finally:
        stop.set()
        t.join()
    assert seen == {0.0}


def test_apply_equals_set_many_and_keeps_changes_made_meanwhile():
    a = BlockEngine(n_in=8, n_bus=4, phys_in=8, phys_out=8)
    b = BlockEngine(n_in=8, n_bus=4, phys_in=8, phys_out=8)
    scene = {"/ch/01/mix/fader": -6.0, "/ch/02/eq/2/g": 4.0, "/config/buslink/1-2": 1}
    prepared = a.mixer.prepare(scene)
    a.mixer.set("/ch/03/mix/pan", 40.0)  # made after prepare, not in the scene
    a.mixer.apply(prepared)
    b.mixer.set("/ch/03/mix/pan", 40.0)
    b.mixer.set_many(scene)
    assert a.mixer.snapshot() == b.mixer.snapshot()
    for name in a.mixer._staging:
        np.testing.assert_array_equal(a.core.arrays[name], b.core.arrays[name])

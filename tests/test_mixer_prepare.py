"""Prepared change sets: invisible until applied, exact when applied."""

import threading

import numpy as np

from livesound.audio import layout as L
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


# -- GO: a prepared set lands through a slot of its own -------------------------------
# ``concurrent`` is set as a device thread would have it, without the publisher
# thread: the test writes the mailbox itself, where the publisher would, and
# runs the blocks, so every interleaving below is exact.


def _live(n_in: int = 8) -> BlockEngine:
    e = BlockEngine(n_in=n_in, n_bus=4, phys_in=n_in, phys_out=8)
    e.process(np.zeros((64, n_in), np.float32))  # the first set, taken
    e.mixer.concurrent = True
    return e


def _same_targets(a: BlockEngine, b: BlockEngine) -> None:
    for name in ("mix", "ins", "outs", "bq_in", "bq_out"):
        got, want = a.core.arrays[name], b.core.arrays[name]
        if name in ("mix", "bq_in", "bq_out"):
            got, want = got[L.C_TGT], want[L.C_TGT]
        elif name == "ins":
            got, want = got[: L.N_IN_PARAMS], want[: L.N_IN_PARAMS]
        else:
            got, want = got[: L.N_OUT_PARAMS], want[: L.N_OUT_PARAMS]
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_a_go_lands_at_the_next_block_before_a_stale_mailbox_set():
    e = _live()
    block = np.zeros((64, 8), np.float32)
    e.mixer.set("/ch/01/mix/fader", -10.0)
    e.mixer._write_mailbox()  # derived before the GO, not yet read
    scene = {"/ch/01/mix/fader": -20.0, "/ch/02/eq/2/g": 4.0}
    prepared = e.mixer.prepare(scene)
    e.mixer.set("/ch/03/mix/pan", 40.0)  # made meanwhile, kept
    blocks = int(e.core.hdr[L.H_BLOCKS])
    e.mixer.apply(prepared)
    e.process(block)
    hdr = e.core.hdr
    assert hdr[L.H_GO_ACK] == hdr[L.H_GO] == 1
    assert hdr[L.H_GO_BLOCK] == blocks  # the very next block
    assert hdr[L.H_ACK] == hdr[L.H_SEQ]  # the stale set was passed over
    want = BlockEngine(n_in=8, n_bus=4, phys_in=8, phys_out=8)
    want.mixer.set_many({"/ch/01/mix/fader": -10.0, "/ch/03/mix/pan": 40.0})
    want.mixer.set_many(scene)
    want.process(block)
    _same_targets(e, want)
    e.mixer._write_mailbox()  # what the publisher sends after a GO
    e.process(block)
    assert hdr[L.H_ACK] == hdr[L.H_SEQ]
    _same_targets(e, want)


def test_a_mailbox_set_derived_after_an_unseen_go_waits_for_it():
    e = _live()
    block = np.zeros((64, 8), np.float32)
    e.mixer.set("/ch/01/mix/fader", -3.0)
    hdr = e.core.hdr
    e.mixer._write_mailbox()
    hdr[L.H_MAIL_GO] = 1  # as if a GO were published but not yet visible
    ack = int(hdr[L.H_ACK])
    e.process(block)
    assert hdr[L.H_ACK] == ack  # left for the block after the GO
    hdr[L.H_MAIL_GO] = 0
    e.process(block)
    assert hdr[L.H_ACK] == hdr[L.H_SEQ]


def test_two_gos_in_one_block_land_the_second():
    e = _live()
    block = np.zeros((64, 8), np.float32)
    first = e.mixer.prepare({"/ch/01/mix/fader": -20.0})
    second = e.mixer.prepare({"/ch/01/mix/fader": -5.0, "/ch/02/mix/fader": -8.0})
    e.mixer.apply(first)
    e.mixer.apply(second)  # the GO slot is still unread: through the mailbox
    assert e.core.hdr[L.H_GO] == 1
    e.mixer._write_mailbox()
    e.process(block)
    want = BlockEngine(n_in=8, n_bus=4, phys_in=8, phys_out=8)
    want.mixer.set_many({"/ch/01/mix/fader": -5.0, "/ch/02/mix/fader": -8.0})
    want.process(block)
    _same_targets(e, want)


def test_sets_prepared_together_stay_exact_whichever_lands_first():
    # Every scene of a folder is kept prepared: one applied must not leave
    # another one holding values from before it.
    a = BlockEngine(n_in=8, n_bus=4, phys_in=8, phys_out=8)
    first = {"/ch/01/mix/fader": -6.0, "/ch/02/eq/2/g": 4.0, "/ch/05/mix/pan": 30.0}
    second = {"/ch/01/mix/fader": -12.0, "/ch/03/mix/on": 0}
    p1, p2 = a.mixer.prepare(first), a.mixer.prepare(second)
    a.mixer.apply(p1)
    a.mixer.set("/ch/04/mix/fader", -3.0)
    a.mixer.apply(p2)
    b = BlockEngine(n_in=8, n_bus=4, phys_in=8, phys_out=8)
    b.mixer.set_many(first)
    b.mixer.set("/ch/04/mix/fader", -3.0)
    b.mixer.set_many(second)
    assert a.mixer.snapshot() == b.mixer.snapshot()
    for name in a.mixer._staging:
        np.testing.assert_array_equal(a.core.arrays[name], b.core.arrays[name])

"""The Mixer: the one API that changes the show's state.

Every surface (OSC, console, scenes, CLI) calls ``Mixer.set``/``set_many``.
The Mixer validates against the registry, recomputes only what the change
touches into staging arrays, publishes the whole parameter set to the audio
plane as one change set, and tells subscribers what changed.
"""

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livesound.audio import layout as L
from livesound.audio.atomics import bump_sequence, load_header
from livesound.control import derive
from livesound.control.events import LOCAL, Change, Source, Subscriber
from livesound.control.registry import Param, Registry, Target, ch_prefix

# What a change set must derive again: per target, the strips (inputs or
# outputs, by index) it touched; a global target has no strips.
Dirty = dict[Target, set[int]]

STALL_S = 0.25  # the audio plane has not taken a change set for this long


class EngineStalled(RuntimeError):
    """The audio plane did not take the previous change set in time."""


def _publish_sequence(hdr: np.ndarray, counter: int = L.H_SEQ) -> None:
    bump_sequence(hdr, counter)


def _mark(dirty: Dirty, params: Iterable[Param]) -> Dirty:
    """Add what changing ``params`` makes dirty to ``dirty``; returns it."""
    for p in params:
        if p.target is not None:
            dirty.setdefault(p.target, set()).add(p.strip.index)
    return dirty


@dataclass(eq=False)
class Prepared:
    """A derived, not yet published change set (see ``Mixer.prepare``)."""

    changes: dict[str, Any]
    staging: dict[str, np.ndarray]
    touched: set[str] = field(default_factory=set)  # set live since prepare


class Mixer:
    """Validated, published, observable show state."""

    def __init__(
        self, memory: L.EngineMemory, registry: Registry | None = None
    ) -> None:
        d = memory.dims
        self.registry = registry or Registry(d.n_in, d.n_bus, L.N_NOTCH)
        self.topology = derive.Topology(d.n_in, d.n_bus)
        self.sample_rate = float(d.sample_rate)
        self.memory = memory
        self.values: dict[str, Any] = self.registry.defaults()
        self._staging = {k: memory.arrays[k][L.SLOT_MAIL].copy() for k in L.MAILBOX}
        self._gos = 0  # scene GOs published (see ``layout``: SLOT_GO)
        self._last_go = (0, 0)  # the last GO's number, and blocks run before it
        self._subscribers: list[Subscriber] = []
        self._lock = threading.RLock()
        self._dirty: Dirty = {}
        self._prepared: list[Prepared] = []
        # True while a device thread runs the callback: then the mailbox may
        # only be written after the audio plane took the previous set, which
        # the publisher thread waits for so that no caller has to.
        self.concurrent = False
        self._wake = threading.Event()
        self._publisher: threading.Thread | None = None
        self.stalled = False
        self.changes = 0  # sets applied since start (autosave watches this)
        self._dirty = {Target.ALL: set()}
        self._flush()

    # -- reading ------------------------------------------------------------

    def get(self, address: str) -> Any:
        """Current value of a parameter (ParamError if unknown)."""
        self.registry[address]
        return self.values[address]

    def snapshot(self) -> dict[str, Any]:
        """A copy of every value."""
        with self._lock:
            return dict(self.values)

    # -- writing ------------------------------------------------------------

    def set(self, address: str, value: Any, *, source: Source = LOCAL) -> Any:
        """Validate and apply one change; returns the stored value."""
        return self.set_many({address: value}, source=source)[address]

    def set_many(self, changes: Mapping[str, Any], *, source: Source = LOCAL) -> dict:
        """Apply several changes atomically: all land in the same audio block.

        Every value is validated first; if any is refused nothing changes.
        """
        checked = {a: self.registry[a].validate(v) for a, v in changes.items()}
        with self._lock:
            events = [Change(a, self.values[a], v, source) for a, v in checked.items()]
            for address, value in checked.items():
                self.values[address] = value
            _mark(self._dirty, (self.registry[a] for a in checked))
            for prepared in self._prepared:
                prepared.touched.update(checked)
            self.changes += len(checked)
            self._flush()
        self._notify(events)
        return checked

    def _notify(self, events: list[Change]) -> None:
        for event in events:
            for fn in list(self._subscribers):
                fn(event)

    def prepare(self, changes: Mapping[str, Any]) -> "Prepared":
        """Validate and derive a big change (a scene) ahead of time.

        ``apply`` then lands it in the next audio block without the
        derivation cost; changes made in between are folded in at apply.
        """
        checked = {a: self.registry[a].validate(v) for a, v in changes.items()}
        with self._lock:
            # Derived into copies: the live values stay what every reader
            # (OSC queries, the console) sees until ``apply``.
            values = {**self.values, **checked}
            staging = {k: v.copy() for k, v in self._staging.items()}
            prepared = Prepared(checked, staging)
            self._prepared.append(prepared)
        # Outside the lock, so that live changes and GOs never wait for it;
        # a change made meanwhile is in ``touched``, derived again at apply.
        self._derive(_mark({}, (self.registry[a] for a in checked)), values, staging)
        return prepared

    def apply(self, prepared: "Prepared", *, source: Source = LOCAL) -> dict:
        """Land a prepared change set (see ``prepare``) in one change set;
        returns (and tells subscribers) what it actually changed.

        While audio runs it goes to the audio plane as a GO, from this
        thread: it lands at the next block boundary, never behind the
        mailbox or the publisher thread."""
        blocks = int(load_header(self.memory.hdr, L.H_BLOCKS))
        with self._lock:
            if prepared in self._prepared:
                self._prepared.remove(prepared)
            # Live changes since prepare() that the prepared set does not
            # override stay as they are: derived again, the rest was derived
            # from the values they had then, which are the values now.
            kept = [a for a in prepared.touched if a not in prepared.changes]
            for other in self._prepared:  # as for any change: theirs are stale
                other.touched.update(prepared.changes)
            before = self.values
            self.values = {**self.values, **prepared.changes}
            self._staging = prepared.staging
            _mark(self._dirty, (self.registry[a] for a in kept))
            self.changes += len(prepared.changes)
            if self._dirty:
                self._derive(self._dirty)
                self._dirty = {}
            if self.concurrent and self._go_free():
                self._write_go()
                self._last_go = (self._gos, blocks)
            self._publish()  # the mailbox follows, derived after the GO
        changed = {a: v for a, v in prepared.changes.items() if before[a] != v}
        self._notify([Change(a, before[a], v, source) for a, v in changed.items()])
        return changed

    def discard(self, prepared: "Prepared") -> None:
        """Forget a prepared change set that will not be applied."""
        with self._lock:
            if prepared in self._prepared:
                self._prepared.remove(prepared)

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call ``fn(change)`` after every change (a ``Change``: address, old,
        new, source); returns the function that unsubscribes."""
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    # -- publication ----------------------------------------------------------

    def _flush(self) -> None:
        if not self._dirty:
            return
        self._derive(self._dirty)
        self._dirty = {}
        self._publish()

    def _derive(self, dirty: Dirty, values: dict | None = None,
                staging: dict | None = None) -> None:  # fmt: skip
        """Recompute what ``dirty`` touches into ``staging`` from ``values``
        (the live ones unless given)."""
        v = self.values if values is None else values
        st = self._staging if staging is None else staging
        sr, topo = self.sample_rate, self.topology
        everything = Target.ALL in dirty
        n_in, n_out = topo.n_in, topo.n_out
        links = everything or Target.LINKS in dirty
        rows = everything or links or Target.ROWS in dirty
        ins = range(n_in)
        outs = range(n_out)
        for c in ins if everything else dirty.get(Target.INPUT, ()):
            for slot, value in derive.input_fields(v, c, sr).items():
                st["mail_ins"][slot, c] = value
        for c in ins if everything else dirty.get(Target.HPF, ()):
            st["mail_bq_in"][: L.N_HPF, :, c] = derive.hpf_coeffs(v, c, sr)
        for c in ins if everything else dirty.get(Target.IN_EQ, ()):
            eq = derive.eq_coeffs(v, ch_prefix(c), L.N_IN_EQ, sr)
            st["mail_bq_in"][L.N_HPF :, :, c] = eq
        # A DCA or mute group acts through its members' gains: it re-derives
        # their rows and outputs (with the new values: a member added in the
        # same change set is one already).
        rows_touched = set(dirty.get(Target.ROW, ()))
        group_outs: set[int] = set()
        for target in (Target.DCA, Target.MUTE_GROUP):
            for k in dirty.get(target, ()):
                member_ins, member_outs = topo.members(v, target, k)
                rows_touched.update(member_ins)
                group_outs.update(member_outs)
        # A linked pair shares its odd bus's settings: touching either side
        # (or the link itself) re-derives both.
        touched = set(outs) if links else set()
        for target in (Target.OUTPUT, Target.OUT_EQ, Target.NOTCH):
            for o in dirty.get(target, ()):
                touched.update((o, topo.partner(v, o)))
        touched.discard(-1)
        gains = set(touched)  # a group only moves gains: no filters to design
        for o in group_outs:
            gains.update((o, topo.partner(v, o)))
        gains.discard(-1)
        for o in sorted(gains):
            for slot, value in topo.output_fields(v, o, sr).items():
                st["mail_outs"][slot, o] = value
        for o in sorted(touched):
            if o in (topo.cue_l, topo.cue_r):
                continue
            # The matrices have a filter bank of their own (the second stage).
            bank, lane = ("mail_bq_mtx", o - topo.matrices.start) if (
                o in topo.matrices) else ("mail_bq_out", o)  # fmt: skip
            x32, extra = topo.prefixes(v, o)
            st[bank][: L.N_OUT_EQ, :, lane] = derive.eq_coeffs(v, x32, L.N_OUT_EQ, sr)
            st[bank][L.N_OUT_EQ :, :, lane] = derive.notch_coeffs(
                v, extra, L.N_NOTCH, sr
            )
        columns = topo.matrices if links else dirty.get(Target.MTX, ())
        for o in columns:
            m = o - topo.matrices.start
            st["mail_mtx"][:, m] = topo.matrix_column(v, m)
        soloing = topo.soloing(v)
        for c in ins if rows else rows_touched:
            st["mail_mix"][c] = topo.matrix_row(v, c, soloing)
        if rows or Target.OSCILLATOR in dirty:
            row, kind, freq = topo.oscillator(v)
            st["mail_mix"][n_in] = row
            st["mail_glob"][L.G_OSC_TYPE] = kind
            st["mail_glob"][L.G_OSC_FREQ] = freq
        st["mail_glob"][L.G_CUE_MAIN] = 0.0 if soloing else 1.0

    def _publish(self) -> None:
        if self.concurrent:
            self._wake.set()
        else:
            self._write_mailbox()

    def _write_mailbox(self) -> None:
        self._write_slot(L.SLOT_MAIL)
        self.memory.hdr[L.H_MAIL_GO] = self._gos
        _publish_sequence(self.memory.hdr)

    def _write_go(self) -> None:
        self._write_slot(L.SLOT_GO)
        self._gos += 1
        _publish_sequence(self.memory.hdr, L.H_GO)

    def _write_slot(self, slot: int) -> None:
        arrays = self.memory.arrays
        for name, staged in self._staging.items():
            np.copyto(arrays[name][slot], staged)

    def last_go(self) -> tuple[int, int | None]:
        """GOs so far, and the audio blocks begun between the last one's
        request and the block that took it: 0 or 1 is the next block
        boundary (live within one block period of the request); None until
        it lands."""
        gos, blocks = self._last_go
        hdr = self.memory.hdr
        if gos == 0 or load_header(hdr, L.H_GO_ACK) < gos:
            return gos, None
        return gos, int(hdr[L.H_GO_BLOCK]) - blocks

    def _go_free(self) -> bool:
        """Whether the audio plane took the last GO (two GOs within one
        block: the second goes through the mailbox)."""
        return load_header(self.memory.hdr, L.H_GO_ACK) == self._gos

    def start_publishing(self) -> None:
        """Audio now runs in another thread: publish from a thread of our own.

        A change then returns at once; the publisher hands the whole
        parameter set to the audio plane as soon as it has taken the
        previous one, so changes made meanwhile coalesce into one set and
        nothing waits on the audio clock but the publisher.
        """
        self.concurrent = True
        self._publisher = threading.Thread(target=self._publish_loop,
                                           name="mixer-publisher", daemon=True)  # fmt: skip
        self._publisher.start()

    def stop_publishing(self) -> None:
        """Audio has stopped: publish directly again."""
        self.concurrent = False
        self._wake.set()
        if self._publisher is not None:
            self._publisher.join(timeout=2)
            self._publisher = None
        with self._lock:
            self._write_mailbox()

    def _mailbox_free(self) -> bool:
        hdr = self.memory.hdr
        return hdr[L.H_SEQ] == hdr[L.H_ACK]

    def _publish_loop(self) -> None:
        while self.concurrent:
            self._wake.wait()
            self._wake.clear()
            waited = 0.0
            while self.concurrent and not self._mailbox_free():
                time.sleep(0.0001)
                waited += 0.0001
                self.stalled = waited > STALL_S
            if not self.concurrent:
                return
            self.stalled = False
            with self._lock:
                self._write_mailbox()

    def flush(self, timeout: float = 1.0) -> None:
        """Wait until every change made so far is live in the audio plane."""
        deadline = time.monotonic() + timeout
        while self.concurrent and (
            self._wake.is_set() or not self._mailbox_free() or not self._go_free()
        ):
            if time.monotonic() > deadline:
                raise EngineStalled("the audio engine stopped taking changes")
            time.sleep(0.0002)

"""Notch decisions for one output: where, how deep, how wide, how long.

The planner turns confirmed howls into notch settings the way an engineer
with a graphic EQ would, only faster:

- a howl nobody covers gets a new notch, shallow (the mode's first depth)
  and as narrow as the mode allows;
- after ``verify_s`` the notch is checked: if the peak is still there, the
  notch is moved onto it (the estimate was off), else deepened by a step
  (up to the output's maximum depth), else widened (up to 1/5 octave);
- once its howl has stopped, a notch is deepened by one more step, once:
  a notch that only just stops a howl leaves the loop at the edge, and an
  engineer ringing out a wedge stops a few dB below feedback (``margin``);
- a live notch whose howl has not been seen for ``release_s`` is released;
  fixed notches (pinned by the engineer or placed during a ring-out) stay;
- with every slot in use the oldest live notch (its howl heard longest ago)
  is reused, never a fixed one.

Times are on the audio clock (seconds of analysed audio), so a closed-loop
simulation and a live show take the same decisions.
"""

import math
from dataclasses import dataclass, replace

from livesound.feedback.detect import Candidate, Howl, Settings

MIN_WIDTH_OCT = 1 / 80
MAX_WIDTH_OCT = 1 / 5


@dataclass(frozen=True)
class Mode:
    """How one suppressor mode detects and notches."""

    detector: Settings
    first_depth_db: float
    step_db: float
    width_oct: float  # a new notch's width
    max_width_oct: float  # how far widening and merging may go
    fixed: bool = False


MODES: dict[str, Mode] = {
    # Speech has no held pure tones: trust the detector sooner (slow howls
    # too), cut deeper and wider. (Narrow, shallow first cuts were measured:
    # pushed 10 dB, the 16 slots filled before the loop was stable.)
    "speech": Mode(
        Settings(papr_db=20.0, phpr_db=15.0, pnpr_db=10.0, min_growth_db_s=3.0,
                 ring_s=2.0),
        first_depth_db=-9.0, step_db=3.0, width_oct=MAX_WIDTH_OCT, max_width_oct=MAX_WIDTH_OCT,
    ),
    # Music holds notes and swells into them: only howls that keep growing
    # longer than a note's attack, narrower cuts that spare the notes. Its
    # spectrum falls steeply, and bass sets its mean: a howl over quiet
    # highs is judged against the band around it.
    "music": Mode(
        Settings(history=12, phpr_db=30.0, min_growth_db_s=6.0, confirm_frames=8,
                 local_oct=1.0),
        first_depth_db=-6.0, step_db=3.0, width_oct=1 / 10, max_width_oct=1 / 6,
    ),
    # Ringing out: the engineer raises gain on purpose, every howl is real.
    "ringout": Mode(
        Settings(papr_db=15.0, phpr_db=12.0, pnpr_db=8.0, min_growth_db_s=3.0,
                 ring_s=1.0),
        first_depth_db=-6.0, step_db=3.0, width_oct=1 / 20, max_width_oct=1 / 8,
        fixed=True,
    ),
}  # fmt: skip
# Behind adaptive feedback cancellers (``livesound.audio.afc``) the notches
# are a safety net that must not fight them: only sure howls, as in music
# (a singer's held note is no howl either).
MODES["afc"] = MODES["music"]


@dataclass
class Notch:
    """One slot of an output's notch bank."""

    freq_hz: float
    depth_db: float
    width_oct: float
    fixed: bool = False
    placed_s: float = 0.0
    seen_s: float = 0.0  # the last time its howl was there
    verify_s: float = math.inf  # when to check the last change worked
    level_db: float = 0.0  # the peak's level when the notch last changed
    margin: bool = False  # deepened once more after its howl stopped

    def covers(self, freq_hz: float) -> bool:
        """Whether ``freq_hz`` lies in the notch's cut (within half its width)."""
        return (
            abs(math.log2(freq_hz / self.freq_hz))
            <= max(self.width_oct, MIN_WIDTH_OCT) / 2
        )


@dataclass
class Action:
    """What the planner did, for the event log."""

    time_s: float
    slot: int
    what: str  # place, merge, move, deepen, widen, hold, release, reuse, margin
    notch: Notch | None


class NotchPlanner:
    """The notch bank of one output, and the decisions that fill it."""

    def __init__(self, slots: int = 16, verify_s: float = 0.1) -> None:
        self.slots: list[Notch | None] = [None] * slots
        self.verify_s = verify_s
        self.max_depth_db = -18.0
        self.release_s = 60.0

    def update(self, now: float, howls: list[Howl], latest: list[Candidate],
               mode: Mode) -> list[Action]:  # fmt: skip
        """One analysis frame's decisions; returns what changed."""
        actions: list[Action] = []
        for howl in howls:
            slot = self._covering(howl.freq_hz)
            if slot is None:
                merged = self._merge(now, howl, mode)
                actions += [merged] if merged else self._place(now, howl, mode)
                continue
            notch = self.slots[slot]
            notch.seen_s = now
            if now >= notch.verify_s or notch.verify_s == math.inf:
                actions.append(self._strengthen(now, slot, howl.freq_hz,
                                                howl.level_db, mode))  # fmt: skip
        for slot, notch in enumerate(self.slots):
            if notch is None or now < notch.verify_s:
                continue
            peak = self._still_there(notch, latest, mode.detector)
            if peak is None and not notch.margin and notch.depth_db > self.max_depth_db:
                # It worked, just: one step more, for margin.
                notch.margin, notch.verify_s = True, math.inf
                notch.depth_db = max(notch.depth_db - mode.step_db, self.max_depth_db)
                actions.append(Action(now, slot, "margin", replace(notch)))
            elif peak is None:
                notch.verify_s = math.inf  # it worked
            else:
                notch.seen_s = now
                actions.append(self._strengthen(now, slot, peak.freq_hz,
                                                peak.level_db, mode))  # fmt: skip
        for slot, notch in enumerate(self.slots):
            if notch and not notch.fixed and now - notch.seen_s >= self.release_s:
                self.slots[slot] = None
                actions.append(Action(now, slot, "release", None))
        return actions

    def _covering(self, freq_hz: float) -> int | None:
        best, best_distance = None, math.inf
        for slot, notch in enumerate(self.slots):
            if notch is not None and notch.covers(freq_hz):
                distance = abs(math.log2(freq_hz / notch.freq_hz))
                if distance < best_distance:
                    best, best_distance = slot, distance
        return best

    def _merge(self, now: float, howl: Howl, mode: Mode) -> Action | None:
        """Widen the nearest notch over a new howl beside it, if it stays narrow.

        Rooms ring at clusters of close frequencies (wedge and mic peaks); one
        wider cut over a cluster spends one slot where separate notches would
        spend many. With every slot taken, a merge up to 1/5 octave beats
        reusing a slot whose howl would come straight back.
        """
        f = math.log2(howl.freq_hz)
        full = all(n is not None for n in self.slots)
        widest = MAX_WIDTH_OCT if full else mode.max_width_oct
        best = None
        for slot, n in enumerate(self.slots):
            # The engineer's fixed notches stay where they were put.
            if n is None or (n.fixed and not mode.fixed):
                continue
            c, half = math.log2(n.freq_hz), n.width_oct / 2
            lo, hi = (
                min(c - half, f - mode.width_oct / 4),
                max(c + half, f + mode.width_oct / 4),
            )
            if hi - lo <= widest and (best is None or hi - lo < best[0]):
                best = (hi - lo, slot, lo, hi)
        if best is None:
            return None
        _, slot, lo, hi = best
        n = self.slots[slot]
        n.freq_hz, n.width_oct = 2 ** ((lo + hi) / 2), hi - lo
        n.seen_s, n.verify_s, n.level_db = now, now + self.verify_s, howl.level_db
        n.fixed = n.fixed or mode.fixed
        return Action(now, slot, "merge", replace(n))

    def _place(self, now: float, howl: Howl, mode: Mode) -> list[Action]:
        what = "place"
        free = [s for s, n in enumerate(self.slots) if n is None]
        if free:
            slot = free[0]
        else:
            live = [s for s, n in enumerate(self.slots) if not n.fixed]
            if not live:
                return []  # every slot is fixed: the engineer's call
            # The oldest is the one whose howl was heard longest ago.
            slot = min(live, key=lambda s: self.slots[s].seen_s)
            what = "reuse"
        depth = max(mode.first_depth_db, self.max_depth_db)
        self.slots[slot] = Notch(howl.freq_hz, depth, mode.width_oct, mode.fixed,
                                 placed_s=now, seen_s=now,
                                 verify_s=now + self.verify_s,
                                 level_db=howl.level_db)  # fmt: skip
        return [Action(now, slot, what, replace(self.slots[slot]))]

    def _strengthen(self, now: float, slot: int, freq_hz: float, level_db: float,
                    mode: Mode) -> Action:  # fmt: skip
        """The notch did not stop its howl: move, deepen or widen it."""
        n = self.slots[slot]
        offset = abs(math.log2(freq_hz / n.freq_hz))
        if offset > n.width_oct / 4 and now - n.placed_s <= 2 * self.verify_s:
            # A young notch off its howl: the first estimate was off.
            n.freq_hz, what = freq_hz, "move"
        elif n.depth_db > self.max_depth_db:
            n.depth_db, what = (
                max(n.depth_db - mode.step_db, self.max_depth_db),
                "deepen",
            )
        elif n.width_oct < mode.max_width_oct:
            n.width_oct, what = min(n.width_oct * 1.5, mode.max_width_oct), "widen"
        else:
            what = "hold"
        n.fixed = n.fixed or mode.fixed
        n.verify_s, n.level_db = now + self.verify_s, level_db
        return Action(now, slot, what, replace(n))

    @staticmethod
    def _still_there(
        notch: Notch, latest: list[Candidate], s: Settings
    ) -> Candidate | None:
        """The peak a notch was placed on, if it is still standing out as a howl."""
        for c in latest:
            if (
                notch.covers(c.freq_hz)
                # A note under a notch drops by the cut and stays; a howl
                # the notch did not stop holds its level or grows.
                and c.level_db > notch.level_db - 1.0
                and c.towers(s)
                and c.pnpr_db >= s.pnpr_db
            ):
                return c
        return None

    def clear(self) -> list[int]:
        """Remove every live notch; returns the slots it emptied."""
        gone = [s for s, n in enumerate(self.slots) if n is not None and not n.fixed]
        for s in gone:
            self.slots[s] = None
        return gone

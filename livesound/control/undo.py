"""Undo of the last changes made from a surface (console, tablet, X32 app).

A fader drag arrives as dozens of messages: consecutive changes to one
address from one surface within ``gesture_s`` are one step, and undoing it
puts back the value from before the drag (the ``old`` of the drag's first
change). Scenes, fades and the feedback suppressor are not surfaces: their
changes are not steps (a scene is undone by recalling another).
"""

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livesound.control.events import UNDO, Change, Source
from livesound.control.mixer import Mixer


@dataclass
class Step:
    address: str
    before: Any
    source: Source
    at: float


class UndoJournal:
    """The last ``depth`` steps made from surfaces, newest last."""

    def __init__(self, mixer: Mixer, depth: int = 100, gesture_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.mixer, self.gesture_s, self.clock = mixer, gesture_s, clock
        self.steps: deque[Step] = deque(maxlen=depth)
        self._lock = threading.Lock()
        mixer.subscribe(self._changed)

    def _changed(self, change: Change) -> None:
        if not change.source.from_surface or change.old == change.new:
            return
        address, source = change.address, change.source
        with self._lock:
            now = self.clock()
            last = self.steps[-1] if self.steps else None
            if (
                last
                and (last.address, last.source) == (address, source)
                and (now - last.at < self.gesture_s)
            ):
                last.at = now  # the same gesture goes on
            else:
                self.steps.append(Step(address, change.old, source, now))

    def undo(self) -> tuple[str, Any]:
        """Take the newest step back; returns (address, restored value)."""
        with self._lock:
            if not self.steps:
                raise ValueError("nothing to undo")
            step = self.steps.pop()
        self.mixer.set(step.address, step.before, source=UNDO)
        return step.address, step.before

"""Undo of the last changes made from a surface (console, tablet, X32 app).

A fader drag arrives as dozens of messages: consecutive changes to one
address from one surface within ``gesture_s`` are one step, and undoing it
puts back the value from before the drag (the ``old`` of the drag's first
change). Scenes, fades and the feedback suppressor are not surfaces: their
changes are not steps. A scene recall (or a restored autosave) is a
barrier: undo never reaches back past it into the show before, where a
step would bring back one value of another song (a scene is undone by
recalling another).
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

    def barrier(self) -> None:
        """A scene was recalled (or an autosave restored): forget every step."""
        with self._lock:
            self.steps.clear()

    def peek(self) -> tuple[str, Any, Any] | None:
        """The newest step: (address, value now, value it would go back to)."""
        with self._lock:
            if not self.steps:
                return None
            step = self.steps[-1]
        return step.address, self.mixer.get(step.address), step.before

    def undo(self, expected: str | None = None) -> tuple[str, Any]:
        """Take the newest step back; returns (address, restored value).

        ``expected``: the address a surface showed its user (after
        :meth:`peek`); if the newest step is another one by now, nothing is
        taken back.
        """
        with self._lock:
            if not self.steps:
                raise ValueError("nothing to undo")
            if expected is not None and self.steps[-1].address != expected:
                raise ValueError(
                    f"the newest change is now {self.steps[-1].address}; ask again"
                )
            step = self.steps.pop()
        self.mixer.set(step.address, step.before, source=UNDO)
        return step.address, step.before

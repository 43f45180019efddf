"""Change events: what the Mixer tells its subscribers after every change.

A change is one typed record, ``Change(address, old, new, source)``; the
source says who made it, so a surface can skip echoing a change back to
where it came from, undo can journal only what an engineer did, and the
feedback suppressor can tell its own notches from an engineer's edit.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Origin(Enum):
    """Who changes the show."""

    LOCAL = "local"  # the engine itself, a script, the command line
    SURFACE = "surface"  # an OSC client: the console, a tablet, an X32 app
    SCENE = "scene"  # scene recalls, fades and restores
    SUPPRESSOR = "suppressor"  # the feedback suppressor's notches
    UNDO = "undo"  # the undo journal putting a value back


@dataclass(frozen=True)
class Source:
    """Where a change came from; a surface also by its ``(host, port)``."""

    origin: Origin
    peer: tuple[str, int] | None = None

    @classmethod
    def surface(cls, peer: tuple[str, int]) -> "Source":
        """The OSC client at ``peer``."""
        return cls(Origin.SURFACE, (peer[0], peer[1]))

    @property
    def from_surface(self) -> bool:
        return self.origin is Origin.SURFACE


LOCAL = Source(Origin.LOCAL)
SCENE = Source(Origin.SCENE)
SUPPRESSOR = Source(Origin.SUPPRESSOR)
UNDO = Source(Origin.UNDO)


@dataclass(frozen=True)
class Change:
    """One parameter changed from ``old`` to ``new`` (engineering units)."""

    address: str
    old: Any
    new: Any
    source: Source


Subscriber = Callable[[Change], None]

"""livesound's Python API, in one stable place: scripts, notebooks and
evaluations import from here, whatever moves underneath.

- ``BlockEngine``: the engine without a device, fed block by block
  (``out = engine.process(inp)``); its ``mixer`` is the ``Mixer``.
- ``Mixer``: ``set``/``set_many``/``get`` on the parameter tree;
  ``subscribe(fn)`` calls ``fn`` with a ``Change`` (address, old, new,
  ``Source``) after every change.
- ``Suppressor``: the feedback suppressor on an engine's outputs.
- ``FeedbackLoop``, ``Path``, ``stage_path``, ``room_ir``: closed acoustic
  loops around a ``BlockEngine`` (the virtual stage's simulator);
  ``AfcLoop``: the same with an adaptive feedback canceller on every path.
- ``engine_response``, ``notch_bank_response``, ``margin_db``: for
  evaluating a loop, the engine's measured forward response, a notch bank's
  response, and how many dB more gain a loop takes before it howls;
  ``image_source_ir``: a shoebox room's response by image sources.
"""

from livesound.control.events import Change, Source
from livesound.control.mixer import Mixer
from livesound.control.offline import BlockEngine
from livesound.feedback.suppressor import Suppressor
from livesound.virtual.sim import (
    AfcLoop,
    FeedbackLoop,
    Path,
    engine_response,
    image_source_ir,
    margin_db,
    notch_bank_response,
    room_ir,
    stage_path,
)

__all__ = [
    "AfcLoop",
    "BlockEngine",
    "Change",
    "FeedbackLoop",
    "Mixer",
    "Path",
    "Source",
    "Suppressor",
    "engine_response",
    "image_source_ir",
    "margin_db",
    "notch_bank_response",
    "room_ir",
    "stage_path",
]

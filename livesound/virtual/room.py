"""The virtual stage's acoustics: the vocal mics hear the wedges and the mains.

Pushing the vocal wedge on the virtual stage really howls, as on a real
stage, and the feedback suppressor really catches it. At the virtual show's
levels every loop is stable with at least 6 dB to spare; the lead vocal's
send to its wedge is the first to ring (about +6 dB).
"""

from dataclasses import dataclass

import numpy as np

from livesound.virtual.sim import sparse_path, stage_path
from livesound.virtual.stage import STAGE_CHANNELS

# The mic's sensitivity and preamp, and a cardioid's rejection of the wedge
# behind it: how a loudspeaker's dBFS arrives back in the mic's dBFS at 1 m.
COUPLING_DB = -16.0
LEAD, BACK = STAGE_CHANNELS.index("Lead vox"), STAGE_CHANNELS.index("Back vox")


@dataclass(frozen=True)
class StagePath:
    """A loudspeaker (bus number, or "L"/"R" of the main) heard by a stage mic."""

    speaker: int | str
    mic: int  # stage channel
    distance_m: float
    t60_s: float
    drr_db: float
    seed: int


STAGE_PATHS = (
    StagePath(1, LEAD, 1.2, 0.9, 0.0, 11),  # the vocal wedge, right below the singer
    StagePath(1, BACK, 2.5, 0.9, -2.0, 12),
    StagePath(3, BACK, 1.5, 0.9, 0.0, 13),  # the keys wedge beside the backing singer
    StagePath("L", LEAD, 8.0, 0.9, -6.0, 14),  # the mains, from the front
    StagePath("R", LEAD, 8.0, 0.9, -6.0, 15),
)


@dataclass
class Room:
    """Sparse paths in the virtual sound card's terms (physical channels)."""

    delays: np.ndarray  # [paths, taps] samples, each at least one block
    gains: np.ndarray  # [paths, taps]
    outs: np.ndarray  # [paths] physical output
    mics: np.ndarray  # [paths] physical input

    @classmethod
    def empty(cls) -> "Room":
        """No acoustic paths: the stage as a recording."""
        return cls(np.zeros((0, 1), np.int64), np.zeros((0, 1)), np.zeros(0, np.int64),
                   np.zeros(0, np.int64))  # fmt: skip


def stage_room(sample_rate: int, block: int, n_bus: int, out_map: np.ndarray,
               phys_in: int, taps: int = 256) -> Room:  # fmt: skip
    """The paths whose loudspeaker and mic the device carries."""
    rows = []
    gain = 10 ** (COUPLING_DB / 20)
    for p in STAGE_PATHS:
        logical = (
            p.speaker - 1
            if isinstance(p.speaker, int)
            else n_bus + "LR".index(p.speaker)
        )
        phys = np.flatnonzero(out_map == logical)
        if (
            (isinstance(p.speaker, int) and p.speaker > n_bus)
            or not phys.size
            or p.mic >= phys_in
        ):
            continue
        ir = stage_path(sample_rate, p.distance_m, p.t60_s, drr_db=p.drr_db, seed=p.seed,
                        length_s=0.5)  # fmt: skip
        delays, gains = sparse_path(ir, taps)
        # A block's own output is not played yet: the shortest path is a block.
        delays = delays + max(0, block - int(delays[0]))
        rows.append((delays, gains * gain, int(phys[0]), p.mic))
    if not rows:
        return Room.empty()
    return Room(
        np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
        np.array([r[2] for r in rows], np.int64), np.array([r[3] for r in rows], np.int64),
    )  # fmt: skip

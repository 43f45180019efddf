"""Reading the audio plane's meters from the control plane.

The audio thread only ever raises peaks and lowers gain-reduction minima;
the reader copies them, then asks for a reset, which the audio thread
performs at its next block. Ballistics (hold, fall-back) belong to the
surface that draws them.
"""

from dataclasses import dataclass

import numpy as np

from livesound.audio import layout as L
from livesound.audio.atomics import bump_sequence
from livesound.audio.core import AudioCore


def to_db(x: np.ndarray, floor: float = -120.0) -> np.ndarray:
    """Linear amplitude to dBFS, with silence at ``floor``."""
    with np.errstate(divide="ignore"):
        return np.maximum(20.0 * np.log10(np.abs(x)), floor)


@dataclass
class Meters:
    """One reading: every meter since the previous reading, in dB."""

    in_peak_db: np.ndarray
    in_rms_db: np.ndarray
    gate_gr_db: np.ndarray
    comp_gr_db: np.ndarray
    in_clips: np.ndarray
    out_peak_db: np.ndarray
    out_rms_db: np.ndarray
    limiter_gr_db: np.ndarray
    out_clips: np.ndarray


def read_meters(core: AudioCore) -> Meters:
    """Copy the meters and ask the audio plane to start a new period."""
    ins, outs = core.arrays["ins"], core.arrays["outs"]
    meters = Meters(
        in_peak_db=to_db(ins[L.IM_PEAK]),
        in_rms_db=to_db(ins[L.IM_RMS]),
        gate_gr_db=to_db(ins[L.IM_GATE_GR]),
        comp_gr_db=ins[L.IM_COMP_GR].copy(),
        in_clips=ins[L.IM_CLIP].astype(int),
        out_peak_db=to_db(outs[L.OM_PEAK]),
        out_rms_db=to_db(outs[L.OM_RMS]),
        limiter_gr_db=to_db(outs[L.OM_LIM_GR]),
        out_clips=outs[L.OM_CLIPS].astype(int),
    )
    bump_sequence(core.hdr, L.H_METER_REQ)
    return meters


class MeterPoller:
    """The one reader of the audio plane's meters in the engine process.

    Several surfaces want meters (OSC clients, the status line); each read
    resets the audio plane's peaks, so one poller reads at a steady rate and
    everyone shares its latest reading.
    """

    def __init__(self, core: AudioCore) -> None:
        self.core = core
        self.latest: Meters | None = None

    def poll(self) -> Meters:
        self.latest = read_meters(self.core)
        return self.latest

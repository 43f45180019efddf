"""The show the virtual stage starts with: a band, FOH mix and wedges.

Engineers expect a fresh console on the virtual stage to be already
"sound-checked", so the meters move and monitor mixes have content.
"""

import math
from typing import Any

from livesound.control.registry import ch_prefix
from livesound.virtual.stage import STAGE_CHANNELS

# name: (fader dB, pan, HPF Hz or 0, comp on, sends dB to buses 1-4; -inf = none)
_BAND = {
    "Kick": (-4.0, 0.0, 0, 1, (-10.0, -math.inf, -math.inf, -12.0)),
    "Snare": (-6.0, 0.0, 100, 1, (-math.inf, -math.inf, -math.inf, -10.0)),
    "Hi-hat": (-12.0, 30.0, 300, 0, (-math.inf, -math.inf, -math.inf, -16.0)),
    "Bass": (-5.0, 0.0, 40, 1, (-6.0, -12.0, -math.inf, -8.0)),
    "Guitar": (-8.0, -40.0, 100, 0, (-12.0, -3.0, -math.inf, -12.0)),
    "Keys": (-9.0, 40.0, 100, 0, (-12.0, -12.0, -4.0, -12.0)),
    "Lead vox": (-2.0, 0.0, 100, 1, (0.0, -6.0, -6.0, -4.0)),
    "Back vox": (-7.0, -15.0, 120, 1, (-10.0, -10.0, 0.0, -10.0)),
}
WEDGES = ("Vox wedge", "Gtr wedge", "Keys wedge", "Drum fill")


def virtual_stage_show(n_in: int, n_bus: int) -> dict[str, Any]:
    """Parameter values for the virtual band on the first inputs."""
    show: dict[str, Any] = {}
    for c, name in enumerate(STAGE_CHANNELS[:n_in]):
        fader, pan, hpf, comp, sends = _BAND[name]
        p = ch_prefix(c)
        show[f"{p}/config/name"] = name
        show[f"{p}/mix/fader"] = fader
        show[f"{p}/mix/pan"] = pan
        if hpf:
            show[f"{p}/preamp/hpon"] = 1
            show[f"{p}/preamp/hpf"] = float(hpf)
        show[f"{p}/dyn/on"] = comp
        for b, level in enumerate(sends[:n_bus]):
            show[f"{p}/mix/{b + 1:02d}/level"] = level
            if b % 2 == 0:
                show[f"{p}/mix/{b + 1:02d}/type"] = 3  # PRE: monitors ignore FOH faders
    for b, name in enumerate(WEDGES[:n_bus]):
        show[f"/bus/{b + 1:02d}/config/name"] = name
        show[f"/ls/bus/{b + 1:02d}/limiter/ceiling"] = -3.0
    return show

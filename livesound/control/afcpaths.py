"""The control plane's side of the adaptive feedback cancellers.

The paths (mic → output) are fixed when the engine starts (``Dims.afc_paths``);
here each path is switched and reset. A path is on while its output's
feedback suppressor is in mode ``afc`` (``/ls/bus/NN/fbs/mode``), with the
notches armed behind the canceller; in any other mode the mic passes as if
there were no path. It starts over when that mode changes or a scene is
recalled (``scene_recalled``). An engine starts with every path's output
in mode ``afc``; a show restored or recalled afterwards sets its own modes.
Each switch and reset is one int64 word of ``afc_ctl`` stored with release
ordering, read by the audio plane with acquire ordering at its next chunk
(the protocol of the meter resets).
"""

import math

from livesound.audio import afc
from livesound.audio import layout as L
from livesound.audio.atomics import bump_sequence, store_header
from livesound.control.events import Change
from livesound.control.mixer import Mixer
from livesound.control.registry import FBS_MODES, out_prefixes

AFC_MODE = "afc"  # the suppressor's mode that runs an output's cancellers


class AfcPaths:
    """Switches, resets and reports the cancellers of an engine's memory."""

    def __init__(self, mixer: Mixer) -> None:
        self.mixer = mixer
        memory = mixer.memory
        self.ctl = memory.arrays["afc_ctl"]
        self.meter = memory.arrays["afc_meter"]
        self.counters = memory.arrays["afc_counters"]
        self.paths = memory.dims.afc_paths
        self.names = L.output_names(memory.dims.n_bus)
        n_bus = memory.dims.n_bus
        self.modes = [f"{out_prefixes(o, n_bus)[1]}/fbs/mode" for _, o in self.paths]
        mixer.subscribe(self._changed)
        if self.modes:
            mixer.set_many(dict.fromkeys(self.modes, AFC_MODE))
        for p in range(len(self.paths)):
            self._switch(p)

    def _switch(self, p: int) -> None:
        store_header(self.ctl[p], L.AC_ON, int(self.on(p)))

    def on(self, p: int) -> bool:
        """Whether path ``p`` cancels (its output's suppressor in ``afc``)."""
        return FBS_MODES[self.mixer.get(self.modes[p])] == AFC_MODE

    def reset(self, p: int) -> None:
        """Path ``p`` starts over (F̂ = 0) at the audio plane's next chunk."""
        bump_sequence(self.ctl[p], L.AC_RESET_REQ)

    def _changed(self, change: Change) -> None:
        for p, address in enumerate(self.modes):
            if change.address == address:
                self._switch(p)
                self.reset(p)

    def scene_recalled(self, name: str) -> None:
        """A scene was recalled (``SceneManager.recalled``): the show may be
        another, so every path starts over (once, not at each step of its
        fades)."""
        for p in range(len(self.paths)):
            self.reset(p)

    def erle_db(self, p: int) -> float:
        """Path ``p``'s echo return loss enhancement over the last second or
        so: mic power over corrected power, dB (0 until it has heard)."""
        heard, left = self.meter[p, L.AM_MIC], self.meter[p, L.AM_ERR]
        return 10 * math.log10(heard / left) if heard > 0 and left > 0 else 0.0

    def stats(self) -> list[dict]:
        """Per path: the mic (input number), the output (its name), whether
        it is on, the ERLE, whether it is frozen (off, or its output muted)
        and how often its divergence guard made it start over."""
        return [{"mic": mic + 1, "output": self.names[o], "on": self.on(p),
                 "erle_db": round(self.erle_db(p), 1),
                 "frozen": bool(self.meter[p, L.AM_FROZEN]),
                 "diverged": int(self.counters[p, afc.I_RESETS])}
                for p, (mic, o) in enumerate(self.paths)]  # fmt: skip

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
(the protocol of the meter resets). So is the learning switch (``learn``):
for a few seconds the output plays a test signal its paths learn from; a
mode change ends it.
"""

import math
import threading

from livesound.audio import afc
from livesound.audio import layout as L
from livesound.audio.atomics import bump_sequence, store_header
from livesound.control.events import Change
from livesound.control.mixer import Mixer
from livesound.control.registry import FBS_MODES, out_prefixes

AFC_MODE = "afc"  # the suppressor's mode that runs an output's cancellers
LEARN_S = 3.0  # how long a path learns from the test signal by default
MAX_LEARN_S = 30.0


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
        self._lock = threading.Lock()
        self._timers: dict[int, threading.Timer] = {}  # output -> its learning's end
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

    def learn(self, output: int, seconds: float = LEARN_S) -> int:
        """Every path into engine output ``output`` learns its path from a
        test signal (white noise at -20 dBFS RMS, added to that output before
        its limiter) for ``seconds``, then keeps what it learnt with a small
        step (``afc.step``). Returns how many paths learn. Run it with the
        stage quiet: the paths learn from what the noise brings back, and a
        voice heard meanwhile is an error they learn too. Asked again while
        learning, the time starts over."""
        if not 0.0 < seconds <= MAX_LEARN_S:
            raise ValueError(f"learn for 0 to {MAX_LEARN_S:.0f} s, not {seconds}")
        mine = [p for p, (_, o) in enumerate(self.paths) if o == output]
        if not mine:
            raise ValueError(f"no canceller feeds {self.names[output]} (--afc)")
        if not all(self.on(p) for p in mine):
            raise ValueError(
                f"{self.names[output]}'s suppressor is not in mode {AFC_MODE}"
            )
        with self._lock:
            timer = self._timers.pop(output, None)
            if timer:
                timer.cancel()
            for p in mine:
                store_header(self.ctl[p], L.AC_LEARN, 1)
            timer = threading.Timer(seconds, self._time_up, (output,))
            timer.daemon = True
            self._timers[output] = timer
            timer.start()
        return len(mine)

    def end_learning(self, output: int) -> None:
        """The paths into engine output ``output`` stop learning now (``learn``
        ends so by itself); what they learnt they keep."""
        with self._lock:
            self._end(output)

    def _time_up(self, output: int) -> None:
        with self._lock:
            if self._timers.get(output) is threading.current_thread():
                self._end(output)  # else asked again meanwhile: its own timer ends it

    def _end(self, output: int) -> None:
        timer = self._timers.pop(output, None)
        if timer and timer is not threading.current_thread():
            timer.cancel()
        for p, (_, o) in enumerate(self.paths):
            if o == output:
                store_header(self.ctl[p], L.AC_LEARN, 0)

    def learning(self, p: int) -> bool:
        """Whether path ``p`` is learning from the test signal now."""
        return bool(self.ctl[p, L.AC_LEARN])

    def reset(self, p: int) -> None:
        """Path ``p`` starts over (F̂ = 0) at the audio plane's next chunk."""
        bump_sequence(self.ctl[p], L.AC_RESET_REQ)

    def _changed(self, change: Change) -> None:
        for p, address in enumerate(self.modes):
            if change.address == address:
                self.end_learning(self.paths[p][1])
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
        it is on, the ERLE, whether it is frozen (off, or its output muted),
        how often its divergence guard made it start over, whether it is
        learning from the test signal and whether what it holds was learnt
        so (until it starts over)."""
        return [{"mic": mic + 1, "output": self.names[o], "on": self.on(p),
                 "erle_db": round(self.erle_db(p), 1),
                 "frozen": bool(self.meter[p, L.AM_FROZEN]),
                 "diverged": int(self.counters[p, afc.I_RESETS]),
                 "learning": self.learning(p),
                 "learnt": bool(self.counters[p, afc.I_LEARNT])}
                for p, (mic, o) in enumerate(self.paths)]  # fmt: skip

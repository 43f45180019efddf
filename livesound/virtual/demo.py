"""A fixed show for the console without an engine: snapshot tests and the
README's screenshots. Everything here is deterministic (no clock, no
network), so a picture of it changes only when the drawing code does.

``python -m livesound.virtual.demo DIR`` writes SVG screenshots of the main
screens into DIR.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np

from livesound.audio.layout import n_outputs
from livesound.console.app import ConsoleApp
from livesound.console.state import ConsoleState, Status
from livesound.osc.meterblob import Reading
from livesound.virtual.show import virtual_stage_show

# What each screenshot shows: name, keys pressed from the mixer.
SCREENS = {
    "mixer": [],
    "sends-on-faders": ["f"],
    "channel-detail": ["right", "right", "right", "right", "right", "right", "enter"],
    "outputs": ["o", "down", "down"],
    "scenes": ["n"],
    "help": ["question_mark"],
}


def fill(st: ConsoleState) -> None:
    """Put a sound-checked band with moving meters, notches and scenes into ``st``."""
    st.values.update(virtual_stage_show(st.n_in, st.n_bus))
    st.values.update({
        "/ch/07/eq/2/g": 4.0, "/ch/07/eq/2/f": 3000.0, "/ch/07/eq/1/g": -3.0,
        "/ch/07/preamp/hpon": 1, "/ch/07/preamp/hpf": 120.0, "/ch/07/gate/on": 1,
        "/ch/02/mix/on": 0, "/-stat/solosw/07": 1,
    })  # fmt: skip
    for k, (f, depth, fixed) in enumerate(((2480.0, -9.0, 1), (630.0, -6.0, 0),
                                           (5120.0, -12.0, 0)), start=1):  # fmt: skip
        n = f"/ls/bus/01/notch/{k:02d}"
        st.values.update({f"{n}/on": 1, f"{n}/f": f, f"{n}/depth": depth,
                          f"{n}/width": 1 / 20, f"{n}/fixed": fixed})  # fmt: skip
    st.known.update(st.registry.params)
    n, m = st.n_in, n_outputs(st.n_bus)
    peak = np.full(n, -90.0)
    peak[:8] = (-14.0, -9.0, -22.0, -11.0, -18.0, -16.0, -4.0, -13.0)
    rms = peak - 9.0
    gate = np.zeros(n)
    comp = np.zeros(n)
    comp[[0, 3, 6]] = (-2.0, -4.0, -6.0)
    out_peak = np.full(m, -90.0)
    out_peak[: st.n_bus + 2] = -60.0
    out_peak[:4] = (-8.0, -12.0, -15.0, -10.0)
    out_peak[st.n_bus : st.n_bus + 2] = (-6.0, -5.0)
    lim = np.zeros(m)
    lim[0] = -2.5
    reading = Reading(in_peak_db=peak, in_rms_db=rms, gate_gr_db=gate,
                      comp_gr_db=comp, out_peak_db=out_peak,
                      out_rms_db=out_peak - 8.0, limiter_gr_db=lim)  # fmt: skip
    st.take_meters(reading, now=1.0)
    st.status = Status(device="virtual stage", sample_rate=48000, block=64,
                       latency_ms=2.3, dsp_load=0.062, xruns=0, blocks=100000,
                       clients=2,
                       margins_db={"/ls/bus/01": 1.4, "/ls/bus/02": 5.3,
                                   "/ls/main/st": 99.0})  # fmt: skip
    st.scenes = ["band-4piece", "singer-songwriter-iem", "speech-conference"]
    st.scene_current, st.scene_next = "band-4piece", "singer-songwriter-iem"
    st.unsaved = 3
    bands = np.linspace(0, 1, 96)
    st.spectra[0] = -70.0 + 30.0 * np.exp(-(((bands - 0.62) / 0.02) ** 2)) - 20 * bands
    st.connected = st.ever_connected = True


class DemoApp(ConsoleApp):
    """The console on the demo show: no engine, no clock-driven changes."""

    def __init__(self, **kwargs) -> None:
        super().__init__(connect=False, **kwargs)
        fill(self.state)


async def screenshots(folder: Path, size: tuple[int, int] = (120, 40)) -> list[Path]:
    """Write an SVG of each of ``SCREENS`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, keys in SCREENS.items():
        app = DemoApp()
        async with app.run_test(size=size) as pilot:
            await pilot.press(*keys)
            await pilot.pause(0.3)
            path = folder / f"{name}.svg"
            app.save_screenshot(filename=path.name, path=str(folder))
            written.append(path)
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screens")
    for p in asyncio.run(screenshots(out)):
        print(p)

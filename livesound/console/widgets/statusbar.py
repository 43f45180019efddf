"""The status bar: engine health and the show's state, always visible."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widget import Widget

from livesound.console.state import ConsoleState


class StatusBar(Widget):
    """Sample rate, block, latency, DSP load, xruns, device, OSC clients,
    unsaved changes, the scene, and the link's own state; a lost audio
    device and a storage fault first, in red."""

    DEFAULT_CSS = """
    StatusBar { dock: bottom; height: 1; background: #202838; color: #d0d0d0; }
    """

    def __init__(self, state: ConsoleState, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state = state

    def render(self) -> Text:
        st = self.state
        s = st.status
        t = Text(no_wrap=True, overflow="ellipsis")
        if not st.connected:
            label = " ENGINE LOST: reconnecting " if st.ever_connected else (
                " connecting… ")  # fmt: skip
            t.append(label, style="bold white on #c02020")
            t.append(" ")
        for fault in (s.audio, f"STORAGE: {s.storage}" if s.storage else "",
                      s.pairing.upper()):  # fmt: skip
            if fault and st.connected:
                t.append(f" {fault} ", style="bold white on #c02020")
                t.append(" ")
        device = "virtual stage" if s.device.lower().startswith("virtual") else s.device
        rate = f"{s.sample_rate / 1000:g}kHz/{s.block}" if s.sample_rate else "—"
        load = s.dsp_load * 100
        t.append(f"{rate} ", style="bold")
        t.append(f"lat {s.latency_ms:.1f}ms ")
        t.append(f"DSP {load:.0f}% ", style="bold red" if load > 70 else "")
        t.append(f"xruns {s.xruns} ", style="bold red" if s.xruns else "")
        if s.engine:
            t.append(f"{s.engine}: ", style="bold cyan")
        t.append(f"{device} ", style="cyan")
        t.append(f"OSC {s.clients} ")
        if st.soloed():
            t.append(" SOLO ", style="bold black on #e0c020")
            t.append(" ")
        if st.unsaved:
            t.append(f"unsaved {st.unsaved} ", style="bold yellow")
        else:
            t.append("saved ", style="green")
        if st.scene_current:
            t.append(f"scene {st.scene_current} ", style="magenta")
        if st.connected and not st.live():
            t.append(f"reading show {100 * st.synced():.0f}%: keys wait ",
                     style="bold black on yellow")  # fmt: skip
        if st.message and time.monotonic() < st.message_until:
            t.append(f"· {st.message}", style="italic")
        return t

"""The console application: one App, screens for the views, one OSC link."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen

from livesound.console.link import Link
from livesound.console.screens.detail import DetailScreen
from livesound.console.screens.dialogs import Choose, Confirm, Help
from livesound.console.screens.mixer import MixerScreen
from livesound.console.screens.outputs import OutputsScreen
from livesound.console.screens.scenes import ScenesScreen
from livesound.console.state import ConsoleState
from livesound.osc.discovery import FoundEngine, find_engines

DEFAULT_FPS = 30.0
# What every abbreviation and mark on screen means (the help screen's legend).
LEGEND = [
    ("▸05◂", "the selected strip (its name in reverse)"),
    (
        "05",
        "other strips' numbers in their scribble-strip colour (/ch/NN/config/color)",
    ),
    (
        "╪ ┼",
        "fader scale: 0 dB, and +10, -10, -20, -30, -50 dB (numbered right of the strips)",
    ),
    ("M  S", "mute (red when muted), solo (yellow when soloed)"),
    (
        "D  1-6",
        "orange where M is: muted by a DCA that is off (D) or by the "
        "engaged mute group of that number, not by its own mute",
    ),
    ("G", "gate on (green; red while it closes more than 3 dB)"),
    ("C  -6", "compressor on; its gain reduction in dB when it acts"),
    ("L-1.2", "an output's limiter gain reduction in dB"),
    ("SPE MUS RNG", "feedback suppressor mode: speech, music, ring-out; then notches"),
    ("█  │", "the fader's position on the meter scale; the scale"),
    ("▔", "peak hold (2 s); the number under the fader is the held peak in dB"),
    ("CLIP", "a peak within 0.1 dB of full scale in the last 3 s"),
    ("SOLO", "status bar: some strip is soloed (S clears every solo)"),
    ("-oo", "a fader at minus infinity (off)"),
]


class ConsoleApp(App):
    """The show console, attached to the engine at ``host``:``port``."""

    # Absolute: Textual resolves a relative path against the module of the
    # subclass (the demo app lives elsewhere).
    CSS_PATH = Path(__file__).with_name("console.tcss")
    TITLE = "livesound"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("question_mark", "help", "Help: every key"),
        Binding("q", "quit_console", "Quit (asks first)"),
        Binding(
            "ctrl+q,ctrl+c",
            "quit_console",
            "Quit (asks first)",
            priority=True,
            show=False,
        ),  # fmt: skip
        Binding("exclamation_mark", "panic", "Panic: mute every output (asks first)"),
        Binding("ctrl+z", "undo", "Undo the last change made from a surface"),
        Binding("S", "clear_solo", "Clear every solo (SOLO lights in the status bar)"),
        Binding("x,f2", "mixer", "Mixer view"),
        Binding("o,f3", "outputs", "Outputs: limiters, feedback notches"),
        Binding("n,f4", "scenes", "Scenes"),
        Binding("E", "engines", "Engines: attach to another engine on the network"),
    ]

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 10023,
        *,
        fps: float = DEFAULT_FPS,
        n_in: int = 32,
        n_bus: int = 16,
        pair: str | None = None,
        connect: bool = True,
    ) -> None:
        super().__init__()
        self.state = ConsoleState(n_in, n_bus)
        self.link = Link(self.state, host, port, pair=pair)
        self.link.on_undo_peek = self._undo_peeked
        self.fps = fps
        self.connect = connect
        self.frames = 0
        self.frame_time = 0.0  # seconds spent drawing frames, for the benchmark

    async def on_mount(self) -> None:
        self.add_mode("mixer", lambda: MixerScreen(self.state))
        self.add_mode("outputs", lambda: OutputsScreen(self.state))
        self.add_mode("scenes", lambda: ScenesScreen(self.state))
        await self.switch_mode("mixer")
        if self.connect:
            await self.link.start()
        self.set_interval(1.0 / self.fps, self.frame)

    def on_unmount(self) -> None:
        self.link.close()

    def frame(self) -> None:
        """Redraw from the local state: the only place the screen updates on
        its own, so nothing drawn ever waits for the network."""
        if not self.is_running:
            return  # shutting down: the screens' widgets are being removed
        t0 = time.perf_counter()
        for screen in reversed(self.screen_stack):
            # A screen draws only once its widgets exist (on_mount has run).
            if getattr(screen, "ready", False):
                screen.frame()
            if not isinstance(screen, ModalScreen):
                break
        self.frames += 1
        self.frame_time += time.perf_counter() - t0

    # -- navigation ----------------------------------------------------------------

    def action_mixer(self) -> None:
        self.switch_mode("mixer")

    def action_outputs(self) -> None:
        self.switch_mode("outputs")

    def action_scenes(self) -> None:
        self.switch_mode("scenes")

    # -- engines -------------------------------------------------------------------

    def action_engines(self) -> None:
        """Look for engines on the network (in a thread: it takes a second
        and a half), then offer them."""
        self.state.notice("looking for engines on the network…")
        self.run_worker(self._look_for_engines, thread=True, exclusive=True,
                        group="engines")  # fmt: skip

    def _look_for_engines(self) -> None:
        found = find_engines()
        self.call_from_thread(self._offer_engines, found)

    def _offer_engines(self, found: list[FoundEngine]) -> None:
        if not found:
            self.state.notice("no engine answers on the network")
            return
        options = [(e.name, f"{e.host}:{e.port}") for e in found]
        current = next((e.name for e in found if e.name == self.state.status.engine
                        and e.port == self.link.port), "")  # fmt: skip

        def chosen(name: str | None) -> None:
            engine = next((e for e in found if e.name == name), None)
            if engine is not None and engine.name != current:
                self.run_worker(self.attach(engine.host, engine.port, engine.name),
                                exclusive=True, group="attach")  # fmt: skip

        self.push_screen(Choose("Attach to which engine?", options, current), chosen)

    async def attach(self, host: str, port: int, name: str = "") -> None:
        """Leave this engine for the one at ``host``:``port``: its show is read
        afresh, and keys wait until it is (as at start)."""
        self.link.close()
        self.state.start_over()
        self.link = Link(self.state, host, port)
        self.link.on_undo_peek = self._undo_peeked
        await self.link.start()
        self.state.notice(f"attached to {name or host}:{port}")

    def show_outputs(self, output: int) -> None:
        """The outputs view with ``output`` selected."""
        self.switch_mode("outputs")
        screen = self.screen
        if isinstance(screen, OutputsScreen):
            screen.choose(output)

    def show_detail(self, channel: int) -> None:
        """Every parameter of input ``channel`` (0-based)."""
        self.push_screen(DetailScreen(self.state, channel))

    def action_help(self) -> None:
        if isinstance(self.screen, Help):
            return
        sections = [("Everywhere", self.BINDINGS)]
        for title, cls in (("Mixer", MixerScreen), ("Channel detail", DetailScreen),
                           ("Outputs", OutputsScreen), ("Scenes", ScenesScreen)):  # fmt: skip
            sections.append((title, cls.BINDINGS))
        self.push_screen(Help(sections, LEGEND))

    # -- safety ----------------------------------------------------------------------

    def panic_changes(self) -> dict[str, int]:
        """Mute every output: the main L/R and every bus."""
        changes = {"/main/st/mix/on": 0}
        for b in range(self.state.n_bus):
            changes[f"/bus/{b + 1:02d}/mix/on"] = 0
        return changes

    def action_clear_solo(self) -> None:
        solos = self.state.soloed()
        if not solos:
            self.state.notice("no solo to clear")
        elif self.link.set_many(dict.fromkeys(solos, 0)):
            self.state.notice(
                f"cleared {len(solos)} solo{'s' if len(solos) > 1 else ''}"
            )

    def action_undo(self) -> None:
        """Ask the engine what its newest step is (any surface's); a mute or
        unmute is confirmed first, anything else taken back at once."""
        self.link.command("/ls/undo/peek")

    def _undo_peeked(self, address: str, now: Any, before: Any) -> None:
        st = self.state
        change = (
            f"{st.label(address)}: {st.text(address, now)} → {st.text(address, before)}"
        )
        # A mute group's switch mutes when it is 1, an on switch when it is 0.
        engages = address.startswith("/config/mute/")
        if not (address.endswith("/on") or engages):
            self.link.command("/ls/undo", address)
            return
        verb = "mute" if bool(before) == engages else "unmute"
        self.push_screen(
            Confirm(f"Undo means {verb}: {change}. Do it?", verb.capitalize()),
            lambda yes: self.link.command("/ls/undo", address) if yes else None,
        )

    def action_panic(self) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.link.set_many(self.panic_changes(), unread_ok=True)
                self.state.notice("PANIC: every output muted")

        self.push_screen(
            Confirm("PANIC: mute the main and every bus?", "Mute all"), answer
        )

    def action_quit_console(self) -> None:
        if isinstance(self.screen, Confirm):
            return
        st = self.state
        if not st.connected:
            self.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.exit()

        # Quitting the console never stops the engine, but at a show an
        # accidental q must not take the engineer's screen away either.
        self.push_screen(
            Confirm("Quit the console? Audio keeps running in the engine.", "Quit"),
            answer,
        )

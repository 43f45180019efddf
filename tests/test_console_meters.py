"""What the console shows beside the faders: the solo indicator and its
clear key, the help screen's legend, the plots' axes (Pilot, real engine)."""

from __future__ import annotations

import io

from console_helpers import console_run, live_on, query, screen_text, settle
from rich.console import Console
from textual.widgets import Static

from livesound.console.screens.dialogs import Help
from livesound.console.screens.mixer import MixerScreen
from livesound.console.screens.outputs import OutputsScreen


def test_solo_indicator_clear_solo_legend_and_axes(tmp_path):
    async def body(app, pilot, engine):
        await live_on(pilot, app, MixerScreen)
        assert " SOLO " not in screen_text(app)
        await pilot.press("s", "right", "s")  # solo channels 1 and 2
        for c in ("01", "02"):
            await settle(pilot, lambda c=c: query(engine.port,
                         f"/-stat/solosw/{c}") == 1, f"solo {c}")  # fmt: skip
        await settle(pilot, lambda: " SOLO " in screen_text(app), "SOLO")
        await pilot.press("S")  # clear every solo
        for c in ("01", "02"):
            await settle(pilot, lambda c=c: query(engine.port,
                         f"/-stat/solosw/{c}") == 0, f"unsolo {c}")  # fmt: skip
        await settle(pilot, lambda: " SOLO " not in screen_text(app), "off")
        await pilot.press("question_mark")
        assert isinstance(app.screen, Help)
        # the whole help text, also what is scrolled out of view
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#keys", Static).content)
        text = console.export_text()
        for mark in ("On screen", "CLIP", "MUS", "peak hold", "Clear every solo"):
            assert mark in text, mark
        await pilot.press("escape", "o")
        await settle(pilot, lambda: isinstance(app.screen, OutputsScreen)
                     and app.screen.ready, "the outputs view")  # fmt: skip
        await settle(pilot, lambda: "1kHz" in screen_text(app), "Hz axis")
        text = screen_text(app)
        assert "100Hz" in text and "10kHz" in text and "0dB" in text

    console_run(tmp_path, body)


def test_status_bar_names_closed_pairing():
    from livesound.console.state import ConsoleState, Status
    from livesound.console.widgets.statusbar import StatusBar

    st = ConsoleState(8, 4)
    st.connected = True
    report = {"pairing": {"open": False, "closed_for_s": 42.0, "wrong_codes": 20}}
    st.status = Status.from_stats(report)
    assert "PAIRING CLOSED FOR 42 S" in StatusBar(st).render().plain
    st.status = Status.from_stats({"pairing": {"open": True}})
    assert "PAIRING" not in StatusBar(st).render().plain

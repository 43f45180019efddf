"""ctrl+z on the console: a mute or unmute is confirmed first, and undo never
reaches back past a scene recall: Textual's Pilot against a real engine."""

from __future__ import annotations

from console_helpers import console_run, live_on, query, screen_text, settle
from osc_helpers import Client

from livesound.console.screens.dialogs import Confirm
from livesound.console.screens.mixer import MixerScreen


def test_undoing_a_mute_asks_first(tmp_path):
    async def body(app, pilot, engine):
        await live_on(pilot, app, MixerScreen)
        await pilot.press("right", "m")  # mute channel 2
        await settle(pilot, lambda: query(engine.port, "/ch/02/mix/on") == 0,
                     "the mute")  # fmt: skip
        await pilot.press("ctrl+z")
        await settle(pilot, lambda: isinstance(app.screen, Confirm), "ask")
        assert "unmute" in screen_text(app)
        await pilot.press("n")
        await pilot.pause(0.3)
        assert query(engine.port, "/ch/02/mix/on") == 0  # still muted
        await pilot.press("ctrl+z")
        await settle(pilot, lambda: isinstance(app.screen, Confirm), "ask")
        await pilot.press("y")
        await settle(pilot, lambda: query(engine.port, "/ch/02/mix/on") == 1,
                     "the unmute")  # fmt: skip
        await settle(pilot, lambda: "undone" in app.state.message, "notice")

    console_run(tmp_path, body)


def test_undo_stops_at_a_scene_recall(tmp_path):
    async def body(app, pilot, engine):
        await live_on(pilot, app, MixerScreen)
        await pilot.press("right", "right", "pagedown")  # ch 3 down 6 dB
        with Client(engine.port) as c:
            settled = c.query("/ch/03/mix/fader")
            assert c.request("/ls/undo/peek").args[0] == "/ch/03/mix/fader"
            c.send("/ls/scene/save", "next-song")
            assert c.recv(10).address == "/ls/scene/saved"
            c.send("/ls/scene/recall", "next-song")
            assert c.recv(10).address == "/ls/scene/current"
        await pilot.press("ctrl+z")
        await settle(pilot, lambda: app.state.message == "nothing to undo", "the barrier")  # fmt: skip
        assert query(engine.port, "/ch/03/mix/fader") == settled

    console_run(tmp_path, body)

"""ctrl+z on the console: a mute or unmute is confirmed first, and undo never
reaches back past a scene recall: Textual's Pilot against a real engine."""

from __future__ import annotations

import pytest
from console_helpers import engine_with_scenes, query, run, screen_text, settle
from osc_helpers import Client

from livesound.console.app import ConsoleApp
from livesound.console.screens.dialogs import Confirm
from livesound.console.screens.mixer import MixerScreen

SIZE = (120, 40)


@pytest.fixture
def engine(tmp_path):
    eng = engine_with_scenes(tmp_path)
    yield eng
    eng.stop()


async def live_mixer(pilot, app: ConsoleApp) -> None:
    await settle(pilot, app.state.live, "the console to read the show")
    await settle(pilot, lambda: isinstance(app.screen, MixerScreen)
                 and app.screen.ready, "the mixer")  # fmt: skip


def test_undoing_a_mute_asks_first(engine):
    async def go():
        app = ConsoleApp(port=engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await live_mixer(pilot, app)
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

    run(go())


def test_undo_stops_at_a_scene_recall(engine):
    async def go():
        app = ConsoleApp(port=engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await live_mixer(pilot, app)
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

    run(go())

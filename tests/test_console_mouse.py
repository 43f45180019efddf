"""The mouse on the mixer: click selects, mutes and solos; drag moves a
fader; the wheel steps it (Textual's Pilot against a real engine)."""

from __future__ import annotations

import math

from console_helpers import (
    console_run,
    engine_value,
    fader_norm,
    live_on,
    query,
    settle,
)

from livesound.console.screens.mixer import MixerScreen
from livesound.console.widgets.strip import HEAD_ROWS, MUTE_ROW, WIDTH


def test_click_drag_and_wheel(tmp_path):
    async def body(app, pilot, engine):
        await live_on(pilot, app, MixerScreen)
        mixer = app.screen
        await pilot.click("#channels", offset=(2 * WIDTH + 2, 1))  # strip 3
        assert mixer.selected == ("in", 2)
        await pilot.click("#channels", offset=(WIDTH + 1, MUTE_ROW))  # M of 2
        await settle(pilot, lambda: query(engine.port, "/ch/02/mix/on") == 0,
                     "the mute")  # fmt: skip
        assert mixer.selected == ("in", 1)
        # drag strip 4's fader from the bottom to the top of its meter
        bottom = mixer.channels.size.height - 3  # above the two footer rows
        await pilot.mouse_down("#channels", offset=(3 * WIDTH + 4, bottom))
        await pilot.hover("#channels", offset=(3 * WIDTH + 4, HEAD_ROWS + 5))
        await pilot.hover("#channels", offset=(3 * WIDTH + 4, HEAD_ROWS))
        await pilot.mouse_up("#channels", offset=(3 * WIDTH + 4, HEAD_ROWS))
        await engine_value(pilot, engine.port, "/ch/04/mix/fader",
                           fader_norm(10.0))  # fmt: skip
        assert mixer.selected == ("in", 3)
        # the wheel over strip 5: one step up from where it is
        db = app.state.values["/ch/05/mix/fader"]
        mixer.channels.post_message(mixer.channels.Wheel(mixer.channels, 4, 1))
        expected = -60.0 if not math.isfinite(db) else min(10.0, round(db + 1, 1))
        await engine_value(pilot, engine.port, "/ch/05/mix/fader",
                           fader_norm(expected))  # fmt: skip

    console_run(tmp_path, body)

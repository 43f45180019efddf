"""The selected strip: unmistakable, kept by channel across layers, and
names up to 12 characters (Textual's Pilot against a real engine)."""

from __future__ import annotations

import pytest
from console_helpers import engine_with_scenes, query, run, screen_text, settle
from osc_helpers import Client

from livesound.console.app import ConsoleApp
from livesound.console.screens.mixer import MixerScreen
from livesound.console.widgets.strip import name_rows

SIZE = (120, 40)


@pytest.mark.parametrize(
    ("name", "rows"),
    [
        ("Kick", ("Kick", "")),
        ("Lead vox", ("Lead", "vox")),
        ("Rack tom 1", ("Rack", "tom 1")),
        ("Rack tom 2", ("Rack", "tom 2")),  # told apart, unlike "Rack t" twice
        ("Acousticgtr", ("Acoust", "icgtr")),  # no space: cut at the width
        ("Backing vocal 2", ("Backin", "g voca")),  # 12 characters at most
    ],
)
def test_names_take_two_rows(name, rows):
    assert name_rows(name) == rows


def test_selection_follows_the_channel_across_layers(tmp_path):
    engine = engine_with_scenes(tmp_path)

    async def go():
        with Client(engine.port) as c:
            c.send("/ch/05/config/name", "Lead vox")
            assert c.query("/ch/05/config/name") == "Lead vox"
        app = ConsoleApp(port=engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app.state.live, "the console to read the show")
            await settle(pilot, lambda: isinstance(app.screen, MixerScreen)
                         and app.screen.ready, "the mixer")  # fmt: skip
            mixer = app.screen
            await pilot.press("right", "right", "right", "right")  # channel 5
            assert mixer.selected == ("in", 4)
            await settle(pilot, lambda: "▸05◂" in screen_text(app), "marker")
            await pilot.press("f")  # sends on faders: mix 1
            assert mixer.selected == ("in", 4) and mixer.current().index == 4
            before = query(engine.port, "/ch/05/mix/01/level")
            await pilot.press("up")  # lands on Lead vox's send, nothing else
            await settle(pilot, lambda: query(engine.port, "/ch/05/mix/01/level")
                         != before, "the send to move")  # fmt: skip
            await pilot.press("b", "b")  # the bus layer and back
            assert mixer.selected == ("in", 4)
            await pilot.press("escape")  # main mix again
            assert mixer.current().fader == "/ch/05/mix/fader"

    try:
        run(go())
    finally:
        engine.stop()

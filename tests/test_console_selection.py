"""The selected strip: unmistakable, kept by channel across layers, and
names up to 12 characters (Textual's Pilot against a real engine)."""

from __future__ import annotations

import pytest
from console_helpers import console_run, live_on, query, screen_text, settle
from osc_helpers import Client

from livesound.console.screens.mixer import MixerScreen
from livesound.console.widgets.strip import name_rows


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
    async def body(app, pilot, engine):
        with Client(engine.port) as c:
            c.send("/ch/05/config/name", "Lead vox")
            assert c.query("/ch/05/config/name") == "Lead vox"
        await live_on(pilot, app, MixerScreen)
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

    console_run(tmp_path, body)


def test_strip_numbers_take_the_scribble_strip_colour():
    """`/ch/NN/config/color` as on an X32: coloured number, inverted is black
    on the colour, OFF dim; the selected strip keeps its pointer."""
    import time

    from livesound.console.screens.mixer import input_spec
    from livesound.console.state import ConsoleState
    from livesound.console.widgets.strip import COLOURS, FG_DIM, draw

    st = ConsoleState(8, 4)
    choices = st.param("/ch/01/config/color").choices

    def label(c: int, colour: str, selected: bool = False):
        st.values[f"/ch/{c + 1:02d}/config/color"] = choices.index(colour)
        row = draw(input_spec(st, c), st, 30, selected, time.monotonic())[0]
        return row[0].style

    red = label(0, "RD")
    assert red.color.name == COLOURS["RD"] and red.bgcolor.name != COLOURS["RD"]
    inverted = label(1, "RDi")
    assert inverted.bgcolor.name == COLOURS["RD"] and inverted.color.name == "#000000"
    assert label(2, "OFF").color.name == FG_DIM
    assert label(3, "RD", selected=True).bgcolor.name == "#e0c020"

"""The suppressor's mode picked from a menu; ring-out asks first and says
what it left behind: Textual's Pilot against a real engine process."""

from __future__ import annotations

import re

import pytest
from console_helpers import console_run, query, settle
from osc_helpers import Client, stats
from textual.widgets import Static

from livesound.console.screens.dialogs import Choose, Confirm
from livesound.console.screens.outputs import OutputsScreen, afc_text, margin_text
from livesound.feedback.margin import SAFE_MARGIN_DB

MODE = "/ls/bus/01/fbs/mode"


def test_mode_menu_ringout_asks_and_reports(tmp_path):
    async def body(app, pilot, engine):
        with Client(engine.port) as c:
            c.send(MODE, 2)  # music
            # a fixed notch, as ring-out leaves them
            c.send("/ls/bus/01/notch/05/on", 1)
            c.send("/ls/bus/01/notch/05/fixed", 1)
            assert c.query("/ls/bus/01/notch/05/fixed") == 1
        await settle(pilot, app.state.live, "the console to read the show")
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, OutputsScreen)
                     and app.screen.ready, "the outputs view")  # fmt: skip
        await pilot.press("down", "down")  # outputs: main, mono, bus 1
        assert app.screen.output == 0
        await pilot.press("m")
        assert isinstance(app.screen, Choose)
        await pilot.press("4")  # ring-out: asks first
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")
        await pilot.pause(0.3)
        assert query(engine.port, MODE) == 2
        await pilot.press("m", "4", "y")
        await settle(pilot, lambda: query(engine.port, MODE) == 3, "ringout")
        await settle(pilot, lambda: app.state.fbs_mode(0) == "ringout", "")
        await pilot.press("m", "escape")  # escape: nothing changes
        await pilot.pause(0.3)
        assert query(engine.port, MODE) == 3
        await pilot.press("m", "3")  # back to music: says what ring-out left
        await settle(pilot, lambda: query(engine.port, MODE) == 2, "music")
        # ours at least (the virtual stage may ring and get more)
        found = re.search(r"ring-out of .* ended: (\d+) fixed notches",
                          app.state.message)  # fmt: skip
        assert found and int(found[1]) >= 1, app.state.message

    console_run(tmp_path, body)


def test_each_outputs_loop_margin_is_the_engines_estimate(tmp_path):
    """The suppressor's margin estimates from /ls/stats reach the outputs
    view: a cell on every analysed output's row and the selected one's in
    the title (the virtual stage's band gives bus 1's loop an estimate)."""

    async def body(app, pilot, engine):
        margins = await settle(pilot, lambda: app.state.status.margins_db,
                               "the engine's first margin estimates")  # fmt: skip
        assert margins.keys() <= stats(engine.port)["engine"]["margins_db"].keys()
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, OutputsScreen)
                     and app.screen.ready, "the outputs view")  # fmt: skip
        await pilot.press("down", "down")  # outputs: main, mono, bus 1
        title = app.screen.query_one("#title", Static)

        def shown() -> bool:
            want = margin_text(app.state.status.margins_db.get("/ls/bus/01"))[0]
            return f"loop margin {want.strip()}" in str(title.render())

        await settle(pilot, shown, "bus 1's margin in the title")

    console_run(tmp_path, body)


def test_the_outputs_title_says_what_its_canceller_does(tmp_path):
    """An engine with ``--afc 1=1``: bus 1's title names mic 1's canceller
    and its ERLE from /ls/stats; ``a`` has it learn the wedge, and the title
    says it is learnt; switched out of mode afc it is idle."""

    async def body(app, pilot, engine):
        await settle(pilot, lambda: app.state.status.afc, "the engine's cancellers")
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, OutputsScreen)
                     and app.screen.ready, "the outputs view")  # fmt: skip
        await pilot.press("down", "down")  # outputs: main, mono, bus 1
        title = app.screen.query_one("#title", Static)
        await settle(pilot, lambda: re.search(r"cancelling mic 1 ERLE -?\d+\.\d dB",
                                              str(title.render())), "the ERLE")  # fmt: skip
        await pilot.press("a")  # learn the wedge: 3 s of noise
        await settle(pilot, lambda: "mic 1 learnt ERLE" in str(title.render()),
                     "the canceller learnt")  # fmt: skip
        with Client(engine.port) as c:
            c.send(MODE, "music")
        await settle(pilot, lambda: "mic 1 idle (mode not afc)" in str(title.render()),
                     "the canceller idle")  # fmt: skip
        assert "suppressor music" in str(title.render())

    console_run(tmp_path, body, "--afc", "1=1")


def test_canceller_text_per_path():
    paths = [{"mic": 1, "output": "1", "on": True, "erle_db": 3.25, "frozen": False},
             {"mic": 2, "output": "1", "on": True, "erle_db": 0.0, "frozen": True},
             {"mic": 3, "output": "L", "on": False, "erle_db": 0.0, "frozen": True},
             {"mic": 4, "output": "2", "on": True, "erle_db": 1.0, "frozen": False,
              "diverged": 2},
             {"mic": 5, "output": "3", "on": True, "erle_db": 19.04, "frozen": False,
              "learning": True, "learnt": True},
             {"mic": 6, "output": "4", "on": True, "erle_db": 12.0, "frozen": False,
              "learnt": True}]  # fmt: skip
    assert (
        afc_text(paths, "1") == "  cancelling mic 1 ERLE 3.2 dB, mic 2 frozen (muted)"
    )
    assert afc_text(paths, "L") == "  cancelling mic 3 idle (mode not afc)"
    assert afc_text(paths, "2") == "  cancelling mic 4 ERLE 1.0 dB, restarted 2x"
    assert afc_text(paths, "3") == "  cancelling mic 5 learning ERLE 19.0 dB"
    assert afc_text(paths, "4") == "  cancelling mic 6 learnt ERLE 12.0 dB"
    assert afc_text(paths, "5") == ""


@pytest.mark.parametrize(
    "margin, text, colour",
    [(None, "—", "#606070"), (99.0, "ok", "#60c060"), (SAFE_MARGIN_DB - 0.1, "+1.9dB",
      "#ff4040"), (SAFE_MARGIN_DB + 0.5, "+2.5dB", "#e0c020"), (12.34, "+12dB", "#60c060"),
     (-0.25, "-0.2dB", "#ff4040")],
)  # fmt: skip
def test_margin_cells_mark_loops_under_the_safe_margin(margin, text, colour):
    cell, got = margin_text(margin)
    assert len(cell) == 6 and cell.strip() == text and got == colour


def test_every_output_row_meters_its_level_and_shows_a_clip():
    """The outputs list meters each output (main: the louder side) next to
    its limiter, and says CLIP for 3 s after one."""
    import time

    from livesound.console.state import ConsoleState

    st = ConsoleState(8, 4)
    screen = OutputsScreen(st)
    main, bus1 = st.n_bus, 0
    st.outputs.shown[main], st.outputs.shown[main + 1] = -40.0, -3.0
    st.outputs.shown[bus1] = -30.0

    def level(row) -> tuple[str, str]:
        return row[3]

    rows = screen._output_rows()  # main first, the mono bus, then the buses
    assert len(rows) == 2 + st.n_bus + 6  # ... and the 6 matrices; not the cue
    assert level(rows[0]) == ("▮▮▮▮▮▮ ", "#e0c020")  # -3 dBFS: the louder side
    assert level(rows[2]) == ("▮▮▮··· ", "#3fbf3f")  # -30 dBFS: half the bar
    st.outputs.clip_until[bus1] = time.monotonic() + 3.0
    assert level(screen._output_rows()[2]) == ("CLIP   ", "#ff4040")

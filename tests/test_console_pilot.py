"""The console driven by its keys (Textual's Pilot) against a real engine
process: every change is checked in the engine, asked over OSC. Every wait is
for a condition (the engine's value, the screen's text), with the suite's one
deadline."""

from __future__ import annotations

import asyncio
import math
import os
import signal

import pytest
from console_helpers import (
    Client,
    engine_value,
    engine_with_scenes,
    fader_norm,
    query,
    run,
    screen_text,
    settle,
    shows,
    stats,
)

from livesound.console.app import ConsoleApp
from livesound.console.link import PROBE_S
from livesound.console.screens.detail import DetailScreen
from livesound.console.screens.dialogs import Confirm
from livesound.console.screens.mixer import MixerScreen
from livesound.console.screens.outputs import OutputsScreen
from livesound.console.screens.scenes import ScenesScreen

SIZE = (120, 40)


@pytest.fixture
def engine(tmp_path):
    eng = engine_with_scenes(tmp_path)
    yield eng
    eng.stop()


async def attached(pilot, app: ConsoleApp, n_in: int = 8, n_bus: int = 4) -> None:
    """Wait until the console knows the engine's shape and the mixer values."""
    st = app.state
    try:
        await settle(pilot, lambda: st.connected and st.n_in == n_in and
                     f"/ch/{n_in:02d}/mix/fader" in st.known and
                     f"/bus/{n_bus:02d}/mix/on" in st.known,
                     "the console to read the show")  # fmt: skip
    except AssertionError as exc:
        raise AssertionError(f"{exc}: connected {st.connected}, {st.n_in}x"
                             f"{st.n_bus}, {len(st.known)} values") from None  # fmt: skip


def test_a_late_answer_to_the_size_probe_still_sizes_the_console(engine):
    """On a busy machine the engine may answer the console's size probe late:
    the console waits for every answer instead of sizing itself from the
    names that came within a fixed window (it used to stay at 32x16)."""

    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        resync = app.link._resync

        def resync_then_stall(now: float) -> None:
            app.link._resync = resync  # once: a reconnect probes as usual
            resync(now)  # the probe is sent: the engine stalls before it answers
            os.kill(engine.proc.pid, signal.SIGSTOP)
            asyncio.get_running_loop().call_later(
                3 * PROBE_S, os.kill, engine.proc.pid, signal.SIGCONT
            )

        app.link._resync = resync_then_stall
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)

    run(go())


def test_keys_move_fader_mute_solo_and_pan(engine):
    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)
            assert isinstance(app.screen, MixerScreen)
            await pilot.press("right")  # channel 2
            await pilot.press("home")  # 0 dB
            await pilot.press("up", "up", "up")
            await engine_value(pilot, engine.port, "/ch/02/mix/fader", fader_norm(3.0))
            await pilot.press("down")
            await engine_value(pilot, engine.port, "/ch/02/mix/fader", fader_norm(2.0))
            await pilot.press("end")
            await engine_value(pilot, engine.port, "/ch/02/mix/fader", 0.0)
            await pilot.press("m")
            await engine_value(pilot, engine.port, "/ch/02/mix/on", 0)
            await pilot.press("m")
            await engine_value(pilot, engine.port, "/ch/02/mix/on", 1)
            await pilot.press("s")
            await engine_value(pilot, engine.port, "/-stat/solosw/02", 1)
            pan = query(engine.port, "/ch/02/mix/pan")
            await pilot.press("full_stop")
            await engine_value(pilot, engine.port, "/ch/02/mix/pan",
                               min(1.0, pan + 0.05))  # fmt: skip
            # and the screen says so: the strip's dB readout and solo
            await pilot.press("home")
            await shows(pilot, app, "+0.0")

    run(go())


def test_sends_on_faders_set_the_mix_sends(engine):
    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)
            await pilot.press("f", "f")  # mix 2
            screen = app.screen
            assert screen.sends_mix == 2
            await shows(pilot, app, "SENDS ON FADERS")
            await pilot.press("right", "right")  # channel 3
            await pilot.press("home", "down", "down")
            await engine_value(pilot, engine.port, "/ch/03/mix/02/level",
                               fader_norm(-2.0))  # fmt: skip
            await pilot.press("m")
            await engine_value(pilot, engine.port, "/ch/03/mix/02/on", 0)
            # the main mix fader of channel 3 did not move
            main = query(engine.port, "/ch/03/mix/fader")
            await pilot.press("escape")
            assert screen.sends_mix == 0
            await pilot.press("up")
            assert query(engine.port, "/ch/03/mix/02/level") == pytest.approx(
                fader_norm(-2.0), abs=2e-3)  # fmt: skip
            assert query(engine.port, "/ch/03/mix/fader") != main

    run(go())


def test_channel_detail_edits_the_strip_and_draws_the_eq(engine):
    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)
            await pilot.press("right", "enter")  # channel 2's detail
            assert isinstance(app.screen, DetailScreen)
            assert app.screen.channel == 1
            await settle(pilot, lambda: "/ch/02/preamp/trim" in app.state.known,
                         "the channel's trim")  # fmt: skip
            trim = app.state.values["/ch/02/preamp/trim"]
            await pilot.press("down", "right", "right")  # Trim +1 dB
            await engine_value(pilot, engine.port, "/ch/02/preamp/trim",
                               (trim + 1.0 + 18.0) / 36.0)  # fmt: skip
            rows = [label for label, _ in app.screen.entries]
            # EQ 2 gain: three coarse steps of 3 dB
            for _ in range(rows.index("EQ 2 gain") - 1):
                await pilot.press("down")
            gain = app.state.values["/ch/02/eq/2/g"]
            await pilot.press("shift+right")
            await engine_value(pilot, engine.port, "/ch/02/eq/2/g",
                               (gain + 3.0 + 15.0) / 30.0)  # fmt: skip
            curve = app.screen.eq_curve(200)
            assert curve.max() > 0.5  # the boost shows in the drawn response
            await pilot.press("escape")
            assert isinstance(app.screen, MixerScreen)

    run(go())


def test_a_change_made_elsewhere_shows_within_a_refresh(engine):
    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)
            # the console's /xremote has landed: the engine pushes to it
            await settle(pilot, lambda: stats(engine.port)["subscribers"],
                         "the console's subscription")  # fmt: skip
            with Client(engine.port) as tablet:
                tablet.send("/ch/05/mix/fader", fader_norm(-17.5))
                tablet.send("/ch/05/config/name", "Tablet")
            await settle(pilot, lambda: "-17.5" in screen_text(app) and
                         "Tablet" in screen_text(app),
                         "the tablet's change on screen")  # fmt: skip

    run(go())


def test_panic_and_quit_ask_first(engine):
    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)
            await pilot.press("exclamation_mark")
            assert isinstance(app.screen, Confirm)
            await pilot.press("n")
            await settle(pilot, lambda: not isinstance(app.screen, Confirm),
                         "the question gone")  # fmt: skip
            assert query(engine.port, "/main/st/mix/on") == 1
            await pilot.press("exclamation_mark", "y")
            await engine_value(pilot, engine.port, "/main/st/mix/on", 0)
            for b in range(1, 5):
                assert query(engine.port, f"/bus/{b:02d}/mix/on") == 0
            await pilot.press("q")
            assert isinstance(app.screen, Confirm)
            await pilot.press("n")
            assert app.is_running

    run(go())


def test_outputs_pin_and_delete_notches(engine):
    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        with Client(engine.port) as c:
            # A notch on bus 2, placed the way the suppressor places one.
            c.send("/ls/bus/02/fbs/mode", 0)  # off: nothing else moves the bank
            c.send("/ls/bus/02/notch/03/f", math.log(2500 / 20) / math.log(1000))
            c.send("/ls/bus/02/notch/03/depth", 0.6)  # -24 dB on -60..0
            c.send("/ls/bus/02/notch/03/on", 1)
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)
            await pilot.press("o")
            assert isinstance(app.screen, OutputsScreen)
            await pilot.press("down", "down", "down")  # main, mono, bus 1, bus 2
            assert app.screen.output == 1
            await settle(pilot, lambda: app.state.notches(1), "bus 2's notch")
            await shows(pilot, app, "2500.0 Hz")
            curve = app.screen.notch_curve(400)
            assert -25.0 < curve.min() < -20.0  # the notch is drawn at its depth
            await pilot.press("tab", "p")
            await engine_value(pilot, engine.port, "/ls/bus/02/notch/03/fixed", 1)
            await pilot.press("d")
            await engine_value(pilot, engine.port, "/ls/bus/02/notch/03/on", 0)
            await pilot.press("tab", "m", "2")  # the mode menu: 2 speech
            await engine_value(pilot, engine.port, "/ls/bus/02/fbs/mode", 1)

    run(go())


def test_scenes_save_recall_and_go(tmp_path):
    # The shipped scenes are for the full 32-input, 16-bus show.
    engine = engine_with_scenes(tmp_path, inputs=32, buses=16)
    try:
        run(_scenes(engine, tmp_path))
    finally:
        engine.stop()


async def _scenes(engine, tmp_path) -> None:
    """Save, GO, back and recall from the scenes panel."""
    app = ConsoleApp("127.0.0.1", engine.port)
    async with app.run_test(size=SIZE) as pilot:
        await attached(pilot, app, 32, 16)
        await pilot.press("n")
        assert isinstance(app.screen, ScenesScreen)
        await settle(pilot, lambda: app.state.scenes, "the scene list")
        await pilot.press("s")
        await pilot.press("ctrl+a", *"console-test", "enter")
        await settle(pilot, lambda: (tmp_path / "scenes" / "console-test.toml")
                     .exists(), "the saved scene file")  # fmt: skip
        await settle(pilot, lambda: "console-test" in app.state.scenes,
                     "the saved scene listed")  # fmt: skip
        before = app.state.scene_next
        await pilot.press("g")
        await settle(
            pilot,
            lambda: app.state.scene_current == before,
            f"GO to {before!r}; {app.state.message}",
        )
        await pilot.press("G")  # back (from the first cue: that cue again)
        k = app.state.scenes.index("console-test")
        app.screen.query_one("#scenes").cursor = k
        await pilot.press("enter")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await settle(pilot, lambda: app.state.scene_current == "console-test",
                     "the recall")  # fmt: skip


def test_engine_lost_then_back(engine):
    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)
            with engine.stopped():
                await shows(pilot, app, "ENGINE LOST")
                await pilot.press("right", "up")  # keys still work, nothing waits
            await settle(pilot, lambda: app.state.connected and
                         "ENGINE LOST" not in screen_text(app), "reconnect")  # fmt: skip

    run(go())


def test_ctrl_z_takes_the_last_change_back(engine):
    async def go():
        app = ConsoleApp("127.0.0.1", engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await attached(pilot, app)
            before = query(engine.port, "/ch/04/mix/fader")
            await pilot.press("right", "right", "right")  # channel 4
            await pilot.press("end")  # -oo: one gesture...
            await engine_value(pilot, engine.port, "/ch/04/mix/fader", 0.0)
            await pilot.press("ctrl+z")  # ...taken back in one step
            await engine_value(pilot, engine.port, "/ch/04/mix/fader", before)
            await shows(pilot, app, "undone")

    run(go())


def test_a_frame_while_the_app_shuts_down_draws_nothing():
    """The redraw timer may fire while Textual takes the screens apart (their
    widgets gone, the screens still stacked): that frame draws nothing
    instead of failing on a missing widget (``NoMatches: '#channels'``)."""

    async def go():
        app = ConsoleApp(connect=False)
        prune, drawn = app._prune, []

        async def prune_then_draw(*nodes, parent=None):
            await prune(*nodes, parent=parent)
            app.state.version += 1  # news from the engine came in meanwhile
            app.frame()  # what the timer may do between two awaits of shutdown
            drawn.append(nodes)

        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.screen.ready, "the mixer on screen")
            app._prune = prune_then_draw
        assert drawn, "shutdown took no screen apart: the test saw nothing"

    run(go())

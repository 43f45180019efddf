"""The DCA and mute-group layers of the mixer view, driven by keys (Textual's
Pilot) against a real engine: every change is checked in the engine, asked
over OSC; members of a muted DCA or an engaged mute group read as muted
by it on their strips, not by their own mute."""

from __future__ import annotations

from console_helpers import (
    Client,
    console_run,
    engine_value,
    fader_norm,
    live_on,
    settle,
    shows,
)

from livesound.console.screens.mixer import MixerScreen
from livesound.console.widgets import strip as S


def _mute_cell(screen: MixerScreen, k: int) -> str:
    """What strip ``k`` of the channel bank shows where M is."""
    line = screen.channels.render_line(S.MUTE_ROW).text
    return line[k * S.WIDTH + 1]


def test_ride_and_mute_a_dca_and_engage_a_mute_group(tmp_path):
    async def body(app, pilot, engine):
        await live_on(pilot, app, MixerScreen)
        screen = app.screen
        await pilot.press("d")
        await shows(pilot, app, "moves its members")
        assert [s.label for s in screen.channels.specs[:2]] == ["DCA1", "DCA2"]
        await pilot.press("right", "0")  # DCA 2 to 0 dB, then 2 dB down
        await engine_value(pilot, engine.port, "/dca/2/fader", fader_norm(0.0))
        await pilot.press("down", "down")
        await engine_value(pilot, engine.port, "/dca/2/fader", fader_norm(-2.0))
        await pilot.press("m")
        await engine_value(pilot, engine.port, "/dca/2/on", 0)
        assert _mute_cell(screen, 1) == "M"
        # Input 3 joins DCA 2 (from another surface): on the inputs layer it
        # reads as muted by a DCA, its own mute still on.
        with Client(engine.port) as c:
            c.send("/ch/03/grp/dca", 0b10)
        await pilot.press("d")
        await shows(pilot, app, "MAIN MIX")
        await settle(pilot, lambda: _mute_cell(screen, 2) == "D", "input 3's D")
        assert _mute_cell(screen, 1) == "M" and app.state.get("/ch/03/mix/on") == 1
        # Mute group 4: engaged from its layer, input 2 a member.
        with Client(engine.port) as c:
            c.send("/ch/02/grp/mute", 0b1000)
        await pilot.press("g")
        await shows(pilot, app, "MUTE GROUPS")
        await pilot.press("right", "right", "right", "m")
        await engine_value(pilot, engine.port, "/config/mute/4", 1)
        await pilot.press("up")  # a mute group has no fader: nothing moves
        assert screen.current().fader is None
        await pilot.press("g")
        await shows(pilot, app, "MAIN MIX")
        await settle(pilot, lambda: _mute_cell(screen, 1) == "4", "input 2's 4")
        assert _mute_cell(screen, 0) == "M"  # input 1 is in no group

    console_run(tmp_path, body)

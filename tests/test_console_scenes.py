"""The scenes view never overwrites or discards work silently, and edits the
recall safes: Textual's Pilot against a real engine process."""

from __future__ import annotations

from console_helpers import console_run, fader_norm, query, screen_text, settle
from osc_helpers import Client

from livesound.console.app import ConsoleApp
from livesound.console.screens.dialogs import Confirm
from livesound.console.screens.scenes import ScenesScreen


async def scenes_view(pilot, app: ConsoleApp) -> None:
    await settle(pilot, app.state.live, "the console to read the show")
    await pilot.press("n")
    assert isinstance(app.screen, ScenesScreen)
    await settle(pilot, lambda: app.state.scenes, "the scene list")


async def save_as(pilot, name: str) -> None:
    await pilot.press("s", *name, "enter")


def test_saving_over_a_scene_asks_first(tmp_path):
    path = tmp_path / "scenes" / "verse.toml"

    async def body(app, pilot, engine):
        await scenes_view(pilot, app)
        await save_as(pilot, "verse")  # a new name: saved at once
        await settle(pilot, lambda: "verse" in app.state.scenes, "verse")
        first = path.read_text()
        with Client(engine.port) as c:  # the show changes
            c.send("/ch/02/mix/fader", fader_norm(-20.0))
            c.query("/ch/02/mix/fader")
        await save_as(pilot, "verse")
        assert isinstance(app.screen, Confirm)
        assert "overwrite" in screen_text(app)
        await pilot.press("n")  # no: the scene file is untouched
        await pilot.pause(0.3)
        assert path.read_text() == first
        await save_as(pilot, "verse")
        await pilot.press("y")
        await settle(pilot, lambda: path.read_text() != first, "overwrite")

    console_run(tmp_path, body)


def test_recall_says_how_many_unsaved_changes_it_discards(tmp_path):
    async def body(app, pilot, engine):
        await scenes_view(pilot, app)
        await save_as(pilot, "chorus")
        await settle(pilot, lambda: "chorus" in app.state.scenes, "chorus")
        await settle(pilot, lambda: app.state.unsaved == 0, "saved")
        with Client(engine.port) as c:  # two changes made elsewhere
            c.send("/ch/03/mix/fader", fader_norm(-30.0))
            c.send("/ch/04/mix/on", 0)
        await settle(pilot, lambda: app.state.unsaved == 2, "the pushes")
        app.screen.query_one("#scenes").cursor = app.state.scenes.index("chorus")
        await pilot.press("enter")
        assert isinstance(app.screen, Confirm)
        assert "2 unsaved changes" in screen_text(app)
        await pilot.press("n")
        await pilot.pause(0.3)
        assert query(engine.port, "/ch/04/mix/on") == 0  # nothing recalled

    console_run(tmp_path, body)


def test_safes_are_edited_from_the_scenes_view(tmp_path):
    async def body(app, pilot, engine):
        await scenes_view(pilot, app)
        await pilot.press("f", *"ch.07", "enter")
        await settle(pilot, lambda: "ch.07" in app.state.safes, "the safe")
        with Client(engine.port) as c:
            assert "ch.07" in c.request("/ls/scene/safes").args
        await settle(pilot, lambda: "ch.07" in screen_text(app), "shown")
        await pilot.press("f", *"ch.07", "enter")  # and free again
        await settle(pilot, lambda: "ch.07" not in app.state.safes, "freed")

    console_run(tmp_path, body)


def test_a_scene_note_is_written_shown_and_kept_when_saved_over(tmp_path):
    path = tmp_path / "scenes" / "verse.toml"

    async def body(app, pilot, engine):
        await scenes_view(pilot, app)
        await save_as(pilot, "verse")
        await settle(pilot, lambda: "verse" in app.state.scenes, "verse")
        while app.screen.query_one("#scenes").cursor != app.state.scenes.index("verse"):
            await pilot.press("down")
        await pilot.press("t")
        await pilot.press(*"capo 2, swap mic", "enter")
        await settle(pilot, lambda: 'notes = "capo 2, swap mic"' in path.read_text(),
                     "the note in the scene file")  # fmt: skip
        await settle(pilot, lambda: "capo 2, swap mic" in screen_text(app),
                     "the note under the list")  # fmt: skip
        with Client(engine.port) as c:  # the show changes, and is saved over
            c.send("/ch/02/mix/fader", fader_norm(-20.0))
            c.query("/ch/02/mix/fader")
        await save_as(pilot, "verse")
        await pilot.press("y")
        await settle(pilot, lambda: "fader_db = -20.0" in path.read_text(),
                     "the scene saved over")  # fmt: skip
        assert 'notes = "capo 2, swap mic"' in path.read_text()  # the note stays
        with Client(engine.port) as c:
            reply = c.request("/ls/scene/note", "verse")
        assert tuple(reply.args) == ("verse", "capo 2, swap mic"), reply

    console_run(tmp_path, body)

"""Engines found by name on the network (zeroconf): `livesound engines`
lists them, `livesound console --engine NAME` attaches to one, and a running
console moves from one engine to another without a restart (key E)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from console_helpers import SIZE, engine_with_scenes, live_on, query, run, settle
from osc_helpers import DEADLINE, EngineProcess, fader_norm, wait_until

from livesound.console.app import ConsoleApp
from livesound.console.screens.dialogs import Choose
from livesound.console.screens.mixer import MixerScreen


def named(tmp_path, name: str) -> EngineProcess:
    """A virtual engine advertised on the network as ``name``."""
    return EngineProcess("--name", name, "--scenes", str(tmp_path / name),
                         "--state-dir", str(tmp_path / f"state-{name}"),
                         discovery=True).start()  # fmt: skip


def livesound(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livesound", *args],
                          capture_output=True, text=True, timeout=DEADLINE)  # fmt: skip


def test_engines_are_listed_by_name_and_a_console_finds_one(tmp_path):
    tag = f"{os.getpid()}"
    foh, mon = named(tmp_path, f"foh-{tag}"), named(tmp_path, f"mon-{tag}")
    try:

        def listed() -> str | None:
            out = livesound("engines").stdout
            return out if f"foh-{tag}" in out and f"mon-{tag}" in out else None

        out = wait_until(listed, DEADLINE, "both engines in `livesound engines`")
        lines = {line.split()[0]: line.split()[1] for line in out.splitlines()}
        assert lines[f"foh-{tag}"].endswith(f":{foh.port}")
        assert lines[f"mon-{tag}"].endswith(f":{mon.port}")
        missing = livesound("console", "--engine", f"nobody-{tag}")
        assert missing.returncode == 1
        assert f"no engine called 'nobody-{tag}'" in missing.stderr
        assert f"foh-{tag}" in missing.stderr and "Traceback" not in missing.stderr
    finally:
        foh.stop()
        mon.stop()


def test_the_console_moves_to_another_engine_without_a_restart(tmp_path):
    tag = f"{os.getpid()}"
    first = engine_with_scenes(tmp_path / "a", "--name", f"stage-a-{tag}")
    second = named(tmp_path, f"stage-b-{tag}")
    before = query(first.port, "/ch/01/mix/fader")

    async def go() -> None:
        app = ConsoleApp(port=first.port)
        async with app.run_test(size=SIZE) as pilot:
            await live_on(pilot, app, MixerScreen)
            assert app.state.status.engine == f"stage-a-{tag}"
            await pilot.press("E")
            # Zeroconf announcements take a moment: look again until it shows.
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline:
                dialog = await settle(pilot, lambda: isinstance(app.screen, Choose)
                                      and app.screen, "the engines dialog")  # fmt: skip
                names = [name for name, _ in dialog.options]
                if f"stage-b-{tag}" in names:
                    break
                await pilot.press("escape")
                await pilot.press("E")
            assert f"stage-b-{tag}" in names, names
            await pilot.press(str(names.index(f"stage-b-{tag}") + 1))
            await settle(pilot, lambda: app.state.status.engine == f"stage-b-{tag}",
                         "the console on the second engine")  # fmt: skip
            await live_on(pilot, app, MixerScreen)
            await pilot.press("home")  # strip 1 to 0 dB: on the second engine
            await settle(pilot, lambda: abs(query(second.port, "/ch/01/mix/fader")
                                            - fader_norm(0.0)) < 2e-3,
                         "the second engine to take the fader")  # fmt: skip

    try:
        run(go())
        assert query(first.port, "/ch/01/mix/fader") == before
    finally:
        first.stop()
        second.stop()

"""Helpers for the console tests: a real engine, OSC queries, the console's
screen as text, and waits that let the app's loop run meanwhile. Every wait
has the suite's one deadline (``osc_helpers.DEADLINE``)."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osc_helpers import (  # noqa: F401 (re-exported for the console tests)
    DEADLINE,
    Client,
    EngineProcess,
    fader_norm,
    stats,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 40)  # the terminal the console tests draw in


def engine_with_scenes(tmp_path: Path, *extra: str, inputs: int = 8,
                       buses: int = 4) -> EngineProcess:  # fmt: skip
    """A started engine on the virtual stage whose scene folder is a private
    copy of the shipped scenes (so saving never touches the repository)."""
    scenes = tmp_path / "scenes"
    shutil.copytree(ROOT / "scenes", scenes)
    return EngineProcess("--scenes", str(scenes), *extra, inputs=inputs,
                         buses=buses).start()  # fmt: skip


def query(port: int, address: str) -> Any:
    """The engine's value of ``address`` (its OSC argument), asked afresh."""
    with Client(port) as c:
        return c.query(address)


async def settle(pilot, pred: Callable[[], Any], what: str = "") -> Any:
    """Let the app run until ``pred`` is true (its loop keeps going meanwhile)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE} s waiting for {what}")
        await pilot.pause(0.02)


async def engine_value(pilot, port: int, address: str, expected: Any,
                       tol: float = 2e-3) -> Any:  # fmt: skip
    """Wait until the engine (asked over OSC) holds ``expected`` at ``address``."""
    seen = []

    def ok() -> bool:
        value = query(port, address)
        seen.append(value)
        if isinstance(expected, float):
            return abs(value - expected) <= tol
        return value == expected

    try:
        return await settle(pilot, ok, f"{address} == {expected}")
    except AssertionError:
        raise AssertionError(
            f"{address}: engine has {seen[-1:]}, expected {expected}"
        ) from None


def screen_text(app) -> str:
    """What the app's current screen shows, as plain text lines."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(s.text for s in strips)


async def shows(pilot, app, text: str) -> str:
    """Wait until the app's screen shows ``text``; returns the screen."""
    return await settle(pilot, lambda: text in (s := screen_text(app)) and s,
                        f"{text!r} on screen")  # fmt: skip


def run(coro) -> Any:
    """Run a test coroutine on a fresh event loop."""
    return asyncio.run(coro)


async def live_on(pilot, app, screen: type) -> None:
    """Wait until the console has read the show and shows a mounted ``screen``."""
    await settle(pilot, app.state.live, "the console to read the show")
    await settle(pilot, lambda: isinstance(app.screen, screen) and app.screen.ready,
                 f"the {screen.__name__}")  # fmt: skip


def console_run(tmp_path: Path, body: Callable, *extra: str) -> None:
    """Run ``await body(app, pilot, engine)`` in a console attached to a fresh
    engine (8 inputs, 4 buses, the shipped scenes, ``extra`` options),
    stopping the engine after."""
    from livesound.console.app import ConsoleApp

    engine = engine_with_scenes(tmp_path, *extra)

    async def go() -> None:
        app = ConsoleApp(port=engine.port)
        async with app.run_test(size=SIZE) as pilot:
            await body(app, pilot, engine)

    try:
        run(go())
    finally:
        engine.stop()

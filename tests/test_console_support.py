"""Helpers for the console tests: a real engine, OSC queries, the console's
screen as text. (No tests here; the name keeps it with the console tests.)"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osc_helpers import Client, EngineProcess, fader_norm, wait_until  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def engine_with_scenes(tmp_path: Path, *extra: str, inputs: int = 8,
                       buses: int = 4) -> EngineProcess:  # fmt: skip
    """A started engine on the virtual stage whose scene folder is a private
    copy of the shipped scenes (so saving never touches the repository)."""
    scenes = tmp_path / "scenes"
    shutil.copytree(ROOT / "scenes", scenes)
    return EngineProcess("--scenes", str(scenes), *extra, inputs=inputs,
                         buses=buses).start()  # fmt: skip


def query(port: int, address: str, timeout: float = 2.0) -> Any:
    """The engine's value of ``address`` (its OSC argument), asked afresh."""
    with Client(port) as c:
        return c.query(address, timeout)


def stats(port: int) -> dict:
    import json

    with Client(port) as c:
        return json.loads(c.query("/ls/stats"))


def wait_for(pred: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``pred`` (in a plain thread of control) until it is true."""
    return wait_until(pred, timeout, what)


async def settle(pilot, pred: Callable[[], Any], timeout: float = 10.0,
                 what: str = "") -> Any:  # fmt: skip
    """Let the app run until ``pred`` is true (its loop keeps going meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.02)


async def engine_value(pilot, port: int, address: str, expected: Any,
                       tol: float = 2e-3, timeout: float = 5.0) -> Any:  # fmt: skip
    """Wait until the engine (asked over OSC) holds ``expected`` at ``address``."""
    seen = []

    def ok() -> bool:
        value = query(port, address)
        seen.append(value)
        if isinstance(expected, float):
            return abs(value - expected) <= tol
        return value == expected

    try:
        return await settle(pilot, ok, timeout, f"{address} == {expected}")
    except AssertionError:
        raise AssertionError(
            f"{address}: engine has {seen[-1:]}, expected {expected}"
        ) from None


def screen_text(app) -> str:
    """What the app's current screen shows, as plain text lines."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(s.text for s in strips)


def run(coro) -> Any:
    """Run a test coroutine on a fresh event loop."""
    return asyncio.run(coro)

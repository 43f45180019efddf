"""Snapshot tests of the console's main screens at 120x40 and 80x24.

The app runs on the fixed demo show (no engine, no clock), so a snapshot
changes only when the drawing does. Update after an intended change with
``pytest tests/test_console_snapshots.py --snapshot-update`` and look at the
report before committing.
"""

from __future__ import annotations

import pytest

from livesound.virtual.demo import SCREENS, DemoApp


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_layout(snap_compare, screen, size):
    assert snap_compare(DemoApp(), press=SCREENS[screen], terminal_size=size)

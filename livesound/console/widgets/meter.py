"""Meter and fader glyphs: one terminal cell of a vertical bar at a time.

Bars use the eighth-block characters, so a 20-row meter resolves 160
steps. Colours follow the usual desk zones: green up to -18 dBFS, yellow
to -6, red above.
"""

from __future__ import annotations

import math

from rich.style import Style

from livesound.control.taper import db_to_fader, fader_to_db

METER_TOP_DB = 0.0
METER_BOTTOM_DB = -60.0
PARTIAL = " ▁▂▃▄▅▆▇█"

GREEN, YELLOW, RED = "#3fbf3f", "#e0c020", "#ff3030"
DIM = {GREEN: "#1f5f1f", YELLOW: "#6f6010", RED: "#7f1818"}
_STYLES: dict[tuple[str, str | None], Style] = {}


def style(fg: str, bg: str | None = None, bold: bool = False) -> Style:
    """A cached Style: building Styles per cell would dominate a frame."""
    key = (fg + ("!" if bold else ""), bg)
    s = _STYLES.get(key)
    if s is None:
        s = _STYLES[key] = Style(color=fg, bgcolor=bg, bold=bold)
    return s


def level(db: float, height: int) -> int:
    """Eighths of a cell lit for ``db`` on a meter ``height`` cells tall."""
    if not db > METER_BOTTOM_DB:  # also catches NaN
        return 0
    frac = (min(db, METER_TOP_DB) - METER_BOTTOM_DB) / (METER_TOP_DB - METER_BOTTOM_DB)
    return round(frac * height * 8)


def zone(row: int, height: int) -> str:
    """Colour of the meter's ``row`` (0 = top) by the dB it stands for."""
    db = METER_TOP_DB - (row + 0.5) / height * (METER_TOP_DB - METER_BOTTOM_DB)
    return RED if db > -6.0 else YELLOW if db > -18.0 else GREEN


def bar_cell(lit: int, row: int, height: int) -> str:
    """The character of ``row`` (0 = top) of a bar with ``lit`` eighths lit."""
    bottom = (height - 1 - row) * 8
    n = lit - bottom
    return PARTIAL[max(0, min(8, n))]


def hold_row(db: float, height: int) -> int:
    """Row (0 = top) that shows a peak hold of ``db``; -1 if below the meter."""
    lit = level(db, height)
    if lit <= 0:
        return -1
    return height - 1 - (lit - 1) // 8


def fader_row(value_db: float, height: int) -> int:
    """Row (0 = top) of a fader knob at ``value_db`` on the X32 fader law."""
    if value_db is None or value_db == -math.inf or value_db <= -90.0:
        return height - 1
    f = db_to_fader(value_db)
    return min(height - 1, max(0, round((1.0 - f) * (height - 1))))


SCALE_DB = (10.0, 0.0, -10.0, -20.0, -30.0, -50.0)  # an X32 fader's printed marks


def scale_rows(height: int) -> dict[int, float]:
    """Rows of the fader scale's marks on a ``height``-row meter (0 dB wins a
    row two marks share)."""
    marks: dict[int, float] = {}
    for db in SCALE_DB:
        row = fader_row(db, height)
        if row not in marks or db == 0.0:
            marks[row] = db
    return marks


def fader_at(row: int, height: int) -> float:
    """The fader level (dB) a knob at ``row`` of a ``height``-row meter stands for;
    the bottom row is off (−∞)."""
    if row >= height - 1:
        return -math.inf
    f = 1.0 - max(0, row) / max(1, height - 1)
    return round(fader_to_db(f), 1)


def db_text(value: float | None, width: int = 5) -> str:
    """A level as a desk prints it: +3.0, -12.5, -oo."""
    if value is None or value == -math.inf or value <= -90.0:
        text = "-oo"
    else:
        text = f"{value:+.1f}" if abs(value) < 100 else f"{value:+.0f}"
    return text.center(width)[:width]

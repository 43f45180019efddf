"""Frequency plots in braille dots: EQ curves, notch banks, spectra.

Each cell holds 2x4 dots, so a 60x10 plot draws 120x40 points: enough to
read a 1/10-octave notch or a shelf at a glance.
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

F_LO, F_HI = 20.0, 20000.0
BRAILLE = 0x2800
# Dot bit for (column 0/1, row 0..3) inside one braille cell.
DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
GRID_HZ = (100.0, 1000.0, 10000.0)


def log_freqs(n: int) -> np.ndarray:
    """``n`` frequencies evenly spaced in octaves from 20 Hz to 20 kHz."""
    return np.geomspace(F_LO, F_HI, n)


class FreqPlot(Widget):
    """A curve (and optional bars behind it) over 20 Hz..20 kHz, ``lo``..``hi`` dB."""

    DEFAULT_CSS = """
    FreqPlot { height: 10; background: #0c0c14; }
    """

    def __init__(self, lo: float = -18.0, hi: float = 18.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lo, self.hi = lo, hi
        self.curve: np.ndarray | None = None  # dB at log_freqs(2 * width)
        self.bars: np.ndarray | None = None  # dB at any number of log-spaced bands
        self.bars_lo, self.bars_hi = -90.0, 0.0
        self.title = ""
        self._lines: list[Strip] | None = None

    def show(self, curve: np.ndarray | None, bars: np.ndarray | None = None,
             title: str = "") -> None:  # fmt: skip
        """Draw ``curve`` (sampled at ``log_freqs(self.points)``) over ``bars``."""
        self.curve, self.bars, self.title = curve, bars, title
        self._lines = None
        self.refresh()

    @property
    def points(self) -> int:
        return max(2, 2 * self.size.width)

    def _build(self) -> list[Strip]:
        w, h = self.size
        if w <= 0 or h <= 0:
            return []
        cells = np.zeros((h, w), dtype=np.int32)
        bar_rows = np.full(w, h)  # first row (from the top) a bar fills
        if self.bars is not None and len(self.bars):
            bands = np.interp(np.linspace(0, len(self.bars) - 1, w),
                              np.arange(len(self.bars)), self.bars)  # fmt: skip
            frac = (bands - self.bars_lo) / (self.bars_hi - self.bars_lo)
            bar_rows = np.round((1 - np.clip(frac, 0, 1)) * h).astype(int)
        if self.curve is not None and len(self.curve):
            ys = np.interp(np.linspace(0, len(self.curve) - 1, 2 * w),
                           np.arange(len(self.curve)), self.curve)  # fmt: skip
            frac = (ys - self.lo) / (self.hi - self.lo)
            dots = np.round((1 - np.clip(frac, 0, 1)) * (4 * h - 1)).astype(int)
            prev = dots[0]
            for x, y in enumerate(dots):
                # Join steep steps with a vertical run so a notch reads as one.
                for yy in range(min(prev, y), max(prev, y) + 1):
                    cells[yy // 4, x // 2] |= DOTS[x % 2][yy % 4]
                prev = y
        zero = (self.hi / (self.hi - self.lo)) * h if self.hi > 0 > self.lo else -1
        grid = {int(np.log(f / F_LO) / np.log(F_HI / F_LO) * w) for f in GRID_HZ}
        curve_style = Style(color="#60d0ff", bgcolor="#0c0c14")
        bar_style = Style(color="#305030", bgcolor="#0c0c14")
        grid_style = Style(color="#303040", bgcolor="#0c0c14")
        lines = []
        for r in range(h):
            segs = []
            for x in range(w):
                c = cells[r, x]
                if c:
                    segs.append(Segment(chr(BRAILLE + c), curve_style))
                elif r >= bar_rows[x]:
                    segs.append(Segment("█", bar_style))
                elif int(zero) == r:
                    segs.append(Segment("┄", grid_style))
                elif x in grid:
                    segs.append(Segment("┆", grid_style))
                else:
                    segs.append(Segment(" ", grid_style))
            lines.append(Strip(segs, w))
        axis = Style(color="#8080a0", bgcolor="#0c0c14")
        # Axes: frequencies under the grid lines on the bottom row, dB at the right
        # edge of the top, 0 dB and bottom rows.
        if h >= 3 and w >= 12:
            for f in GRID_HZ:
                x = int(np.log(f / F_LO) / np.log(F_HI / F_LO) * w)
                lines[-1] = _overlay(lines[-1], x, _hz(f), axis, w)
            marks = {0: self.hi, h - 2: self.lo}
            if zero >= 0:
                marks[min(h - 3, int(zero))] = 0.0
            for r, db in marks.items():
                text = f"{db:+.0f}dB" if db else "0dB"
                lines[r] = _overlay(lines[r], w - len(text), text, axis, w)
        if self.title and lines:
            label = Segment(
                f" {self.title} "[:w], Style(color="#a0a0b0", bgcolor="#0c0c14")
            )
            lines[0] = Strip([label, *lines[0].crop(label.cell_length, w)], w)
        return lines

    def render_line(self, y: int) -> Strip:
        if self._lines is None or len(self._lines) != self.size.height:
            self._lines = self._build()
        return (
            self._lines[y]
            if 0 <= y < len(self._lines)
            else Strip.blank(self.size.width)
        )


def _hz(f: float) -> str:
    return f"{f / 1000:g}kHz" if f >= 1000 else f"{f:g}Hz"


def _overlay(line: Strip, x: int, text: str, style: Style, width: int) -> Strip:
    """``line`` with ``text`` written over it from cell ``x``."""
    x = max(0, min(x, width - len(text)))
    return Strip(
        [*line.crop(0, x), Segment(text, style), *line.crop(x + len(text), width)],
        width,
    )

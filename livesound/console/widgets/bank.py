"""A bank of channel strips side by side, drawn line by line.

One widget draws the whole bank (Textual's line API) rather than one
widget per strip: at 30 frames a second a single render pass over the
bank costs far less than dozens of widgets each laid out and composited.
"""

from __future__ import annotations

import time

from rich.segment import Segment
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from livesound.console.state import ConsoleState
from livesound.console.widgets import strip as S
from livesound.console.widgets.meter import fader_at, scale_rows

SCALE_W = 4  # the fader scale's numbers, right of the strips where there is room


class StripBank(Widget):
    """Strips ``specs`` of which as many as fit are shown, ``selected`` kept in view."""

    DEFAULT_CSS = """
    StripBank { height: 1fr; width: 1fr; background: #101018; }
    """

    class Clicked(Message):
        """A strip was clicked: ``index`` in the bank, ``part`` mute/solo/strip."""

        def __init__(self, bank: StripBank, index: int, part: str) -> None:
            super().__init__()
            self.bank, self.index, self.part = bank, index, part

    class Dragged(Message):
        """A fader dragged with the mouse to ``db`` (−∞ at the bottom)."""

        def __init__(self, bank: StripBank, index: int, db: float) -> None:
            super().__init__()
            self.bank, self.index, self.db = bank, index, db

    class Wheel(Message):
        """The mouse wheel over a strip: ``steps`` up (+) or down (-)."""

        def __init__(self, bank: StripBank, index: int, steps: int) -> None:
            super().__init__()
            self.bank, self.index, self.steps = bank, index, steps

    def __init__(self, state: ConsoleState, specs: list[S.StripSpec] | None = None,
                 **kwargs) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.state = state
        self.specs: list[S.StripSpec] = specs or []
        self.selected: int | None = None
        self.first = 0
        self._lines: list[Strip] | None = None
        self.frames = 0
        self._dragging: int | None = None  # the strip whose fader the mouse holds

    @property
    def visible(self) -> int:
        """How many strips fit."""
        return max(1, self.size.width // S.WIDTH)

    def set_specs(self, specs: list[S.StripSpec]) -> None:
        self.specs = specs
        self.first = min(self.first, max(0, len(specs) - 1))
        self.redraw()

    def select(self, index: int | None) -> None:
        """Highlight strip ``index`` (None: none) and scroll it into view."""
        self.selected = index
        if index is not None:
            n = self.visible
            # Page in whole banks, as a desk's bank buttons do.
            if not self.first <= index < self.first + n:
                self.first = (index // n) * n
        self.redraw()

    def page(self, step: int) -> None:
        """Show the next (+1) or previous (-1) bank of strips."""
        n = self.visible
        self.first = max(0, min(self.first + step * n, (len(self.specs) - 1) // n * n))
        self.redraw()

    def redraw(self) -> None:
        """Draw again from the state at the next refresh."""
        self._lines = None
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self.selected is not None:
            self.select(self.selected)
        self.redraw()

    def _build(self) -> list[Strip]:
        width, height = self.size
        now = time.monotonic()
        st = self.state
        # The engine's shape may have just changed (a resync after a restart)
        # and the screen not yet laid out anew: draw only strips that exist.
        shown = [s for s in self.specs[self.first : self.first + self.visible]
                 if s.meter is None or s.index + s.stereo
                 < (st.inputs if s.meter == "in" else st.outputs).n]  # fmt: skip
        columns = [
            S.draw(spec, st, height, self.first + k == self.selected, now)
            for k, spec in enumerate(shown)
        ]
        pad = width - len(shown) * S.WIDTH
        bg = S.style(S.FG, S.BG)
        dim = S.style(S.FG_DIM, S.BG)
        meter_h = max(1, height - S.HEAD_ROWS - S.FOOT_ROWS)
        marks = scale_rows(meter_h) if pad >= SCALE_W else {}
        lines = []
        for y in range(height):
            segs: list[Segment] = []
            for col in columns:
                if y < len(col):
                    segs.extend(col[y])
            mark = marks.get(y - S.HEAD_ROWS)
            if mark is not None:
                segs.append(Segment(f"{mark:+.0f}".rjust(SCALE_W - 1) + " " if mark
                                    else "  0 ", dim))  # fmt: skip
                segs.append(Segment(" " * (pad - SCALE_W), bg))
            elif pad > 0:
                segs.append(Segment(" " * pad, bg))
            lines.append(Strip(_merged(segs), width))
        self.frames += 1
        return lines

    def render_line(self, y: int) -> Strip:
        if self._lines is None or len(self._lines) != self.size.height:
            self._lines = self._build()
        if 0 <= y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self.size.width)

    def _strip_at(self, x: int) -> int | None:
        k = self.first + x // S.WIDTH
        return k if x // S.WIDTH < self.visible and k < len(self.specs) else None

    def on_click(self, event: events.Click) -> None:
        k = self._strip_at(event.x)
        if k is None:
            return
        x = event.x % S.WIDTH
        part = "strip"
        if event.y == S.MUTE_ROW:
            part = "mute" if x <= 2 else "solo"
        self.post_message(self.Clicked(self, k, part))

    def _meter_rows(self) -> int:
        return max(1, self.size.height - S.HEAD_ROWS - S.FOOT_ROWS)

    def _drag_to(self, k: int, y: int) -> None:
        row = min(max(0, y - S.HEAD_ROWS), self._meter_rows() - 1)
        self.post_message(self.Dragged(self, k, fader_at(row, self._meter_rows())))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        k = self._strip_at(event.x)
        if k is None or not S.HEAD_ROWS <= event.y < S.HEAD_ROWS + self._meter_rows():
            return
        self._dragging = k
        self.capture_mouse()
        self._drag_to(k, event.y)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._dragging is not None:
            self._drag_to(self._dragging, event.y)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._dragging is not None:
            self._dragging = None
            self.release_mouse()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        k = self._strip_at(event.x)
        if k is not None:
            self.post_message(self.Wheel(self, k, 1))

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        k = self._strip_at(event.x)
        if k is not None:
            self.post_message(self.Wheel(self, k, -1))


_BLANK_STYLES: dict = {}


def _merged(segs: list[Segment]) -> list[Segment]:
    """Join neighbours of one style, blanks of one background first.

    A strip row is a dozen one-cell segments; every segment costs again in
    Textual's filters, compositor and terminal output, so fewer, longer
    segments make the whole frame cheaper.
    """
    out: list[Segment] = []
    text, style = "", None
    for seg in segs:
        t, st = seg.text, seg.style
        if t.isspace():
            # A blank cell shows only its background.
            bg = st.bgcolor if st is not None else None
            st = _BLANK_STYLES.get(bg)
            if st is None:
                st = _BLANK_STYLES[bg] = S.style(S.FG, bg.name if bg else None)
        if st is style:
            text += t
        else:
            if text:
                out.append(Segment(text, style))
            text, style = t, st
    if text:
        out.append(Segment(text, style))
    return out

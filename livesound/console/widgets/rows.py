"""A list of text rows with a cursor: parameters, outputs, notches.

Rows come from a callable, so the list always shows the state as it is
now; the screen that owns the list handles the keys.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

Row = list[tuple[str, str]]  # (text, colour) cells, laid out left to right


class RowList(Widget, can_focus=True):
    """Rows from ``source()``; ``cursor`` is the selected row."""

    DEFAULT_CSS = """
    RowList { height: 1fr; background: #101018; }
    RowList:focus { background: #141420; }
    """

    class Picked(Message):
        """The cursor moved to ``index`` (by key or click)."""

        def __init__(self, rows: RowList, index: int) -> None:
            super().__init__()
            self.rows, self.index = rows, index

    def __init__(self, source: Callable[[], list[Row]], **kwargs) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.cursor = 0
        self.top = 0
        self._rows: list[Row] = []

    def redraw(self) -> None:
        self._rows = self.source()
        self.cursor = max(0, min(self.cursor, len(self._rows) - 1))
        h = max(1, self.size.height)
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + h:
            self.top = self.cursor - h + 1
        self.refresh()

    def move(self, step: int) -> None:
        """Move the cursor by ``step`` rows."""
        self.cursor = max(0, min(self.cursor + step, len(self._rows) - 1))
        self.redraw()
        self.post_message(self.Picked(self, self.cursor))

    def on_mount(self) -> None:
        self.redraw()

    def on_resize(self, event: events.Resize) -> None:
        self.redraw()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        k = self.top + y
        if not 0 <= k < len(self._rows):
            return Strip.blank(width)
        selected = k == self.cursor
        bg = ("#305080" if self.has_focus else "#283048") if selected else None
        segs = [Segment(text, Style(color=colour or None, bgcolor=bg,
                                    bold=selected)) for text, colour in self._rows[k]]  # fmt: skip
        used = sum(len(t) for t, _ in self._rows[k])
        if used < width:
            segs.append(Segment(" " * (width - used), Style(bgcolor=bg)))
        return Strip(segs).crop(0, width)

    def on_click(self, event: events.Click) -> None:
        k = self.top + event.y
        if 0 <= k < len(self._rows):
            self.cursor = k
            self.redraw()
            self.post_message(self.Picked(self, k))

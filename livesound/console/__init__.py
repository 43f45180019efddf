"""The show console: a Textual terminal UI, an OSC client of the engine.

The console holds a local copy of the engine's state (``state``), fed by an
asynchronous OSC link (``link``); screens redraw from that copy on a timer,
so nothing on screen ever waits for the network.
"""

"""The console's link driven by hand: datagrams in, ticks at chosen times, and
what it sends read back (no network, no clock of its own)."""

from __future__ import annotations

import time

from osc_helpers import msg
from pythonosc.osc_packet import OscPacket

from livesound.console.link import LOST_S, PROBE_S, Link
from livesound.console.state import ConsoleState


class Wire:
    """Stands in for the link's UDP transport: keeps the addresses sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def sendto(self, data: bytes) -> None:
        self.sent += [m.message.address for m in OscPacket(data).messages]


def test_the_size_probe_waits_for_every_answer_and_asks_again_for_lost_ones():
    state = ConsoleState(32, 16)
    link = Link(state, pair="4711")
    link.transport = wire = Wire()
    t0 = time.monotonic()
    link.handle(msg("/ls/stats", "{}"))  # the engine answers: probe its size
    names = [a for a in wire.sent if a.endswith("/config/name")]
    assert len(names) == 128 + 16
    lost = "/ch/03/config/name"  # past the last strip, its answer lost
    for address in names:
        if address in ("/ch/01/config/name", "/ch/02/config/name",
                       "/bus/01/config/name", "/bus/02/config/name"):  # fmt: skip
            link.handle(msg(address, "x"))
        elif address != lost:
            link.handle(msg("/ls/error", address, "unknown address"))
    # Long after the first probe window, one answer is still missing: the
    # console neither sizes itself nor pairs yet; it asks again.
    later = t0 + 0.9 * LOST_S  # not yet "engine lost"
    assert later > t0 + PROBE_S
    wire.sent.clear()
    link.tick(later)
    assert (state.n_in, state.n_bus) == (32, 16)
    assert wire.sent[:1] == [lost] and "/ls/pair" not in wire.sent
    link.handle(msg("/ls/error", lost, "unknown address"))
    link.tick(time.monotonic())
    assert (state.n_in, state.n_bus) == (2, 2)
    assert "/ls/pair" in wire.sent

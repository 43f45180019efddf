"""OSC on the wire: the one builder of messages and bundles.

The engine's server, the console, the CLI and the benchmarks all build
their datagrams here; python-osc does the encoding.
"""

import struct
from collections.abc import Iterable
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder

# "#bundle", then the time tag 1: "immediately" in OSC 1.0.
BUNDLE_HEAD = b"#bundle\0" + (1).to_bytes(8, "big")


def message(address: str, *args: Any) -> bytes:
    """One OSC message.

    Each argument is a ``(type tag, value)`` pair, or a plain Python value
    typed the way python-osc types it (int ``i``, float ``f``, str ``s``,
    bytes ``b``, bool ``T``/``F``).
    """
    b = OscMessageBuilder(address)
    for a in args:
        if isinstance(a, tuple):
            b.add_arg(a[1], a[0])
        else:
            b.add_arg(a)
    return b.build().dgram


def bundle(messages: Iterable[bytes]) -> bytes:
    """Messages in one datagram (one syscall, one wake-up of the receiver),
    to be handled at once."""
    return BUNDLE_HEAD + b"".join(struct.pack(">i", len(m)) + m for m in messages)

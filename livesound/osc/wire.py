"""OSC on the wire: the one builder of messages and bundles.

The engine's server, the console, the CLI and the benchmarks all build
their datagrams here.
"""

import numbers
import struct
from collections.abc import Iterable
from typing import Any

# "#bundle", then the time tag 1: "immediately" in OSC 1.0.
BUNDLE_HEAD = b"#bundle\0" + (1).to_bytes(8, "big")


def _padded(data: bytes) -> bytes:
    """OSC strings end in NUL and are padded to 4 bytes."""
    return data + b"\0" * (4 - len(data) % 4)


_PACK = {"i": struct.Struct(">i").pack, "f": struct.Struct(">f").pack,
         "h": struct.Struct(">q").pack, "d": struct.Struct(">d").pack}  # fmt: skip
_NO_DATA = {"T", "F", "N"}


def typed(value: Any, *, x32: bool = False) -> tuple[str, Any]:
    """The type tag a plain Python value goes out with: python-osc's (bool as
    ``T``/``F``), or with ``x32`` the X32's, which has no ``T``/``F`` (bool as
    ``i``)."""
    if isinstance(value, bool):
        return ("i", int(value)) if x32 else ("T" if value else "F", value)
    if isinstance(value, int):
        return "i", value
    if isinstance(value, str):
        return "s", value
    if isinstance(value, bytes | bytearray):
        return "b", bytes(value)
    if value is None:
        return "N", None
    if isinstance(value, numbers.Real):
        return "f", float(value)
    raise ValueError(f"no OSC type for {type(value).__name__}")


def message(address: str, *args: Any) -> bytes:
    """One OSC message.

    Each argument is a ``(type tag, value)`` pair, or a plain Python value
    typed the way python-osc types it (int ``i``, float ``f``, str ``s``,
    bytes ``b``, bool ``T``/``F``). Encoded directly: replies are the
    server's busiest path (a client reading the whole tree asks for
    thousands at connect), and python-osc's builder took a third of a
    query's cost.
    """
    typed_args = [a if isinstance(a, tuple) else typed(a) for a in args]
    out = [
        _padded(address.encode()),
        _padded(("," + "".join(t for t, _ in typed_args)).encode()),
    ]
    for tag, value in typed_args:
        if tag in _PACK:
            out.append(_PACK[tag](value))
        elif tag == "s":
            out.append(_padded(str(value).encode()))
        elif tag == "b":
            out.append(_PACK["i"](len(value)) + value + b"\0" * (-len(value) % 4))
        elif tag not in _NO_DATA:
            raise ValueError(f"no OSC encoding for type tag {tag!r}")
    return b"".join(out)


def bundle(messages: Iterable[bytes]) -> bytes:
    """Messages in one datagram (one syscall, one wake-up of the receiver),
    to be handled at once."""
    return BUNDLE_HEAD + b"".join(struct.pack(">i", len(m)) + m for m in messages)

"""The whole show in one request: ``/ls/snapshot``.

A surface that attaches asks once and gets every value it may read, with
the engine's size, as zlib-compressed JSON split into numbered parts
(``/ls/snapshot ,iiib ID PART COUNT BLOB``). A 32x16 show (about 4,900
values) is two datagrams instead of 4,900 answers paced under the rate
limit. Values are in engineering units (dB, Hz, names), as the Mixer holds
them; JSON's ``-Infinity`` carries a fader at −∞.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ADDRESS = "/ls/snapshot"
PART_BYTES = 8192  # well under the 16 KiB the engine itself accepts per datagram
MAX_PARTS = 64  # a bigger answer than any show could need is refused unread


@dataclass(frozen=True)
class Snapshot:
    """What one snapshot says: the engine's size and every value."""

    n_in: int
    n_bus: int
    values: dict[str, Any]


def encode(values: Mapping[str, Any], n_in: int, n_bus: int) -> list[bytes]:
    """The compressed parts of a snapshot, each at most ``PART_BYTES``."""
    text = json.dumps({"n_in": n_in, "n_bus": n_bus, "values": dict(values)})
    packed = zlib.compress(text.encode(), 6)
    return [packed[k : k + PART_BYTES] for k in range(0, len(packed), PART_BYTES)]


def decode(parts: list[bytes]) -> Snapshot:
    """The snapshot from its parts in order (ValueError if they don't make one)."""
    try:
        data = json.loads(zlib.decompress(b"".join(parts)))
        return Snapshot(int(data["n_in"]), int(data["n_bus"]), dict(data["values"]))
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"broken snapshot: {exc}") from None


@dataclass
class Assembler:
    """Collects the parts of the snapshot a surface asked for.

    Parts of another request (an older ``ident``) are ignored, so a retry
    never mixes two snapshots.
    """

    ident: int = 0
    parts: dict[int, bytes] = field(default_factory=dict)

    def expect(self, ident: int) -> None:
        """Start waiting for the snapshot of request ``ident``."""
        self.ident = ident
        self.parts.clear()

    def take(self, args: list) -> Snapshot | None:
        """One ``/ls/snapshot`` message; the snapshot once every part is in."""
        if len(args) != 4 or not isinstance(args[3], bytes):
            return None
        ident, part, count, blob = args
        if ident != self.ident or not 0 <= part < count <= MAX_PARTS:
            return None
        self.parts[part] = blob
        if len(self.parts) < count:
            return None
        ordered = [self.parts[k] for k in range(count) if k in self.parts]
        self.parts.clear()
        if len(ordered) != count:
            return None
        return decode(ordered)

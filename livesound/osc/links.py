"""Stereo-linked bus pairs over OSC, as the X32 handles them.

With ``/config/buslink/1-2 1`` buses 1 and 2 are one stereo mix (an in-ear
pair): the odd bus's settings drive both halves. As on the X32, a write to
either half of a linked setting lands on both (``mirror``), so a client
that shows bus 2 sees what is really playing; and the pair belongs to the
performer of its odd mix (``owner``): ``performer:1`` may change both
halves, ``performer:2`` neither while the link is on.

Mirrored: the sends into the pair (``/ch/NN/mix/MM/on|level``; pan and tap
exist on the odd bus only), the buses' master, mute, balance, EQ, sends
into the matrices and DCA and mute-group membership, and their limiter and
alignment delay. Names stay each bus's own; notches belong to
the feedback suppressor.
"""

import re
from collections.abc import Callable

# The bus number is group 1; the rest of the address is the same on both halves.
_MIRRORED = (
    re.compile(r"/ch/\d\d/mix/(\d\d)/(?:on|level)"),
    re.compile(
        r"/bus/(\d\d)/(?:mix/(?:on|fader|pan|\d\d/(?:on|level))|eq/.+"
        r"|grp/(?:dca|mute))"
    ),
    re.compile(r"/ls/bus/(\d\d)/(?:limiter/.+|delay/time)"),
)


def link_address(mix: int) -> str:
    """The address that links ``mix`` (1-based) with its partner."""
    first = mix - (mix + 1) % 2
    return f"/config/buslink/{first}-{first + 1}"


def owner(mix: int, is_linked: Callable[[str], bool]) -> int:
    """The mix whose performer owns ``mix``: the odd one of a linked pair."""
    return mix - (mix + 1) % 2 if is_linked(link_address(mix)) else mix


def mirror(address: str, is_linked: Callable[[str], bool]) -> str | None:
    """The same setting on the other half of a linked pair, else None."""
    for pattern in _MIRRORED:
        m = pattern.fullmatch(address)
        if m is None:
            continue
        mix = int(m.group(1))
        if not is_linked(link_address(mix)):
            return None
        partner = mix + 1 if mix % 2 else mix - 1
        start, end = m.span(1)
        return f"{address[:start]}{partner:02d}{address[end:]}"
    return None

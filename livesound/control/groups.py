"""DCAs and mute groups, as on the X32: who belongs to which, and what they do.

A strip (an input, a bus, the main) names its groups with two bitmasks:
``{prefix}/grp/dca`` (bit 0 = DCA 1) and ``{prefix}/grp/mute`` (bit 0 =
mute group 1). A DCA fader adds its level in dB to every member's fader
(several DCAs add up); a DCA switched off, or an engaged mute group
(``/config/mute/N 1``), mutes its members as their own mute would. A DCA at
0 dB and on changes nothing.

Pure functions of the parameter values: the derive step uses them to
compute the gains the audio plane ramps to, and a surface to show why a
strip is silent. No audio-plane state of their own.
"""

from collections.abc import Mapping
from typing import Any

N_DCA = 8
N_MUTE_GROUPS = 6
DCA_MASK = (1 << N_DCA) - 1
MUTE_MASK = (1 << N_MUTE_GROUPS) - 1


def dca_prefix(k: int) -> str:
    """Address prefix of DCA ``k`` (0-based): ``/dca/1``."""
    return f"/dca/{k + 1}"


# The X32 numbers its solo switches 01-32 for channels, ..., 73-80 for DCAs.
DCA_SOLO_FIRST = 73


def solo_address(c: int) -> str:
    """The solo switch of input ``c`` (0-based): ``/-stat/solosw/01``."""
    return f"/-stat/solosw/{c + 1:02d}"


def dca_solo_address(k: int) -> str:
    """The solo switch of DCA ``k`` (0-based): ``/-stat/solosw/73``."""
    return f"/-stat/solosw/{DCA_SOLO_FIRST + k}"


def solo_addresses(n_in: int) -> list[str]:
    """Every solo switch of an engine with ``n_in`` inputs: the channels',
    then the DCAs'."""
    return [solo_address(c) for c in range(n_in)] + [
        dca_solo_address(k) for k in range(N_DCA)
    ]


def mute_group_address(k: int) -> str:
    """The switch of mute group ``k`` (0-based): ``/config/mute/1``."""
    return f"/config/mute/{k + 1}"


def _bits(mask: int, count: int) -> list[int]:
    return [k for k in range(count) if mask >> k & 1]


def dcas_of(v: Mapping[str, Any], prefix: str) -> list[int]:
    """The DCAs (0-based) the strip at ``prefix`` belongs to."""
    return _bits(int(v[f"{prefix}/grp/dca"]), N_DCA)


def mute_groups_of(v: Mapping[str, Any], prefix: str) -> list[int]:
    """The mute groups (0-based) the strip at ``prefix`` belongs to."""
    return _bits(int(v[f"{prefix}/grp/mute"]), N_MUTE_GROUPS)


def dca_offset_db(v: Mapping[str, Any], prefix: str) -> float:
    """What the strip's DCAs add to its fader, in dB (0 for none; -inf when
    one of them is at -inf)."""
    return sum((float(v[f"{dca_prefix(k)}/fader"]) for k in dcas_of(v, prefix)), 0.0)


def muted_by(v: Mapping[str, Any], prefix: str) -> tuple[list[int], list[int]]:
    """The switched-off DCAs and the engaged mute groups that mute the strip
    at ``prefix`` (0-based; both empty: no group mutes it)."""
    dcas = [k for k in dcas_of(v, prefix) if not v[f"{dca_prefix(k)}/on"]]
    groups = [k for k in mute_groups_of(v, prefix) if v[mute_group_address(k)]]
    return dcas, groups


def group_muted(v: Mapping[str, Any], prefix: str) -> bool:
    """Whether a DCA or a mute group mutes the strip at ``prefix``."""
    dcas, groups = muted_by(v, prefix)
    return bool(dcas or groups)

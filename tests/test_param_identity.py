"""Every parameter knows its strip and what it drives, so no reader has to
take an address apart."""

import re

from livesound.audio.layout import n_outputs
from livesound.control.registry import (
    Registry,
    Strip,
    StripKind,
    Target,
    ch_prefix,
    out_prefixes,
)

PER_INPUT = {Target.INPUT, Target.HPF, Target.IN_EQ, Target.ROW}
PER_OUTPUT = {Target.OUTPUT, Target.OUT_EQ, Target.NOTCH}
OUTPUTS = (StripKind.BUS, StripKind.MAIN, StripKind.MONO, StripKind.MTX)


def test_strips_and_targets_agree_with_the_addresses():
    reg = Registry(n_in=6, n_bus=4)
    for p in reg:
        s = p.strip
        if s.kind is StripKind.CH:
            assert p.address.startswith(ch_prefix(s.index) + "/") or (
                p.address == f"/-stat/solosw/{s.index + 1:02d}"
            ), p.address
        if s.kind in OUTPUTS and p.target is not Target.MTX:
            assert p.address.startswith(out_prefixes(s.index, reg.n_bus)), p.address
            assert (s.kind is StripKind.MAIN) == (s.index == reg.n_bus)
        if p.target is Target.MTX:
            # A send into a matrix lives at its source's address.
            assert s.kind is StripKind.MTX
            sends = rf"/(bus/\d\d|main/st|main/m)/mix/{s.number + 1:02d}/(on|level)"
            assert re.fullmatch(sends, p.address), p.address
        if p.target in PER_INPUT:
            assert s.kind is StripKind.CH and 0 <= s.index < reg.n_in
        if p.target in PER_OUTPUT:
            assert s.kind in OUTPUTS
            assert 0 <= s.index < n_outputs(reg.n_bus)
        if p.key:
            assert reg.find(s, p.key) is p


def test_strip_names_are_the_scene_sections():
    names = {p.strip.name for p in Registry(n_in=12, n_bus=4)}
    assert {"ch.01", "ch.12", "bus.01", "bus.04", "main", "solo", "osc"} <= names
    assert {"buslink.1-2", "buslink.3-4", "mono", "mtx.01", "mtx.06"} <= names
    assert Strip(StripKind.BUSLINK, 2).name == "buslink.3-4"

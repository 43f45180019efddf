"""The generated OSC reference covers exactly the registry and the X32
addresses answered without a parameter, deterministically."""

import itertools
import re

import pytest

from livesound.control.registry import Registry
from livesound.osc.docs import osc_map_markdown
from livesound.osc.x32tree import tree_for


def expand(pattern: str) -> set[str]:
    """Addresses a collapsed row pattern such as ``/ch/[01..32]/mix/[01,03..15]``
    stands for (``a..b`` steps like the two numbers before it, or by 1)."""
    parts = re.split(r"\[([^\]]+)\]", pattern)
    choices = []
    for k, part in enumerate(parts):
        if k % 2 == 0:
            choices.append([part])
            continue
        items: list[str] = []
        for item in part.split(","):
            if ".." in item:
                lo, hi = item.split("..")
                step = 1
                if items and "-" not in lo:
                    step = int(lo) - int(items[-1])
                if "-" in lo:  # buslink pairs such as 3-4..15-16
                    a, _ = (int(x) for x in lo.split("-"))
                    b, _ = (int(x) for x in hi.split("-"))
                    prev = int(items[-1].split("-")[0]) if items else a - 2
                    items += [f"{n}-{n + 1}" for n in range(a, b + 1, a - prev)]
                    continue
                width = len(lo)
                items += [f"{n:0{width}d}" for n in range(int(lo), int(hi) + 1, step)]
            else:
                items.append(item)
        choices.append(sorted(set(items)))
    return {"".join(combo) for combo in itertools.product(*choices)}


@pytest.mark.parametrize("n_in, n_bus", [(32, 16), (5, 4), (1, 2)])
def test_reference_rows_expand_to_exactly_the_registry(n_in, n_bus):
    registry = Registry(n_in, n_bus)
    text = osc_map_markdown(registry)
    rows = re.findall(r"^\| `([^`]+)` \|", text, flags=re.M)
    covered = set().union(*(expand(r) for r in rows))
    x32_only = set(tree_for(registry).params)
    assert covered == {p.address for p in registry} | x32_only
    assert "| X32 compatibility, no effect |" in text
    assert "not yet mixed" not in text


def test_reference_is_deterministic_and_documents_the_dialect():
    a = osc_map_markdown(Registry(8, 4))
    assert a == osc_map_markdown(Registry(8, 4))
    for needle in ("/xremote", "/meters", "/node", "/ls/error", "0.75"):
        assert needle in a

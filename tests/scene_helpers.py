"""Helpers shared by the scene tests."""

import math
import random

from livesound.control.registry import Registry


def rich_values(registry: Registry, seed: int = 1) -> dict:
    """A valid value for every parameter, far from the defaults."""
    rng = random.Random(seed)
    out = {}
    for p in registry:
        if p.kind == "str":
            value = rng.choice(["Kick", 'Vox "A"', "Gitarre Ü", "Ch #7 = x"])
        elif p.kind == "enum":
            value = rng.randrange(len(p.choices))
        elif p.kind == "int":
            value = rng.randint(int(p.lo), int(p.hi))
        elif p.taper == "fader" and rng.random() < 0.1:
            value = -math.inf
        else:
            lo, hi = sorted((p.lo, p.hi))
            value = min(max(p.from_norm(rng.random()), lo), hi)
        out[p.address] = p.validate(value)
    return out

"""Helpers shared by the scene tests."""

import math
import random

from livesound.control.registry import Registry


def rich_values(registry: Registry, seed: int = 1, live_notches: bool = False) -> dict:
    """A valid value for every parameter, far from the defaults.

    Notches that are on are fixed unless ``live_notches`` (scenes store live
    notches switched off, so only fixed ones make the round trip).
    """
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
    if not live_notches:
        for address in out:
            if "/notch/" in address and address.endswith("/fixed"):
                out[address] = out[address[: -len("fixed")] + "on"]
    return out

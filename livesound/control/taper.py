"""The Behringer X32 fader law: OSC fader floats (0..1) to and from dB and gain.

The X32 maps its fader float to dB with four straight segments, steeper towards the
bottom so the useful range near unity gets most of the travel:

==================  =================  ====================
fader ``f``         dB                 end points
==================  =================  ====================
0.5 .. 1.0          ``f * 40 - 30``    -10 dB .. +10 dB
0.25 .. 0.5         ``f * 80 - 50``    -30 dB .. -10 dB
0.0625 .. 0.25      ``f * 160 - 70``   -60 dB .. -30 dB
0 .. 0.0625         ``f * 480 - 90``   -90 dB .. -60 dB
0                   ``-inf`` (off)
==================  =================  ====================
"""

from __future__ import annotations

import math

FADER_STEPS = 1024
"""The X32 resolves a fader to this many positions."""

MIN_DB = -90.0
"""Level at the bottom of the lowest segment; at or below it the fader is off."""

MAX_DB = 10.0
"""Level at the top of the fader."""

# (lowest fader value of the segment, dB per unit of fader, dB at f = 0), top first.
_SEGMENTS = (
    (0.5, 40.0, -30.0),
    (0.25, 80.0, -50.0),
    (0.0625, 160.0, -70.0),
    (0.0, 480.0, -90.0),
)


def _clamp_unit(x: float) -> float:
    # NaN would slip through min/max unchanged and poison the mix downstream.
    if math.isnan(x):
        raise ValueError("fader value is NaN")
    return min(max(x, 0.0), 1.0)


def fader_to_db(f: float) -> float:
    """Level in dB of X32 fader position ``f`` (clamped to 0..1); 0 is ``-inf``."""
    f = _clamp_unit(f)
    if f == 0.0:
        return -math.inf
    _, slope, offset = next(seg for seg in _SEGMENTS if f >= seg[0])
    return f * slope + offset


def db_to_fader(db: float) -> float:
    """X32 fader position (0..1) for level ``db``; at or below -90 dB it is 0 (off)."""
    if math.isnan(db):
        raise ValueError("level is NaN")
    if db <= MIN_DB:
        return 0.0
    _, slope, offset = next(seg for seg in _SEGMENTS if db >= seg[0] * seg[1] + seg[2])
    return _clamp_unit((db - offset) / slope)


def db_to_gain(db: float) -> float:
    """Linear amplitude gain for ``db``; ``-inf`` gives 0."""
    return 10.0 ** (db / 20.0)


def gain_to_db(g: float) -> float:
    """Level in dB of linear amplitude gain ``g`` (>= 0); 0 gives ``-inf``."""
    if not g >= 0.0:
        raise ValueError(f"gain must be >= 0, got {g}")
    if g == 0.0:
        return -math.inf
    return 20.0 * math.log10(g)


def fader_to_gain(f: float) -> float:
    """Linear amplitude gain of X32 fader position ``f``."""
    return db_to_gain(fader_to_db(f))


def quantize_fader(f: float) -> float:
    """Snap fader position ``f`` (clamped to 0..1) to the X32's 1024 steps."""
    top = FADER_STEPS - 1
    return round(_clamp_unit(f) * top) / top

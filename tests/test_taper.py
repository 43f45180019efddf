"""Tests for the X32 fader law in livesound.control.taper."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livesound.control.taper import (
    db_to_fader,
    db_to_gain,
    fader_to_db,
    fader_to_gain,
    gain_to_db,
    quantize_fader,
)

unit = st.floats(min_value=0.0, max_value=1.0)
# The invertible range: below -90 dB the fader is off, above +10 dB it is pinned.
levels = st.floats(min_value=-89.999, max_value=10.0)

# (fader, dB) at every segment boundary and in the middle of each segment.
KNOWN_POINTS = [
    (1.0, 10.0),
    (0.875, 5.0),
    (0.75, 0.0),
    (0.5, -10.0),
    (0.375, -20.0),
    (0.25, -30.0),
    (0.125, -50.0),
    (0.0625, -60.0),
    (0.03125, -75.0),
]


@pytest.mark.parametrize(("fader", "db"), KNOWN_POINTS)
def test_fader_to_db_known_points(fader: float, db: float) -> None:
    assert fader_to_db(fader) == pytest.approx(db, abs=1e-12)


@pytest.mark.parametrize(("fader", "db"), KNOWN_POINTS)
def test_db_to_fader_known_points(fader: float, db: float) -> None:
    assert db_to_fader(db) == pytest.approx(fader, abs=1e-12)


def test_fader_zero_is_off() -> None:
    assert fader_to_db(0.0) == -math.inf
    assert fader_to_gain(0.0) == 0.0


def test_bottom_segment_approaches_minus_90() -> None:
    assert fader_to_db(1e-9) == pytest.approx(-90.0, abs=1e-6)
    assert fader_to_db(0.01) == pytest.approx(0.01 * 480 - 90)


@pytest.mark.parametrize("boundary", [0.0625, 0.25, 0.5])
def test_law_is_continuous_at_segment_boundaries(boundary: float) -> None:
    below = fader_to_db(np.nextafter(boundary, 0.0))
    assert below == pytest.approx(fader_to_db(boundary), abs=1e-9)


def test_round_trip_db_fader_db_on_grid() -> None:
    for db in np.arange(-89.9, 10.0 + 1e-9, 0.1):
        assert fader_to_db(db_to_fader(db)) == pytest.approx(db, abs=1e-9)


def test_round_trip_fader_db_fader_on_grid() -> None:
    for fader in np.linspace(0.0, 1.0, 1001):
        assert db_to_fader(fader_to_db(fader)) == pytest.approx(fader, abs=1e-12)


@given(levels)
def test_round_trip_db_fader_db(db: float) -> None:
    assert fader_to_db(db_to_fader(db)) == pytest.approx(db, abs=1e-9)


@given(unit, unit)
def test_fader_to_db_is_monotonic(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert fader_to_db(lo) <= fader_to_db(hi)
    assert fader_to_gain(lo) <= fader_to_gain(hi)


@given(st.floats(min_value=-200.0, max_value=50.0), st.floats(-200.0, 50.0))
def test_db_to_fader_is_monotonic(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert db_to_fader(lo) <= db_to_fader(hi)


@given(st.floats(min_value=0.0, max_value=0.999), st.floats(1e-6, 0.001))
def test_fader_to_db_is_strictly_increasing(f: float, step: float) -> None:
    assert fader_to_db(f) < fader_to_db(f + step)


def test_fader_is_clamped() -> None:
    assert fader_to_db(1.5) == 10.0
    assert fader_to_db(-0.2) == -math.inf
    assert fader_to_gain(7.0) == pytest.approx(10.0**0.5)


def test_db_to_fader_is_clamped() -> None:
    assert db_to_fader(10.0) == 1.0
    assert db_to_fader(25.0) == 1.0
    assert db_to_fader(math.inf) == 1.0
    assert db_to_fader(-90.0) == 0.0
    assert db_to_fader(-120.0) == 0.0
    assert db_to_fader(-math.inf) == 0.0


def test_nan_is_rejected() -> None:
    with pytest.raises(ValueError):
        fader_to_db(math.nan)
    with pytest.raises(ValueError):
        db_to_fader(math.nan)
    with pytest.raises(ValueError):
        quantize_fader(math.nan)


@pytest.mark.parametrize(
    ("db", "gain"),
    [
        (0.0, 1.0),
        (20.0, 10.0),
        (-20.0, 0.1),
        (-40.0, 0.01),
        (20 * math.log10(0.5), 0.5),
    ],
)
def test_db_gain_conversions(db: float, gain: float) -> None:
    assert db_to_gain(db) == pytest.approx(gain)
    assert gain_to_db(gain) == pytest.approx(db)


def test_gain_minus_inf_handling() -> None:
    assert db_to_gain(-math.inf) == 0.0
    assert gain_to_db(0.0) == -math.inf
    with pytest.raises(ValueError):
        gain_to_db(-0.5)
    with pytest.raises(ValueError):
        gain_to_db(math.nan)


@given(st.floats(min_value=1e-12, max_value=1e6))
def test_gain_round_trip(g: float) -> None:
    assert db_to_gain(gain_to_db(g)) == pytest.approx(g, rel=1e-9)


@pytest.mark.parametrize(
    ("fader", "gain"), [(0.75, 1.0), (1.0, 10**0.5), (0.5, 0.1**0.5)]
)
def test_fader_to_gain(fader: float, gain: float) -> None:
    assert fader_to_gain(fader) == pytest.approx(gain)


def test_quantize_known_values() -> None:
    assert quantize_fader(0.0) == 0.0
    assert quantize_fader(1.0) == 1.0
    assert quantize_fader(0.75) == 767 / 1023
    assert quantize_fader(0.7) == 716 / 1023
    assert quantize_fader(1.3) == 1.0
    assert quantize_fader(-0.1) == 0.0


@given(unit)
def test_quantize_snaps_to_nearest_of_1024_steps(f: float) -> None:
    q = quantize_fader(f)
    step = q * 1023
    assert step == pytest.approx(round(step), abs=1e-9)
    assert abs(q - f) <= 0.5 / 1023 + 1e-12
    assert quantize_fader(q) == q

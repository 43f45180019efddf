"""Bad input never crashes the show.

Broken sources (NaN, infinities, absurdly large values, denormals) never
reach an output and never stop the engine; absurd parameter values are
refused by the Mixer with ParamError and change nothing.
"""

import math

import numpy as np
import pytest
from dsp_helpers import SAMPLE_RATES, db, make_engine, mono_input, outs_of, sine, undb

from livesound.audio import layout as L
from livesound.control.registry import ParamError

HOT_SHOW = {
    "/ch/01/preamp/trim": 18.0,
    "/ch/01/mix/fader": 10.0,
    "/ch/01/dyn/on": 1,
    "/ch/01/dyn/thr": -30.0,
    "/ch/01/gate/on": 1,
    "/ch/01/gate/thr": -50.0,
    "/ch/01/eq/2/g": 15.0,
    "/ch/01/eq/3/g": 15.0,
    "/ch/01/mix/01/level": 10.0,
    "/ch/01/mix/01/type": "PRE",
    "/ch/01/mix/02/level": 10.0,
    "/ch/02/mix/fader": 0.0,
    "/ch/02/preamp/hpon": 1,
    "/ch/02/preamp/hpslope": "24",
    "/ch/02/mix/03/level": 0.0,
    "/ch/03/mix/fader": 0.0,
    "/ch/03/delay/on": 1,
    "/ch/03/delay/time": 20.0,
    "/bus/01/eq/3/g": 15.0,
    "/ls/bus/01/limiter/ceiling": -12.0,
    "/ls/bus/02/limiter/truepeak": 1,
    "/ls/bus/03/notch/01/on": 1,
    "/ls/bus/03/notch/01/depth": -60.0,
    "/ls/main/st/limiter/ceiling": -6.0,
    "/ls/osc/on": 1,
    "/config/osc/dest": "MixBus4",
    "/config/osc/level": -20.0,
    # The mono bus and every matrix carry sound too.
    "/ch/02/mix/mono": 1,
    "/ch/02/mix/mlevel": 10.0,
    "/main/m/eq/2/g": 15.0,
    "/ls/main/m/limiter/ceiling": -3.0,
    **{f"/bus/{m % 4 + 1:02d}/mix/{m + 1:02d}/level": 10.0 for m in range(6)},
    "/main/st/mix/06/level": 10.0,
    "/main/m/mix/05/level": 0.0,
    "/mtx/02/eq/3/g": 15.0,
    "/ls/mtx/03/limiter/ceiling": -20.0,
    "/ls/mtx/04/limiter/truepeak": 1,
}

GARBAGE = {
    "nan": np.nan,
    "+inf": np.inf,
    "-inf": -np.inf,
    "1e30": 1e30,
    "-1e30": -1e30,
    "float32 max": float(np.finfo(np.float32).max),
    "denormal": 1e-40,
    "smallest denormal": -1.4e-45,
}


def program(n, fs):
    x = np.zeros((n, 4))
    x[:, 0] = sine(n, 440.0, fs, 0.3)
    x[:, 1] = sine(n, 97.0, fs, 0.5)
    x[:, 2] = sine(n, 3000.0, fs, 0.2)
    return x


def ceilings(engine):
    return engine.core.arrays["outs"][L.OP_LIM_CEIL]


@pytest.mark.parametrize("fs", SAMPLE_RATES)
@pytest.mark.parametrize("what", GARBAGE, ids=list(GARBAGE))
def test_broken_input_never_reaches_an_output(fs, what):
    bad = GARBAGE[what]
    n = fs // 5
    e = make_engine(fs)
    e.mixer.set_many(HOT_SHOW)
    x = program(n, fs)
    x[n // 4 : n // 4 + 300, 0] = bad  # a burst on one input
    x[n // 2, :] = bad  # one sample on every input
    x[3 * n // 4 :, 2] = bad  # one input dead for good
    y = e.render(x, block=64)
    assert np.all(np.isfinite(y))
    assert np.all(np.abs(y).max(axis=0) <= ceilings(e) * (1 + 1e-6))
    # Refused at the input: nothing non-finite reached the DSP state (a fault
    # would have reset every filter and delay, a dropout on every output).
    assert e.core.stats().faults == 0
    # ...and the engine carries on: a normal signal comes out of every output
    # at the level it has in a fresh engine, once envelopes have settled.
    after = program(fs, fs)
    y_after = e.render(after, block=64)[-fs // 4 :].astype(np.float64)
    fresh = make_engine(fs)
    fresh.mixer.set_many(HOT_SHOW)
    y_fresh = fresh.render(after, block=64)[-fs // 4 :].astype(np.float64)
    rms_after = db(np.sqrt(np.mean(y_after**2, axis=0)))
    rms_fresh = db(np.sqrt(np.mean(y_fresh**2, axis=0)))
    assert np.all(rms_fresh > -60.0)  # sound on every output
    np.testing.assert_allclose(rms_after, rms_fresh, atol=0.1)


@pytest.mark.parametrize("block", [1, 64, 1024])
def test_every_input_broken_at_once(block):
    fs = 48000
    e = make_engine(fs)
    e.mixer.set_many(HOT_SHOW)
    rng = np.random.default_rng(5)
    choices = np.array(list(GARBAGE.values()) + [0.5, -0.9, 9999.0])
    x = rng.choice(choices, size=(fs // 10, 4))
    y = e.render(x, block=block)
    assert np.all(np.isfinite(y))
    assert np.all(np.abs(y).max(axis=0) <= ceilings(e) * (1 + 1e-6))
    ins = e.core.arrays["ins"]
    assert np.all(np.isfinite(ins)) and np.all(np.isfinite(e.core.arrays["outs"]))


def test_loudest_legal_settings_stay_finite_and_under_the_ceilings():
    """Every boost at its maximum, full-scale input: the limiters cope."""
    fs = 44100
    e = make_engine(fs)
    s = {}
    for c in range(1, 5):
        p = f"/ch/{c:02d}"
        s |= {f"{p}/preamp/trim": 18.0, f"{p}/mix/fader": 10.0}
        for band in range(1, 5):
            s |= {f"{p}/eq/{band}/g": 15.0, f"{p}/eq/{band}/f": 20000.0}
        for b in range(1, 5):
            s[f"{p}/mix/{b:02d}/level"] = 10.0
        s |= {f"{p}/mix/mono": 1, f"{p}/mix/mlevel": 10.0}
    for out in [f"/bus/{b:02d}" for b in range(1, 5)] + ["/main/st", "/main/m"]:
        s |= {f"{out}/mix/fader": 10.0}
        s |= {f"{out}/eq/{k}/g": 15.0 for k in range(1, 7)}
        s |= {f"{out}/mix/{m:02d}/level": 10.0 for m in range(1, 7)}
    for m in range(1, 7):
        s[f"/mtx/{m:02d}/mix/fader"] = 10.0
        s |= {f"/mtx/{m:02d}/eq/{k}/g": 15.0 for k in range(1, 7)}
    e.mixer.set_many(s)
    x = np.sign(program(fs // 5, fs)) * 0.999  # full-scale squares
    y = e.render(x, block=128)
    assert np.all(np.isfinite(y))
    assert np.all(np.abs(y).max(axis=0) <= ceilings(e) * (1 + 1e-6))
    assert e.core.stats().faults == 0


def test_process_refuses_a_wrong_shape():
    e = make_engine()
    with pytest.raises(ValueError):
        e.process(np.zeros((64, 3)))
    with pytest.raises(ValueError):
        e.process(np.zeros(64))


# ---------------------------------------------------------------------------
# Absurd parameter values
# ---------------------------------------------------------------------------

ABSURD_VALUES = [
    ("/ch/01/mix/fader", math.nan),
    ("/ch/01/mix/fader", math.inf),
    ("/ch/01/mix/fader", 11.0),
    ("/ch/01/mix/fader", -1e9),
    ("/ch/01/mix/fader", "loud"),
    ("/ch/01/mix/fader", None),
    ("/ch/01/mix/fader", [0.0]),
    ("/ch/01/mix/fader", 1j),
    ("/ch/01/mix/pan", 101.0),
    ("/ch/01/mix/on", 2),
    ("/ch/01/mix/on", 0.5),
    ("/ch/01/mix/on", -1),
    ("/ch/01/preamp/trim", -math.inf),
    ("/ch/01/preamp/hpf", 0.0),
    ("/ch/01/preamp/hpslope", 3),
    ("/ch/01/preamp/hpslope", "48"),
    ("/ch/01/delay/time", 1e6),
    ("/ch/01/delay/time", -1.0),
    ("/ch/01/gate/range", 0.0),
    ("/ch/01/gate/hold", math.nan),
    ("/ch/01/dyn/ratio", 12),
    ("/ch/01/dyn/ratio", -1),
    ("/ch/01/dyn/ratio", "infinite"),
    ("/ch/01/dyn/ratio", 1.5),
    ("/ch/01/dyn/knee", -1.0),
    ("/ch/01/dyn/attack", -5.0),
    ("/ch/01/eq/1/f", 0.0),
    ("/ch/01/eq/1/f", -1000.0),
    ("/ch/01/eq/1/f", 30000.0),
    ("/ch/01/eq/1/g", 1e9),
    ("/ch/01/eq/1/type", 6),
    ("/ch/01/eq/1/q", 0.0),
    ("/ch/01/eq/1/q", -2.0),
    ("/ch/01/eq/1/q", math.inf),
    ("/bus/01/eq/6/g", -math.nan),
    ("/ls/bus/01/limiter/ceiling", 3.0),
    ("/ls/bus/01/limiter/ceiling", -math.inf),
    ("/ls/bus/01/limiter/release", 0.0),
    ("/ls/bus/01/notch/01/width", 0.0),
    ("/ls/bus/01/notch/01/depth", 6.0),
    ("/ls/main/st/delay/time", 1e300),
    ("/config/osc/f1", 1e6),
    ("/config/osc/level", 20.0),
    ("/config/osc/dest", 99),
    ("/config/solo/level", math.inf),
    ("/config/buslink/1-2", 3),
    ("/-stat/solosw/01", "yes"),
    ("/ch/01/config/name", "x" * 33),
    ("/ch/01/config/name", "a\nb"),
    ("/ch/01/config/name", 5),
    # Unknown addresses.
    ("/ch/05/mix/fader", 0.0),  # only 4 inputs
    ("/ch/00/mix/fader", 0.0),
    ("/bus/05/mix/fader", 0.0),
    ("/ch/01/eq/5/g", 0.0),  # inputs have 4 bands
    ("/bus/01/eq/7/g", 0.0),
    ("/ch/01/mix/05/level", 0.0),
    ("/ch/01/mix/02/pan", 0.0),  # pan and tap live on the odd send
    ("/ls/bus/01/notch/17/on", 1),
    ("", 0.0),
    ("/ch/01/mix/fader/", 0.0),
]
ABSURD = [pytest.param(a, v, id=f"{a}={v!r}"[:50]) for a, v in ABSURD_VALUES] + [
    pytest.param("/ch/01/mix/fader", 10**400, id="/ch/01/mix/fader=huge-int"),
    # (an empty name is the X32's default and accepted)
    pytest.param("/ch/01/config/name", "x" * 33, id="/ch/01/config/name=too long"),
    pytest.param("/ch/01/config/name", "a\nb", id="/ch/01/config/name=newline"),
]


def engine_state(e):
    return (
        e.mixer.snapshot(),
        {k: e.core.arrays[k].copy() for k in L.MAILBOX},
        int(e.core.hdr[L.H_SEQ]),
        e.mixer.changes,
    )


def assert_same_state(before, after):
    values0, mail0, seq0, changes0 = before
    values1, mail1, seq1, changes1 = after
    assert values1 == values0 or _nan_equal(values0, values1)
    for k in mail0:
        np.testing.assert_array_equal(mail1[k], mail0[k], err_msg=k)
    assert seq1 == seq0, "a change set was published"
    assert changes1 == changes0


def _nan_equal(a, b):
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]) for k in a
    )


@pytest.mark.parametrize(("address", "value"), ABSURD)
def test_absurd_value_is_refused_and_changes_nothing(address, value):
    e = make_engine()
    e.mixer.set_many({"/ch/01/mix/fader": -3.0, "/ch/02/eq/1/g": 2.0})
    e.render(np.zeros((256, 4)))
    heard = []
    e.mixer.subscribe(lambda change: heard.append(change.address))
    before = engine_state(e)
    with pytest.raises(ParamError):
        e.mixer.set(address, value)
    with pytest.raises(ParamError):
        # Atomic: one bad value among good ones, and none of them lands.
        e.mixer.set_many({"/ch/02/mix/fader": 0.0, address: value, "/ch/03/mix/on": 0})
    assert_same_state(before, engine_state(e))
    assert heard == []
    # The engine still plays what it played before.
    y = e.render(mono_input(e, sine(4800, 1000.0, 48000, 0.5)))
    assert np.abs(y[:, outs_of(e).main_l]).max() == pytest.approx(
        0.5 * undb(-3.0) / math.sqrt(2), rel=0.01
    )

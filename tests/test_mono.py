"""The mono/centre bus (``/main/m``), measured through the real engine.

Fed by every channel with ``/ch/NN/mix/mono`` on, at ``mlevel`` after the
channel's fader and mute (the X32's LR+M mode), whatever the channel's pan
and LR switch. Path gains come from impulses, held to 1e-6 (float32
outputs).
"""

import math

import numpy as np
import pytest
from dsp_helpers import (
    bypass_hpf_b0,
    impulse_response,
    make_engine,
    mono_input,
    outs_of,
    sine,
    undb,
)

TOL = 1e-6
FS = 48000

SHOW = {
    "/ch/01/mix/fader": -4.0,
    "/ch/01/mix/mono": 1,
    "/ch/01/mix/mlevel": -3.0,
    "/ch/02/mix/fader": 2.0,
    "/ch/02/mix/pan": 100.0,  # hard right: the mono bus does not care
    "/ch/02/mix/st": 0,  # nor whether it feeds the main
    "/ch/02/mix/mono": 1,
    "/ch/02/mix/mlevel": -9.0,
    "/ch/03/mix/fader": 0.0,  # on the main, not on the mono bus
    "/ch/03/mix/mlevel": 0.0,
    "/ls/main/m/limiter/on": 0,
}


def gains(changes: dict) -> tuple[np.ndarray, object]:
    """Gain from each input to every output, ``[output, input]``: one engine
    per input, so no input's high-pass tail reaches another's reading (the
    mono bus sums several)."""
    columns = []
    for channel in range(1, 5):
        e = make_engine(FS)
        e.mixer.set_many(SHOW | changes)
        b0 = bypass_hpf_b0(FS)
        columns.append(impulse_response(e, 64, amp=0.2, channel=channel)[0] / b0)
    return np.array(columns).T, outs_of(e)


def test_the_mono_bus_sums_the_channels_at_their_mono_levels_after_the_fader():
    g, o = gains({})
    assert g[o.mono, 0] == pytest.approx(undb(-4.0 - 3.0), abs=TOL)
    assert g[o.mono, 1] == pytest.approx(undb(2.0 - 9.0), abs=TOL)
    assert g[o.mono, 2] == pytest.approx(0.0, abs=TOL)  # mono switch off
    assert g[o.mono, 3] == pytest.approx(0.0, abs=TOL)
    # The main is untouched by it: channel 1 still at -3 dB per side.
    assert g[o.main_l, 0] == pytest.approx(undb(-4.0) / math.sqrt(2), abs=TOL)
    assert g[o.main_l, 1] == pytest.approx(0.0, abs=TOL)


def test_a_signal_sum_on_the_mono_bus_is_the_sum_of_its_parts():
    n = FS // 4
    x1, x2 = sine(n, 220.0, FS, 0.2), sine(n, 330.0, FS, 0.1)
    e = make_engine(FS)
    e.mixer.set_many(SHOW)
    inp = np.zeros((n, e.dims.phys_in))
    inp[:, 0], inp[:, 1] = x1, x2
    y = e.render(inp).astype(np.float64)[e.latency + 2048 :]
    # Both inputs' high-passes are off (a 1 Hz cut): compare with the
    # engine's own single-input renders instead of the raw sines.
    singles = []
    for x, channel in ((x1, 1), (x2, 2)):
        s = make_engine(FS)
        s.mixer.set_many(SHOW)
        singles.append(s.render(mono_input(s, x, channel)).astype(np.float64))
    want = (singles[0] + singles[1])[e.latency + 2048 :]
    o = outs_of(e)
    np.testing.assert_allclose(y[:, o.mono], want[:, o.mono], atol=2 * TOL)


@pytest.mark.parametrize(
    "change, channel_gain_db",
    [
        ({"/ch/01/mix/fader": -20.0}, -20.0 - 3.0),  # post-fader
        ({"/ch/01/mix/on": 0}, None),  # the channel's mute mutes its mono send
        ({"/ch/01/mix/mono": 0}, None),
        ({"/ch/01/grp/dca": 1, "/dca/1/fader": -6.0}, -4.0 - 6.0 - 3.0),  # DCA
        ({"/ch/01/grp/mute": 1, "/config/mute/1": 1}, None),  # mute group
    ],
)
def test_the_mono_send_follows_the_channel_fader_mute_and_groups(
    change, channel_gain_db
):
    g, o = gains(change)
    want = 0.0 if channel_gain_db is None else undb(channel_gain_db)
    assert g[o.mono, 0] == pytest.approx(want, abs=TOL)


def test_the_mono_bus_has_a_master_mute_and_its_own_limiter():
    g, o = gains({"/main/m/mix/fader": -6.0})
    assert g[o.mono, 0] == pytest.approx(undb(-4.0 - 3.0 - 6.0), abs=TOL)
    g, o = gains({"/main/m/mix/on": 0})
    assert g[o.mono, 0] == 0.0
    e = make_engine(FS)
    e.mixer.set_many(SHOW | {"/ch/01/mix/fader": 10.0, "/ch/01/mix/mlevel": 10.0,
                             "/ls/main/m/limiter/on": 1,
                             "/ls/main/m/limiter/ceiling": -10.0})  # fmt: skip
    y = e.render(mono_input(e, sine(FS // 4, 440.0, FS, 0.9)))
    peak = np.abs(y[:, outs_of(e).mono]).max()
    assert undb(-11.0) < peak <= undb(-10.0) * (1 + 1e-6)

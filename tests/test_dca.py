"""DCAs and mute groups in the audio plane, measured through the real engine.

Path gains come from ``gain_matrix`` (impulses through the compiled
callback); a DCA's effect is the ratio to the same engine without it, so
the switched-off high-pass and the pan law cancel: DCA offsets must hold
to 0.001 dB. Transitions are compared sample by sample with the channel's
own fader and mute, which ramp over the engine's 10 ms gain ramp.
"""

import math
import tomllib

import numpy as np
import pytest
from dsp_helpers import (
    bypass_hpf_b0,
    db,
    impulse_response,
    make_engine,
    mono_input,
    outs_of,
    sine,
    undb,
)

from livesound.control import groups
from livesound.control.registry import Registry, Target
from livesound.osc import links
from livesound.osc.docs import osc_map_markdown
from livesound.scenes.files import Scope
from livesound.scenes.manager import SceneManager

OFFSET_TOL_DB = 1e-3
SILENT = 1e-7  # below -140 dB: nothing leaks through a group mute

# Inputs 1 and 2 up on the main and post-fader into bus 1; input 1 also
# pre-fader into bus 3. Input 1 is the group member, input 2 the witness.
SHOW = {
    "/ch/01/mix/fader": -6.0,
    "/ch/02/mix/fader": -3.0,
    "/ch/01/mix/01/level": 0.0,
    "/ch/02/mix/01/level": 0.0,
    "/ch/01/mix/03/level": -4.0,
    "/ch/01/mix/03/type": 3,  # PRE
}


def _gains(changes: dict) -> np.ndarray:
    """Gain from inputs 1 and 2 to every output, ``[output, input]``: one
    engine per input, so neither input's high-pass tail reaches the other's
    reading and an untouched path reads exactly the same."""
    columns = []
    for channel in (1, 2):
        e = make_engine()
        e.mixer.set_many(SHOW | changes)
        b0 = bypass_hpf_b0(e.dims.sample_rate)
        columns.append(impulse_response(e, 64, amp=0.2, channel=channel)[0] / b0)
    return np.array(columns).T


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return _gains({})


def _post_fader_outputs(o) -> list[int]:
    return [o.main_l, o.main_r, o.bus(1)]


def test_dca_at_0db_changes_nothing_sample_for_sample():
    x = np.random.default_rng(3).uniform(-0.3, 0.3, (4096, 4))
    plain, grouped = make_engine(), make_engine()
    plain.mixer.set_many(SHOW)
    grouped.mixer.set_many(
        SHOW | {"/ch/01/grp/dca": 0b1, "/bus/01/grp/dca": 0b1, "/dca/1/fader": 0.0}
    )
    assert np.array_equal(plain.render(x), grouped.render(x))


def test_dca_offsets_its_members_post_fader_paths_only(reference):
    o = outs_of(make_engine())
    g = _gains({"/ch/01/grp/dca": 0b1, "/dca/1/fader": -10.0})
    post = _post_fader_outputs(o)
    assert db(g[post, 0] / reference[post, 0]) == pytest.approx(
        [-10.0] * 3, abs=OFFSET_TOL_DB
    )
    # A pre-fader send ignores the fader, and so the DCA (as on an X32).
    assert g[o.bus(3), 0] == pytest.approx(reference[o.bus(3), 0], rel=1e-6)
    # Input 2 is not a member: untouched.
    np.testing.assert_array_equal(g[:, 1], reference[:, 1])


def test_two_dcas_add_up(reference):
    o = outs_of(make_engine())
    g = _gains({"/ch/01/grp/dca": 0b101, "/dca/1/fader": -10.0,
                "/dca/3/fader": 4.0})  # fmt: skip
    post = _post_fader_outputs(o)
    assert db(g[post, 0] / reference[post, 0]) == pytest.approx(
        [-6.0] * 3, abs=OFFSET_TOL_DB
    )


def test_a_dca_takes_a_member_no_higher_than_a_faders_top(reference):
    """Fader +6 dB and DCA +10 dB: +10 dB, as on an X32, not +16."""
    g = _gains({"/ch/01/mix/fader": 6.0, "/ch/01/grp/dca": 0b1, "/dca/1/fader": 10.0})
    post = _post_fader_outputs(outs_of(make_engine()))
    assert db(g[post, 0] / reference[post, 0]) == pytest.approx(
        [10.0 - SHOW["/ch/01/mix/fader"]] * 3, abs=OFFSET_TOL_DB
    )


def test_a_dca_at_minus_infinity_closes_its_members(reference):
    o = outs_of(make_engine())
    g = _gains({"/ch/01/grp/dca": 0b1, "/dca/1/fader": -math.inf})
    assert np.abs(g[_post_fader_outputs(o), 0]).max() < SILENT
    np.testing.assert_array_equal(g[:, 1], reference[:, 1])


@pytest.mark.parametrize(
    "mute",
    [
        {"/ch/01/grp/dca": 0b10, "/dca/2/on": 0},
        {"/ch/01/grp/mute": 0b100, "/config/mute/3": 1},
    ],
    ids=["dca-off", "mute-group-engaged"],
)
def test_a_group_mute_silences_members_only(reference, mute):
    g = _gains(mute)
    # Every path of the member, pre-fader sends too: a mute, as its own.
    assert np.abs(g[:, 0]).max() < SILENT
    np.testing.assert_array_equal(g[:, 1], reference[:, 1])


def test_soloing_a_dca_solos_its_members_as_their_own_switches_would():
    x = np.random.default_rng(5).uniform(-0.3, 0.3, (4096, 4))
    member = {"/ch/01/grp/dca": 0b10}  # input 1 in DCA 2; input 2 is in none
    by_dca, by_channel = make_engine(), make_engine()
    by_dca.mixer.set_many(SHOW | member | {groups.dca_solo_address(1): 1})
    by_channel.mixer.set_many(SHOW | member | {groups.solo_address(0): 1})
    got, want = by_dca.render(x), by_channel.render(x)
    cue = outs_of(by_dca).cue_l
    assert np.abs(got[:, cue]).max() > 0.01  # the member is in the cue
    assert np.array_equal(got, want)  # and only the member
    # Leaving the DCA leaves its solo.
    by_dca.mixer.set("/ch/01/grp/dca", 0)
    assert np.abs(by_dca.render(x)[2048:, cue]).max() < SILENT


def test_groups_a_strip_is_not_in_do_nothing(reference):
    g = _gains({"/ch/01/grp/dca": 0b1, "/ch/01/grp/mute": 0b1, "/dca/2/on": 0,
                "/dca/3/fader": -20.0, "/config/mute/2": 1})  # fmt: skip
    np.testing.assert_array_equal(g, reference)


def test_disengaging_a_mute_group_restores_the_mix(reference):
    engaged = {"/ch/01/grp/mute": 0b1, "/config/mute/1": 1}
    assert np.abs(_gains(engaged)[:, 0]).max() < SILENT
    released = engaged | {"/config/mute/1": 0}
    np.testing.assert_array_equal(_gains(released), reference)


def test_bus_and_main_masters_follow_their_dcas_and_mute_groups():
    o = outs_of(make_engine())
    ref = _gains({})
    g = _gains({"/bus/01/grp/dca": 0b1, "/main/st/grp/dca": 0b11,
                "/dca/1/fader": -10.0, "/dca/2/fader": -2.0})  # fmt: skip
    assert db(g[o.bus(1), :2] / ref[o.bus(1), :2]) == pytest.approx(
        [-10.0, -10.0], abs=OFFSET_TOL_DB
    )
    main = [o.main_l, o.main_r]
    assert db(g[main, :2] / ref[main, :2]) == pytest.approx(
        np.full((2, 2), -12.0), abs=OFFSET_TOL_DB
    )
    muted = _gains({"/bus/01/grp/mute": 0b1, "/config/mute/1": 1})
    assert np.abs(muted[o.bus(1)]).max() < SILENT
    np.testing.assert_array_equal(muted[main], ref[main])


def test_a_linked_pair_plays_by_its_odd_bus_membership():
    o = outs_of(make_engine())
    g = _gains({"/config/buslink/1-2": 1, "/bus/01/grp/mute": 0b1,
                "/config/mute/1": 1})  # fmt: skip
    assert np.abs(g[[o.bus(1), o.bus(2)]]).max() < SILENT


def test_joining_with_a_dca_move_lands_in_one_block_and_leaving_restores():
    fs, block = 48000, 64
    x = mono_input(make_engine(fs), sine(fs // 2, 31.0, fs, 0.2))
    plain, e = make_engine(fs), make_engine(fs)
    plain.mixer.set_many(SHOW)
    e.mixer.set_many(SHOW)
    y_ref = plain.render(x, block=block)[:, outs_of(e).main_l]
    third = len(x) // 3 // block * block
    e.mixer.set_many({"/ch/01/grp/dca": 0b1, "/dca/1/fader": -10.0})
    y = [e.render(x[:third], block=block)]
    e.mixer.set("/ch/01/grp/dca", 0)
    y.append(e.render(x[third:], block=block))
    y = np.concatenate(y)[:, outs_of(e).main_l]
    settled = slice(fs // 20, third), slice(third + fs // 20, None)
    # Joined (from the first block on): exactly 10 dB down; left: as before.
    np.testing.assert_allclose(y[settled[0]], y_ref[settled[0]] * undb(-10.0),
                               rtol=1e-5, atol=1e-7)  # fmt: skip
    np.testing.assert_allclose(y[settled[1]], y_ref[settled[1]], rtol=0, atol=1e-7)


# -- transitions: the very ramps of the channel's own fader and mute ------------


def _transition(fs: int, block: int, start: dict, change: dict) -> np.ndarray:
    """Main L of a 31 Hz sine on input 1 while ``change`` lands mid-signal."""
    n = fs // 4
    at = (fs // 10) // block * block
    x = mono_input(make_engine(fs), sine(n, 31.0, fs, 0.2))
    e = make_engine(fs)
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/pan": -100.0} | start)
    head = e.render(x[:at], block=block)
    e.mixer.set_many(change)
    tail = e.render(x[at:], block=block)
    return np.concatenate([head, tail])[:, outs_of(e).main_l].astype(np.float64)


GROUP_MOVES = [
    # (the group's move, the channel's own move that must sound the same)
    ({"/ch/01/grp/dca": 1}, {"/dca/1/fader": -10.0}, {"/ch/01/mix/fader": -10.0}),
    ({"/ch/01/grp/dca": 1, "/dca/1/fader": -10.0}, {"/dca/1/fader": 0.0},
     {"/ch/01/mix/fader": 0.0}),
    ({"/ch/01/grp/dca": 1}, {"/dca/1/on": 0}, {"/ch/01/mix/on": 0}),
    ({"/ch/01/grp/mute": 1}, {"/config/mute/1": 1}, {"/ch/01/mix/on": 0}),
    ({"/ch/01/grp/mute": 1, "/config/mute/1": 1}, {"/config/mute/1": 0},
     {"/ch/01/mix/on": 1}),
]  # fmt: skip
OWN_START = [{}, {"/ch/01/mix/fader": -10.0}, {}, {}, {"/ch/01/mix/on": 0}]


@pytest.mark.parametrize("block", [16, 256])
@pytest.mark.parametrize(
    ("start", "move", "own", "own_start"),
    [(*m, s) for m, s in zip(GROUP_MOVES, OWN_START, strict=True)],
    ids=["dca-down", "dca-up", "dca-mute", "mutegroup-on", "mutegroup-off"],
)
def test_group_moves_ramp_exactly_as_the_channels_own(block, start, move, own,
                                                      own_start):  # fmt: skip
    fs = 48000
    grouped = _transition(fs, block, start, move)
    plain = _transition(fs, block, own_start, own)
    # Same gains, same ramps: the same samples (float32 rounding aside).
    np.testing.assert_allclose(grouped, plain, rtol=0, atol=1e-7)
    # And it is a ramp, not a step: the largest sample-to-sample change over
    # the transition stays within what a 10 ms ramp of this signal allows.
    ramp = round(0.010 * fs)
    settled = fs // 20  # before the move and after its ramp
    steady = max(np.abs(np.diff(part)).max() for part in (plain[:settled],
                                                           plain[-settled:]))  # fmt: skip
    assert np.abs(np.diff(grouped)).max() <= steady + 0.2 / ramp * 1.001


# -- what the derive step re-derives ------------------------------------------------


def test_a_dca_move_re_derives_exactly_its_members():
    e = make_engine()
    v = e.mixer.values | {"/ch/02/grp/dca": 0b10, "/ch/04/grp/dca": 0b11,
                          "/bus/03/grp/dca": 0b10}  # fmt: skip
    ins, outs = e.mixer.topology.members(v, Target.DCA, 1)
    assert (ins, outs) == ([1, 3], [2])
    assert e.mixer.topology.members(v, Target.MUTE_GROUP, 1) == ([], [])


def test_group_helpers_read_the_x32_bitmasks():
    v = Registry(2, 2).defaults() | {"/ch/01/grp/dca": 0b1000_0001,
                                     "/ch/01/grp/mute": 0b10_0000,
                                     "/dca/8/on": 0, "/dca/1/fader": -3.0,
                                     "/config/mute/6": 1}  # fmt: skip
    assert groups.dcas_of(v, "/ch/01") == [0, 7]
    assert groups.mute_groups_of(v, "/ch/01") == [5]
    assert groups.dca_offset_db(v, "/ch/01") == -3.0
    assert groups.muted_by(v, "/ch/01") == ([7], [5])
    assert not groups.group_muted(v, "/ch/02")
    assert undb(groups.dca_offset_db(v, "/ch/02")) == 1.0


# -- scenes: DCAs and mute groups are strips of their own -----------------------


def test_recall_safes_and_scopes_name_dcas_and_mute_groups(tmp_path):
    e = make_engine()
    scenes = SceneManager(e.mixer, tmp_path / "scenes", tmp_path / "state")
    show = {"/dca/1/fader": -12.0, "/dca/2/fader": -6.0, "/config/mute/1": 1,
            "/ch/01/grp/dca": 0b11}  # fmt: skip
    e.mixer.set_many(show)
    scenes.save("song")
    only_faders = scenes.save("faders", Scope(("dca.2",), ("fader",)))
    assert tomllib.loads(only_faders.read_text())["dca"] == {"2": {"fader_db": -6.0}}
    e.mixer.set_many({"/dca/1/fader": 0.0, "/dca/2/fader": 0.0,
                      "/config/mute/1": 0, "/ch/01/grp/dca": 0})  # fmt: skip
    scenes.set_safe("dca.1", True)
    scenes.set_safe("mutegroup.1", True)
    scenes.recall("song", now=0.0)
    assert e.mixer.get("/dca/1/fader") == 0.0  # safe
    assert e.mixer.get("/config/mute/1") == 0  # safe
    assert e.mixer.get("/dca/2/fader") == -6.0
    assert e.mixer.get("/ch/01/grp/dca") == 0b11


def test_a_linked_pairs_membership_is_written_to_both_halves_over_osc():
    def linked(address: str) -> bool:
        return address == "/config/buslink/1-2"

    assert links.mirror("/bus/02/grp/dca", linked) == "/bus/01/grp/dca"
    assert links.mirror("/bus/01/grp/mute", linked) == "/bus/02/grp/mute"
    assert links.mirror("/bus/03/grp/mute", linked) is None


def test_osc_map_lists_dcas_and_mute_groups_as_real():
    text = osc_map_markdown(Registry(8, 4))
    rows = {line.split("`")[1]: line for line in text.splitlines() if "| `/" in line}
    for address in ("/dca/[1..8]/fader", "/dca/[1..8]/on", "/config/mute/[1..6]",
                    "/ch/[01..08]/grp/dca", "/bus/[01..04]/grp/mute",
                    "/main/st/grp/dca"):  # fmt: skip
        assert address in rows, address
        assert "no effect" not in rows[address] and "not yet" not in rows[address]
    assert "## DCAs and mute groups" in text
    # The matrices are real now; what livesound does not have stays listed
    # as such.
    assert "no effect" not in rows["/mtx/[01..06]/grp/dca"]
    assert "X32 compatibility, no effect" in rows["/auxin/[01..08]/grp/dca"]

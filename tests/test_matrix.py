"""The six matrix outputs, measured through the real engine.

A matrix takes its sources (the buses, the main, the mono bus) after their
EQ and fader and before their limiter and delay, so with the limiters off
a matrix output is its source's output sample for sample, scaled by the
send. Outputs are float32: compared to 1e-6 (-120 dBFS) absolute.
"""

import math
import tomllib

import numpy as np
import pytest
from dsp_helpers import make_engine, mono_input, outs_of, sine, sine_amplitude, undb

from livesound.audio import layout as L
from livesound.audio.jackclient import port_names, port_of
from livesound.control import derive
from livesound.control.events import Source
from livesound.control.registry import Registry, StripKind
from livesound.control.undo import UndoJournal
from livesound.enginehost import parse_out_lookahead, parse_out_map
from livesound.osc.roles import Role
from livesound.osc.x32tree import tree_for
from livesound.render import output_file_names
from livesound.scenes.files import Scope
from livesound.scenes.manager import SceneManager

FS = 48000
TOL = 1e-6  # float32 outputs
SETTLE = 4096  # samples before comparing: ramps and first filter transients done


def noise(n: int, seed: int = 1, amp: float = 0.1) -> np.ndarray:
    return amp * np.random.default_rng(seed).standard_normal(n)


def render(show: dict, x: np.ndarray, block: int = 64) -> tuple[np.ndarray, object]:
    """Every output of a small engine (4 inputs, 4 buses) fed ``x`` on input 1."""
    e = make_engine(FS)
    e.mixer.set_many(show)
    y = e.render(mono_input(e, x), block=block).astype(np.float64)
    return y[SETTLE:], outs_of(e)


# Input 1 to bus 1 (post-fader) and to the main, panned a little left; bus 1
# with an EQ boost and its fader down, so the matrix shows it takes the bus
# after both. Limiters off: the bus's own output is the matrix's source.
BUS_SHOW = {
    "/ch/01/mix/fader": 0.0,
    "/ch/01/mix/pan": -30.0,
    "/ch/01/mix/01/level": 0.0,
    "/bus/01/eq/3/g": 6.0,
    "/bus/01/mix/fader": -3.0,
    "/ls/bus/01/limiter/on": 0,
    "/ls/main/st/limiter/on": 0,
    **{f"/ls/mtx/{m:02d}/limiter/on": 0 for m in range(1, 7)},
}


@pytest.mark.parametrize("block", [1, 64, 333])
def test_a_matrix_fed_by_bus_1_at_minus_6_db_carries_its_processed_output(block):
    y, o = render(BUS_SHOW | {"/bus/01/mix/01/level": -6.0}, noise(FS // 4), block)
    assert np.abs(y[:, o.bus(1)]).max() > 0.05  # something to compare
    np.testing.assert_allclose(y[:, o.mtx(1)], y[:, o.bus(1)] * undb(-6.0), atol=TOL)
    # No other matrix is fed.
    others = [o.mtx(m) for m in range(2, 7)]
    assert np.abs(y[:, others]).max() == 0.0


def test_the_send_is_post_fader_and_the_matrix_has_its_own_fader_and_mute():
    x = noise(FS // 4)
    show = BUS_SHOW | {"/bus/01/mix/02/level": 0.0, "/mtx/02/mix/fader": -10.0}
    y, o = render(show, x)
    np.testing.assert_allclose(y[:, o.mtx(2)], y[:, o.bus(1)] * undb(-10.0), atol=TOL)
    muted, _ = render(show | {"/mtx/02/mix/on": 0}, x)
    assert np.abs(muted[:, o.mtx(2)]).max() == 0.0
    send_off, _ = render(show | {"/bus/01/mix/02/on": 0}, x)
    assert np.abs(send_off[:, o.mtx(2)]).max() == 0.0
    # The bus muted: nothing after its fader, so nothing into the matrix.
    bus_off, _ = render(show | {"/bus/01/mix/on": 0}, x)
    assert np.abs(bus_off[:, o.mtx(2)]).max() == 0.0


def test_main_feeds_a_matrix_as_left_plus_right_over_root_2():
    show = BUS_SHOW | {"/main/st/mix/03/level": -4.0}
    y, o = render(show, noise(FS // 4, seed=2))
    main = (y[:, o.main_l] + y[:, o.main_r]) / math.sqrt(2.0)
    assert np.abs(main).max() > 0.05
    np.testing.assert_allclose(y[:, o.mtx(3)], main * undb(-4.0), atol=TOL)


def test_the_mono_bus_feeds_a_matrix():
    show = BUS_SHOW | {"/ch/01/mix/mono": 1, "/ch/01/mix/mlevel": -2.0,
                       "/main/m/mix/04/level": 3.0}  # fmt: skip
    y, o = render(show, noise(FS // 4, seed=3))
    assert np.abs(y[:, o.mono]).max() > 0.05
    np.testing.assert_allclose(y[:, o.mtx(4)], y[:, o.mono] * undb(3.0), atol=TOL)


def test_a_matrix_eq_shapes_only_that_matrix():
    # A 1 kHz sine through a -12 dB bell at 1 kHz (band 3) on matrix 5.
    x = sine(FS // 2, 1000.0, FS, 0.1)
    show = BUS_SHOW | {"/bus/01/mix/05/level": 0.0, "/bus/01/mix/06/level": 0.0,
                       "/mtx/05/eq/3/g": -12.0}  # fmt: skip
    y, o = render(show, x)
    np.testing.assert_allclose(y[:, o.mtx(6)], y[:, o.bus(1)], atol=TOL)
    cut = sine_amplitude(y[:, o.mtx(5)], 1000.0, FS)
    source = sine_amplitude(y[:, o.bus(1)], 1000.0, FS)
    assert 20 * math.log10(cut / source) == pytest.approx(-12.0, abs=0.05)


def test_a_matrix_limiter_holds_its_ceiling():
    ceiling_db = -12.0
    show = BUS_SHOW | {"/ch/01/mix/01/level": 10.0, "/bus/01/mix/fader": 10.0,
                       "/bus/01/mix/01/level": 10.0, "/mtx/01/mix/fader": 10.0,
                       "/ls/mtx/01/limiter/on": 1,
                       "/ls/mtx/01/limiter/ceiling": ceiling_db}  # fmt: skip
    y, o = render(show, noise(FS // 2, seed=5, amp=0.5))
    peak = np.abs(y[:, o.mtx(1)]).max()
    assert peak <= undb(ceiling_db) * (1 + 1e-6)
    assert peak > undb(ceiling_db - 1.0)  # it is working, not silent


def test_a_matrix_is_as_late_as_every_other_output():
    """The matrix taps before its sources' limiters: one lookahead, not two."""
    x = np.zeros(4096)
    x[100] = 0.5
    show = {"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": 0.0,
            "/bus/01/mix/01/level": 0.0}  # fmt: skip
    e = make_engine(FS)
    e.mixer.set_many(show)
    o = outs_of(e)
    y = e.render(mono_input(e, x), block=64)
    assert np.argmax(np.abs(y[:, o.bus(1)])) == 100 + e.latency
    assert np.argmax(np.abs(y[:, o.mtx(1)])) == 100 + e.latency


def test_a_linked_pair_enters_a_matrix_as_left_plus_right_over_root_2():
    """A linked pair plays by its odd bus's sends; both halves feed."""
    show = BUS_SHOW | {"/config/buslink/1-2": 1, "/bus/01/mix/01/level": 0.0,
                       "/ls/bus/02/limiter/on": 0}  # fmt: skip
    y, o = render(show, noise(FS // 4, seed=6))
    pair = (y[:, o.bus(1)] + y[:, o.bus(2)]) / math.sqrt(2.0)
    np.testing.assert_allclose(y[:, o.mtx(1)], pair, atol=TOL)


# -- balance --------------------------------------------------------------------


@pytest.mark.parametrize("pan", [-100.0, -50.0, -10.0, 0.0, 30.0, 100.0])
def test_main_balance_follows_its_law(pan):
    x = noise(FS // 4, seed=7)
    centre, o = render(BUS_SHOW, x)
    y, _ = render(BUS_SHOW | {"/main/st/mix/pan": pan}, x)
    away = math.cos(abs(pan) / 100.0 * math.pi / 2.0)
    want = (away, 1.0) if pan > 0 else (1.0, away)
    for side, out in enumerate((o.main_l, o.main_r)):
        np.testing.assert_allclose(y[:, out], centre[:, out] * want[side], atol=TOL)
    assert derive.balance_gains(pan) == pytest.approx(want, abs=1e-12)
    # -3 dB at half way, 0 dB at centre, nothing at the far end.
    assert derive.balance_gains(-50.0)[1] == pytest.approx(undb(-3.0103), abs=1e-4)
    assert derive.balance_gains(100.0)[0] == 0.0
    assert derive.balance_gains(0.0) == (1.0, 1.0)


def test_a_linked_pair_takes_the_odd_bus_pan_as_balance_an_unlinked_bus_ignores_it():
    x = noise(FS // 4, seed=8)
    show = BUS_SHOW | {"/ch/01/mix/02/level": 0.0, "/ls/bus/02/limiter/on": 0}
    plain, o = render(show, x)
    panned, _ = render(show | {"/bus/01/mix/pan": 40.0}, x)
    np.testing.assert_array_equal(panned, plain)  # no effect: no main to feed
    linked = show | {"/config/buslink/1-2": 1}
    centre, _ = render(linked, x)
    y, _ = render(linked | {"/bus/01/mix/pan": 40.0}, x)
    left, right = derive.balance_gains(40.0)
    np.testing.assert_allclose(y[:, o.bus(1)], centre[:, o.bus(1)] * left, atol=TOL)
    np.testing.assert_allclose(y[:, o.bus(2)], centre[:, o.bus(2)] * right, atol=TOL)


# -- scenes, undo, permissions, names --------------------------------------------

MATRIX_VALUES = {
    "/bus/02/mix/03/level": -7.5,
    "/bus/02/mix/03/on": 0,
    "/main/st/mix/01/level": -2.0,
    "/main/m/mix/06/level": 1.5,
    "/mtx/03/mix/fader": -4.0,
    "/mtx/03/config/name": "Delay fill",
    "/mtx/03/eq/2/g": 3.0,
    "/ls/mtx/03/delay/time": 12.5,
    "/ls/mtx/03/limiter/ceiling": -9.0,
    "/main/m/mix/fader": -5.0,
    "/ch/03/mix/mono": 1,
    "/ch/03/mix/mlevel": -8.0,
    "/main/st/mix/pan": 20.0,
    "/bus/01/mix/pan": -15.0,
}


def test_scene_save_and_recall_round_trip_the_new_parameters(tmp_path):
    e = make_engine(FS)
    scenes = SceneManager(e.mixer, tmp_path / "scenes", tmp_path / "state")
    e.mixer.set_many(MATRIX_VALUES)
    path = scenes.save("zones")
    data = tomllib.loads(path.read_text())
    assert data["mtx"]["03"]["from"]["bus"]["02"] == {"on": 0, "level_db": -7.5}
    assert data["mtx"]["03"]["fader_db"] == -4.0
    assert data["mono"]["fader_db"] == -5.0
    assert data["ch"]["03"]["mono_level_db"] == -8.0
    e.mixer.set_many({a: e.mixer.registry[a].default for a in MATRIX_VALUES})
    scenes.recall("zones", now=0.0)
    for address, value in MATRIX_VALUES.items():
        assert e.mixer.get(address) == value, address
    # A scope naming one matrix recalls that matrix only.
    only = scenes.save("mtx3", Scope(("mtx.03",)))
    header = {"format", "name", "scope", "fade_s"}
    assert set(tomllib.loads(only.read_text())) - header == {"mtx"}


def test_matrix_changes_are_undone():
    e = make_engine(FS)
    console = Source.surface(("127.0.0.1", 50000))
    journal = UndoJournal(e.mixer, clock=lambda: 0.0)
    e.mixer.set("/bus/01/mix/02/level", -3.0, source=console)
    assert journal.undo() == ("/bus/01/mix/02/level", -math.inf)
    assert e.mixer.get("/bus/01/mix/02/level") == -math.inf


def test_matrices_are_the_engineers_and_a_performer_owns_its_balance():
    performer = Role("performer", 1)
    for address in ("/mtx/01/mix/fader", "/bus/01/mix/01/level", "/main/m/mix/fader",
                    "/ls/mtx/01/limiter/ceiling", "/ch/01/mix/mono"):  # fmt: skip
        assert not performer.may_write(address), address
        assert Role("engineer").may_write(address)
    assert performer.may_write("/bus/01/mix/pan")
    assert not performer.may_write("/bus/02/mix/pan")


def test_out_map_jack_ports_and_files_name_the_new_outputs():
    n_bus = 16
    mono, mtx = L.mono_output(n_bus), list(L.matrix_outputs(n_bus))
    assert parse_out_map("L,R,M,MTX1,mtx6", n_bus) == [16, 17, mono, mtx[0], mtx[5]]
    _, outs = port_names(32, n_bus)
    assert outs[mono] == "main_M"
    assert [outs[o] for o in mtx] == [f"mtx_{m:02d}" for m in range(1, 7)]
    assert port_of("/mtx/02/config/name") == ["mtx_02"]
    assert port_of("/main/m/config/name") == ["main_M"]
    files = output_file_names(n_bus)
    assert files[mono] == "main_m" and files[mtx[0]] == "mtx01"
    assert len(outs) == len(files) == L.Dims(n_bus=n_bus).n_out == 27
    ms = parse_out_lookahead(["MTX2=0.5", "M=0.3"], n_bus, 1.0)
    assert ms[mtx[1]] == 0.5 and ms[mono] == 0.3 and ms[mtx[0]] == 1.0


def test_the_outputs_keep_their_places_and_the_first_pass_its_lanes():
    d = L.Dims(n_bus=16)
    assert (d.main_l, d.cue_l, d.mono) == (16, 18, 20)
    assert list(L.matrix_outputs(16)) == list(range(21, 27))
    assert d.n_mix == 21 and d.n_out_lanes == 24  # the mono bus in a spare lane


def test_the_x32_tree_answers_matrices_and_the_mono_bus_from_the_registry():
    registry = Registry(32, 16)
    tree = tree_for(registry)
    for address in ("/mtx/01/mix/fader", "/mtx/06/eq/6/q", "/main/m/mix/on",
                    "/main/m/mix/03/level", "/bus/16/mix/06/on", "/ch/32/mix/mlevel",
                    "/main/st/mix/pan", "/mtx/01/config/name"):  # fmt: skip
        assert address in registry and address not in tree, address
    strips = {p.strip.kind for p in registry}
    assert {StripKind.MONO, StripKind.MTX} <= strips
    # Concepts livesound has not: still answered, without effect.
    for address in ("/mtx/01/dyn/on", "/bus/01/mix/mono", "/bus/01/mix/01/pan",
                    "/config/mtxlink/1-2"):  # fmt: skip
        assert address in tree and "no effect" in tree.params[address].doc

"""Recalling scenes into a mix: round trip, scope, safes, fades on the audio
clock (offline render), refusals, the shipped scenes on the virtual stage,
the cue list and autosave.

Engines are ``BlockEngine``s driven from the test: the scene manager's
``tick`` runs as a block hook, so a fade moves exactly as it would live.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scene_helpers import rich_values

from livesound.audio import layout as L
from livesound.control.offline import BlockEngine
from livesound.scenes import files
from livesound.scenes.files import GROUPS, SceneError, Scope
from livesound.scenes.manager import AUTOSAVE_EVERY_S, SceneManager
from livesound.virtual.stage import render_stage

N_IN, N_BUS = 8, 4
SR, BLOCK = 48000, 64
MAIN_L = N_BUS  # output columns: buses, main L/R, cue L/R
SHIPPED = Path(__file__).resolve().parent.parent / "scenes"
SHIPPED_NAMES = ("band-4piece", "speech-conference", "singer-songwriter-iem")


def new_engine(n_in: int = N_IN, n_bus: int = N_BUS, phys_out: int = 8) -> BlockEngine:
    return BlockEngine(n_in=n_in, n_bus=n_bus, phys_in=8, phys_out=phys_out)


def changed(before: dict, after: dict) -> set[str]:
    return {a for a in after if after[a] != before[a]}


def published(engine: BlockEngine) -> int:
    """Change sets handed to the audio plane so far."""
    return int(engine.core.hdr[L.H_SEQ])


# -- round trip --------------------------------------------------------------------


def test_round_trip_save_then_recall_on_a_fresh_engine(tmp_path):
    a = new_engine()
    a.mixer.set_many(rich_values(a.mixer.registry, seed=1))
    SceneManager(a.mixer, tmp_path).save("show")
    b = new_engine()
    assert changed(b.mixer.snapshot(), a.mixer.snapshot())
    SceneManager(b.mixer, tmp_path).recall("show", 0.0)
    assert b.mixer.snapshot() == a.mixer.snapshot()
    # ... and what the audio plane got is the same too.
    noise = np.random.default_rng(0).normal(0, 0.1, (4096, 8)).astype(np.float32)
    np.testing.assert_array_equal(a.render(noise, BLOCK), b.render(noise, BLOCK))


def test_recall_is_one_change_set(tmp_path):
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path)
    m.save("defaults")
    e.mixer.set_many(rich_values(e.mixer.registry, seed=2))
    before = published(e)
    e.mixer.set("/ch/01/mix/fader", -5.0)
    one = published(e) - before
    before = published(e)
    at_once = m.recall("defaults", 0.0)
    assert len(at_once) > 500
    assert published(e) - before == one


# -- scope ---------------------------------------------------------------------------


def test_scope_strips_only_those_strips_change(tmp_path):
    e = new_engine()
    reg = e.mixer.registry
    m = SceneManager(e.mixer, tmp_path)
    e.mixer.set_many(rich_values(reg, seed=3))
    scene_values = e.mixer.snapshot()
    m.save("two strips", Scope(("ch.02", "bus.01"), GROUPS))
    e.mixer.set_many(rich_values(reg, seed=4))
    before = e.mixer.snapshot()
    m.recall("two strips", 0.0)
    moved = changed(before, e.mixer.snapshot())
    assert moved, "the scene changed nothing"
    assert {reg[a].strip.name for a in moved} == {"ch.02", "bus.01"}
    for p in reg:
        want = scene_values if p.strip.name in ("ch.02", "bus.01") else before
        assert e.mixer.get(p.address) == want[p.address], p.address


def test_faders_only_scene_leaves_eq_and_everything_else(tmp_path):
    e = new_engine()
    reg = e.mixer.registry
    m = SceneManager(e.mixer, tmp_path)
    e.mixer.set_many({"/ch/01/mix/fader": -6.0, "/bus/02/mix/fader": -2.0})
    m.save("faders", Scope(None, ("fader",)))
    e.mixer.set_many(rich_values(reg, seed=5))
    before = e.mixer.snapshot()
    m.recall("faders", 0.0)
    after = e.mixer.snapshot()
    assert after["/ch/01/mix/fader"] == -6.0 and after["/bus/02/mix/fader"] == -2.0
    assert {reg[a].group for a in changed(before, after)} == {"fader"}
    assert after["/ch/01/eq/2/g"] == before["/ch/01/eq/2/g"]


def test_values_a_file_holds_outside_its_scope_are_not_applied(tmp_path):
    """A hand-edited scope (fader only) over a file that stores everything."""
    e = new_engine()
    reg = e.mixer.registry
    e.mixer.set_many(rich_values(reg, seed=6))
    text = files.to_toml(reg, files.capture(reg, e.mixer.snapshot(), "x", Scope()))
    text, n = re.subn(r"groups = \[.*?\]", 'groups = ["fader"]', text, flags=re.S)
    assert n == 1
    (tmp_path / "x.toml").write_text(text)
    e2 = new_engine()
    before = e2.mixer.snapshot()
    SceneManager(e2.mixer, tmp_path).recall("x", 0.0)
    moved = changed(before, e2.mixer.snapshot())
    assert moved and {reg[a].group for a in moved} == {"fader"}


# -- safes ---------------------------------------------------------------------------


def test_safe_strip_is_not_touched_by_a_recall_or_its_fade(tmp_path):
    e = new_engine()
    reg = e.mixer.registry
    m = SceneManager(e.mixer, tmp_path)
    e.mixer.set_many(rich_values(reg, seed=7))
    m.save("show", fade_s=2.0)
    e.mixer.set_many(rich_values(reg, seed=8))
    e.mixer.set("/ch/07/mix/fader", -12.0)
    before = e.mixer.snapshot()
    m.safes.strips.add("ch.07")
    m.recall("show", 0.0)
    m.tick(1.0)
    m.tick(2.5)
    moved = changed(before, e.mixer.snapshot())
    assert len(moved) > 500
    assert not {a for a in moved if e.mixer.registry[a].strip.name == "ch.07"}
    assert e.mixer.get("/ch/07/mix/fader") == -12.0
    assert e.mixer.get("/ch/07/preamp/trim") == before["/ch/07/preamp/trim"]


def test_safe_group_is_not_touched_by_a_recall(tmp_path):
    e = new_engine()
    reg = e.mixer.registry
    m = SceneManager(e.mixer, tmp_path)
    e.mixer.set_many(rich_values(reg, seed=9))
    m.save("show")
    e.mixer.set_many(rich_values(reg, seed=10))
    before = e.mixer.snapshot()
    m.safes.groups.update({"preamp", "notches"})
    m.recall("show", 0.0)
    moved = changed(before, e.mixer.snapshot())
    assert moved and not {a for a in moved if reg[a].group in ("preamp", "notches")}
    assert {reg[a].group for a in moved} == set(GROUPS) - {"preamp", "notches"}


# -- fades on the audio clock --------------------------------------------------------

FADE_S = 1.0
TONE_DB = -20.0  # a 1 kHz sine on input 1


def _db(x: np.ndarray) -> float:
    """RMS level in dB (-inf for silence)."""
    power = float(np.mean(x.astype(np.float64) ** 2))
    return 10 * math.log10(power) if power > 0 else -math.inf


class FadeRun:
    """Input 1 (a 1 kHz sine, centre) goes to the main at -30 dB and, pre-fader,
    into muted bus 1. A scene with fade time ``FADE_S`` brings the fader to
    0 dB and unmutes the bus; it is recalled after 0.1 s of audio and the
    render goes on for 1.3 s with ``tick`` as a block hook."""

    def __init__(self, tmp_path: Path) -> None:
        e = self.engine = new_engine()
        self.manager = m = SceneManager(e.mixer, tmp_path)
        e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": 0.0,
                          "/ch/01/mix/01/type": "PRE", "/ch/01/config/name": "Sine",
                          "/ch/01/eq/3/g": 6.0, "/ch/01/mix/02/level": -10.0})  # fmt: skip
        m.save("up", fade_s=FADE_S)
        e.mixer.set_many({"/ch/01/mix/fader": -30.0, "/bus/01/mix/on": 0,
                          "/ch/01/config/name": "Before", "/ch/01/eq/3/g": 0.0,
                          "/ch/01/mix/02/level": -40.0})  # fmt: skip
        e.block_hooks.append(m.tick)
        t = np.arange(round(1.4 * SR)) / SR
        x = np.zeros((t.size, 8), np.float32)
        x[:, 0] = 10 ** (TONE_DB / 20) * math.sqrt(2) * np.sin(2 * np.pi * 1000 * t)
        pre = round(0.1 * SR)
        self.before = e.render(x[:pre], BLOCK)
        self.t0 = e.frames / SR
        m.recall("up", self.t0)
        self.right_after = e.mixer.snapshot()
        self.out = e.render(x[pre:], BLOCK)

    def level(self, column: int, t: float, cycles: int = 2) -> float:
        """dB of the output ``t`` s after the recall, over whole sine cycles,
        for the input that was at the engine ``t`` s after the recall."""
        i = round(t * SR) + self.engine.latency
        return _db(self.out[i : i + 48 * cycles, column])


@pytest.fixture(scope="module")
def fade(tmp_path_factory) -> FadeRun:
    return FadeRun(tmp_path_factory.mktemp("fade"))


def test_fade_moves_the_fader_over_the_fade_time(fade):
    start = _db(fade.before[-4800:, MAIN_L])
    end = fade.level(MAIN_L, 1.25, cycles=10)
    # main L: tone -20 dB, centre pan -3 dB, fader from -30 to 0 dB (and the
    # scene's +6 dB of EQ at 1 kHz, switched at the start)
    assert start == pytest.approx(TONE_DB - 3.01 - 30.0, abs=0.1)
    assert end == pytest.approx(TONE_DB - 3.01 + 6.0, abs=0.1)
    middle = fade.level(MAIN_L, 0.5)
    assert start + 6.0 + 3.0 < middle < end - 3.0
    # Not there before the fade time ...
    assert fade.level(MAIN_L, 0.9) < end - 1.0
    assert fade.level(MAIN_L, FADE_S - 0.05) < end - 0.5
    # ... and steadily on the way.
    levels = [fade.level(MAIN_L, t) for t in np.arange(0.05, 1.0, 0.05)]
    assert levels == sorted(levels)


def test_fade_lands_on_the_target_within_the_gain_ramp(fade):
    """The fader reaches its value at the fade time; the audio follows within
    the engine's 10 ms gain ramp (and one block)."""
    end = fade.level(MAIN_L, 1.25, cycles=10)
    assert fade.level(MAIN_L, FADE_S + 0.010 + BLOCK / SR) == pytest.approx(
        end, abs=0.05
    )
    assert fade.engine.mixer.get("/ch/01/mix/fader") == pytest.approx(0.0, abs=1e-9)


def test_fade_reaches_the_target_at_the_fade_time_plus_one_block(fade):
    end = fade.level(MAIN_L, 1.25, cycles=10)
    assert fade.level(MAIN_L, FADE_S + BLOCK / SR) == pytest.approx(end, abs=0.05)


def test_other_parameters_switch_at_the_start_of_a_fade(fade):
    v = fade.right_after
    assert v["/bus/01/mix/on"] == 1 and v["/ch/01/config/name"] == "Sine"
    assert v["/ch/01/eq/3/g"] == 6.0
    assert v["/ch/01/mix/fader"] == -30.0  # faders and sends move with the fade
    assert v["/ch/01/mix/02/level"] == -40.0
    # Bus 1 (pre-fader send, +6 dB of EQ at 1 kHz) is at full level at once.
    assert _db(fade.before[-4800:, 0]) == -math.inf
    bus_end = fade.level(0, 1.25, cycles=10)
    assert bus_end == pytest.approx(TONE_DB + 6.0, abs=0.2)
    # (within the smoothing: 10 ms for gains, 20 ms for filter coefficients)
    assert fade.level(0, 0.05) == pytest.approx(bus_end, abs=0.1)
    assert fade.level(MAIN_L, 0.05) < bus_end - 20.0  # while the fader fades


def test_send_levels_fade_too(tmp_path):
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path)
    e.mixer.set("/ch/03/mix/02/level", 0.0)
    m.save("send", Scope(("ch.03",), ("sends",)), fade_s=2.0)
    e.mixer.set("/ch/03/mix/02/level", -40.0)
    m.recall("send", 10.0)
    assert e.mixer.get("/ch/03/mix/02/level") == -40.0
    m.tick(11.0)
    assert -40.0 < e.mixer.get("/ch/03/mix/02/level") < -3.0
    m.tick(12.0)
    assert e.mixer.get("/ch/03/mix/02/level") == pytest.approx(0.0, abs=1e-9)
    assert not m.fades


def test_a_new_recall_takes_over_a_running_fade(tmp_path):
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path)
    e.mixer.set("/ch/01/mix/fader", 0.0)
    m.save("slow", fade_s=10.0)
    e.mixer.set("/ch/01/mix/fader", -20.0)
    m.save("snap")
    m.recall("slow", 0.0)
    m.tick(5.0)
    assert -20.0 < e.mixer.get("/ch/01/mix/fader") < 0.0
    m.recall("snap", 5.0)
    for now in (6.0, 10.0, 11.0):
        m.tick(now)
        assert e.mixer.get("/ch/01/mix/fader") == -20.0


def test_a_faded_recall_ends_exactly_on_the_scene(tmp_path):
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path)
    e.mixer.set_many({"/ch/01/mix/fader": -3.3, "/ch/02/mix/01/level": 9.9})
    m.save("show", fade_s=1.0)
    scene = m.load("show")
    e.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/02/mix/01/level": 0.0})
    m.recall("show", 0.0)
    m.tick(1.0)
    assert not m.fades
    assert e.mixer.get("/ch/01/mix/fader") == scene.values["/ch/01/mix/fader"]
    assert e.mixer.get("/ch/02/mix/01/level") == scene.values["/ch/02/mix/01/level"]


# -- bad scene files change nothing ----------------------------------------------------


@pytest.mark.parametrize(
    "where, bad",
    [
        ("last", "fader_db = 99.0"),  # out of range
        ("last", "fadr_db = 0.0"),  # unknown
        ("last", 'fader_db = "loud"'),  # wrong type
        ("first", "format = 1 2"),  # not TOML
        ("first", "format = 9"),  # newer format
    ],
)
def test_recall_of_a_bad_file_applies_nothing(tmp_path, where, bad):
    e = new_engine()
    reg = e.mixer.registry
    e.mixer.set_many(rich_values(reg, seed=11))
    m = SceneManager(e.mixer, tmp_path)
    m.save("show")
    lines = (tmp_path / "show.toml").read_text().splitlines()
    # A bad line after every good one (the strips sort ch < main), or before.
    at = len(lines) if where == "last" else 0
    if where == "last":
        lines += ["", "[main]", bad] if "fader" in bad else [bad]
    else:
        lines[0] = bad
    (tmp_path / "show.toml").write_text("\n".join(lines) + "\n")
    e.mixer.set_many(rich_values(reg, seed=12))
    before, sets = e.mixer.snapshot(), published(e)
    with pytest.raises(SceneError) as err:
        m.recall("show", 0.0)
    assert "show.toml" in str(err.value)
    if where == "last" and "TOML" not in str(err.value):
        assert f"show.toml:{at + 3 if 'fader' in bad else at + 1}:" in str(err.value)
    assert e.mixer.snapshot() == before and published(e) == sets
    assert m.current is None and not m.fades


def test_a_duplicate_table_is_refused_as_a_whole(tmp_path):
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path)
    m.save("show")
    text = (tmp_path / "show.toml").read_text()
    (tmp_path / "show.toml").write_text(text + "\n[ch.01]\nfader_db = 0.0\n")
    before = e.mixer.snapshot()
    with pytest.raises(SceneError, match="not valid TOML"):
        m.recall("show", 0.0)
    assert e.mixer.snapshot() == before


@pytest.mark.parametrize("name", ["missing", "../etc/passwd", "", "a/b", ".hidden"])
def test_recall_of_no_such_scene_is_refused(tmp_path, name):
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path)
    before = e.mixer.snapshot()
    with pytest.raises(SceneError):
        m.recall(name, 0.0)
    assert e.mixer.snapshot() == before


# -- the shipped scenes on the virtual stage -------------------------------------------


@pytest.fixture(scope="module")
def stage() -> np.ndarray:
    return render_stage(SR, 1.0)[: SR // 2]


def _ceiling_db(v: dict, o: int, n_bus: int) -> float:
    """The limiter ceiling that holds output ``o`` (a linked pair: the odd bus's)."""
    if o >= n_bus + 2:
        return 0.0  # cue: full scale
    if o >= n_bus:
        return v["/ls/main/st/limiter/ceiling"]
    first = o - o % 2
    if v.get(f"/config/buslink/{first + 1}-{first + 2}"):
        o = first
    return v[f"/ls/bus/{o + 1:02d}/limiter/ceiling"]


def render_shipped(name: str, stage: np.ndarray) -> tuple[np.ndarray, dict]:
    e = new_engine(32, 16, phys_out=20)
    m = SceneManager(e.mixer, SHIPPED)
    m.recall(name, 0.0)
    assert m.current == name
    return e.render(stage, BLOCK), e.mixer.snapshot()


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_scene_plays_the_virtual_stage_under_its_ceilings(name, stage):
    out, v = render_shipped(name, stage)
    assert np.isfinite(out).all()
    peaks = np.abs(out).max(axis=0)
    for o in range(20):
        ceiling = 10 ** (_ceiling_db(v, o, 16) / 20)
        assert peaks[o] <= ceiling * (1 + 1e-5), (o, peaks[o], ceiling)
    rms = [_db(out[:, o]) for o in range(20)]
    assert -30.0 < rms[16] < -10.0 and -30.0 < rms[17] < -10.0, rms  # main L/R
    used = {"band-4piece": {0, 1, 2, 3}, "speech-conference": {0, 14, 15},
            "singer-songwriter-iem": {0, 1}}[name]  # fmt: skip
    for o in range(16):
        if o in used:
            assert rms[o] > -40.0, (o, rms[o])
        else:
            assert peaks[o] == 0.0, o


def test_the_click_and_the_audience_mics_never_reach_the_pa(stage):
    only = np.zeros_like(stage)
    only[:, [3, 6, 7]] = stage[:, [3, 6, 7]]  # inputs 4, 7, 8
    out, v = render_shipped("singer-songwriter-iem", only)
    assert (v["/ch/04/config/name"], v["/ch/07/config/name"]) == ("Click", "Aud mic L")
    assert np.abs(out[:, 16:18]).max() == 0.0
    assert _db(out[:, 0]) > -50 and _db(out[:, 1]) > -50  # but in the ears


def test_band_vocal_wedge_is_mostly_lead_vocal(stage):
    vox = np.zeros_like(stage)
    vox[:, 6] = stage[:, 6]
    rest = stage.copy()
    rest[:, 6] = 0.0
    (with_vox, _), (without, _) = (
        render_shipped("band-4piece", vox),
        render_shipped("band-4piece", rest),
    )
    assert _db(with_vox[:, 0]) > _db(without[:, 0]) + 3.0


# -- cue list ------------------------------------------------------------------------


@pytest.fixture
def cued(tmp_path) -> tuple[BlockEngine, SceneManager]:
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path)
    for name, db in (("walk-in", -20.0), ("act 1", -5.0), ("encore", 0.0)):
        e.mixer.set("/ch/01/mix/fader", db)
        m.save(name)
    (tmp_path / "cuelist.toml").write_text('cues = ["walk-in", "act 1", "encore"]\n')
    e.mixer.set("/ch/01/mix/fader", -90.0)
    return e, m


def test_go_walks_the_cue_list_in_order_and_back(cued):
    e, m = cued
    fader = lambda: e.mixer.get("/ch/01/mix/fader")  # noqa: E731
    assert m.cues() == ["walk-in", "act 1", "encore"]
    assert (m.current, m.next_cue()) == (None, "walk-in")
    assert m.go(0.0) == "walk-in" and fader() == -20.0
    assert (m.current, m.next_cue()) == ("walk-in", "act 1")
    assert m.go(1.0) == "act 1" and fader() == -5.0
    assert m.go(2.0) == "encore" and fader() == 0.0
    assert m.next_cue() is None
    assert m.go(3.0) == "encore"  # the end of the list: stays
    assert m.go(4.0, -1) == "act 1" and fader() == -5.0
    assert m.go(5.0, -1) == "walk-in"
    assert m.go(6.0, -1) == "walk-in"  # the top: stays
    m.recall("encore", 7.0)  # a recall by name moves the cue position
    assert m.go(8.0, -1) == "act 1"


def test_cue_list_naming_a_missing_scene_changes_nothing(cued):
    e, m = cued
    (m.folder / "cuelist.toml").write_text('cues = ["walk-in", "gone"]\n')
    m.go(0.0)
    before = e.mixer.snapshot()
    with pytest.raises(SceneError, match="gone"):
        m.go(1.0)
    assert e.mixer.snapshot() == before and m.current == "walk-in"
    assert m.next_cue() == "gone"


@pytest.mark.parametrize("text", ["cues = [1, 2]\n", "cues = 'x'\n", "cues = [\n"])
def test_a_bad_cue_list_is_refused(cued, text):
    e, m = cued
    (m.folder / "cuelist.toml").write_text(text)
    with pytest.raises(SceneError, match="cuelist.toml"):
        m.go(0.0)


def test_without_a_cue_list_the_scenes_go_in_name_order(cued):
    e, m = cued
    (m.folder / "cuelist.toml").unlink()
    assert m.cues() == m.names() == ["act 1", "encore", "walk-in"]
    assert m.go(0.0) == "act 1"


def test_a_copied_scene_file_is_recalled_under_its_file_name(cued):
    e, m = cued
    shutil.copy(m.folder / "walk-in.toml", m.folder / "encore.toml")
    m.recall("encore", 0.0)
    assert m.current == "encore" and m.next_cue() is None


def test_rename_and_delete(cued):
    e, m = cued
    m.rename("encore", "encore 2")
    assert m.names() == ["act 1", "encore 2", "walk-in"]
    assert m.load("encore 2").name == "encore 2"
    with pytest.raises(SceneError):
        m.rename("act 1", "walk-in")  # exists
    m.delete("act 1")
    assert m.names() == ["encore 2", "walk-in"]
    with pytest.raises(SceneError):
        m.delete("act 1")


# -- autosave ---------------------------------------------------------------------------


def test_autosave_is_debounced(tmp_path):
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path / "scenes", tmp_path / "state")
    path = m.autosave_path
    assert not m.autosave(100.0) and not path.exists()  # nothing changed
    e.mixer.set("/ch/01/mix/fader", -7.0)
    assert m.autosave(100.0)
    assert files.load(e.mixer.registry, path).values["/ch/01/mix/fader"] == -7.0
    e.mixer.set("/ch/01/mix/fader", -8.0)
    for now in (100.5, 100.0 + AUTOSAVE_EVERY_S - 0.01):
        assert not m.autosave(now)
        assert files.load(e.mixer.registry, path).values["/ch/01/mix/fader"] == -7.0
    assert m.autosave(100.0 + AUTOSAVE_EVERY_S)
    assert files.load(e.mixer.registry, path).values["/ch/01/mix/fader"] == -8.0
    assert not m.autosave(200.0)  # no change since


def test_restore_brings_the_show_back_on_a_fresh_engine(tmp_path):
    a = new_engine()
    m = SceneManager(a.mixer, tmp_path / "scenes", tmp_path / "state")
    a.mixer.set_many(rich_values(a.mixer.registry, seed=13))
    assert m.autosave(10.0)
    b = new_engine()
    m2 = SceneManager(b.mixer, tmp_path / "scenes", tmp_path / "state")
    assert changed(b.mixer.snapshot(), a.mixer.snapshot())
    assert m2.restore()
    assert b.mixer.snapshot() == a.mixer.snapshot()
    assert not m2.autosave(100.0)  # restoring is not a change to save


def test_restore_without_or_with_a_broken_autosave_changes_nothing(tmp_path):
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path / "scenes", tmp_path / "state")
    before = e.mixer.snapshot()
    assert not m.restore()
    m.autosave_path.parent.mkdir()
    m.autosave_path.write_text("format = 1\n[ch.01]\nfader_db = 0.0\nfader_db = 1.0\n")
    assert not m.restore()
    assert e.mixer.snapshot() == before
    assert not SceneManager(e.mixer, tmp_path).restore()  # no state dir at all
    assert not SceneManager(e.mixer, tmp_path).autosave(100.0)


# -- every scene ready ahead of its recall -----------------------------------------------


def _three_scenes(tmp_path: Path) -> tuple[BlockEngine, SceneManager]:
    e = new_engine()
    m = SceneManager(e.mixer, tmp_path)
    for seed, name in enumerate(("a", "b", "c"), start=3):
        e.mixer.set_many(rich_values(e.mixer.registry, seed=seed))
        m.save(name)
    return e, m


def test_every_scene_is_ready_and_a_recall_by_name_equals_a_cold_one(tmp_path):
    e, m = _three_scenes(tmp_path)
    m.prepare_all()
    assert sorted(m._readies) == ["a", "b", "c"]
    cold = new_engine()
    cm = SceneManager(cold.mixer, tmp_path)
    for name in ("b", "a", "c", "b"):
        e.mixer.set("/ch/02/mix/pan", -25.0)  # a live change between recalls
        cold.mixer.set("/ch/02/mix/pan", -25.0)
        assert name in m._readies
        m.recall(name, 0.0)
        cm.recall(name, 0.0)
        assert e.mixer.snapshot() == cold.mixer.snapshot()
        for k in L.MAILBOX:
            np.testing.assert_array_equal(e.core.arrays[k], cold.core.arrays[k], k)
        m.prepare_all()  # what the engine does after each recall


def test_a_scene_file_changed_after_it_was_made_ready_is_read_again(tmp_path):
    e, m = _three_scenes(tmp_path)
    m.prepare_all()
    other = new_engine()
    other.mixer.set("/ch/01/mix/fader", -33.0)
    SceneManager(other.mixer, tmp_path).save("b")  # from another console, say
    m.recall("b", 0.0)
    assert e.mixer.get("/ch/01/mix/fader") == -33.0


def test_a_safe_set_after_a_scene_was_made_ready_is_honoured(tmp_path):
    e, m = _three_scenes(tmp_path)
    m.prepare_all()
    m.set_safe("ch.01", True)
    e.mixer.set("/ch/01/mix/fader", -44.0)
    m.recall("a", 0.0)
    assert e.mixer.get("/ch/01/mix/fader") == -44.0


def test_a_deleted_scene_is_no_longer_ready(tmp_path):
    e, m = _three_scenes(tmp_path)
    m.prepare_all()
    m.delete("c")
    m.prepare_all()
    assert sorted(m._readies) == ["a", "b"]
    with pytest.raises(SceneError, match="no scene"):
        m.recall("c", 0.0)

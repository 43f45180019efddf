"""The adaptive feedback canceller in the engine's audio callback: off costs
nothing, on keeps a loop over its MSG stable as the simulator's canceller
does, at any power-of-two block; its ERLE and state reach the control
plane, and a broken input never poisons it."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from osc_helpers import DEADLINE, Client, free_udp_port, wait_until

from livesound.audio import layout as L
from livesound.audio.settings import ConfigError
from livesound.control.offline import BlockEngine
from livesound.control.registry import FBS_MODES
from livesound.enginehost import config_afc, parse_afc
from livesound.virtual import metrics, sources
from livesound.virtual.sim import AfcLoop, FeedbackLoop, Path, margin_db, stage_path

SR = 48000
VOCAL = ((0, 0),)  # input 1 into bus 1
DELAY = round(L.AFC_DELAY_S * SR)  # a mic's decorrelation delay, samples
DELAYED = {"delay": DELAY}  # the simulator's canceller with the engine's delay


def _engine(paths: tuple = (), block: int = 64) -> BlockEngine:
    """A vocal mic (input 1) sent pre-fader to its wedge (bus 1); a path's
    output starts in the suppressor's mode ``afc``, which keeps its canceller
    on (``BlockEngine`` runs no suppressor, so no notch is ever placed)."""
    engine = BlockEngine(n_in=2, n_bus=2, phys_in=2, phys_out=6, sample_rate=SR,
                         afc_paths=paths, afc_block=block)  # fmt: skip
    engine.mixer.set_many({"/ch/01/preamp/hpon": 1, "/ch/01/preamp/hpf": 100.0,
                           "/ch/01/mix/01/type": 3, "/ch/02/mix/01/type": 3,
                           "/ch/01/mix/01/level": 0.0})  # fmt: skip
    return engine


PATH = stage_path(SR, 1.5, 0.15, drr_db=0.0, seed=4, length_s=0.08)


@pytest.fixture(scope="module")
def msg() -> float:
    """The wedge loop's MSG: the send at which it starts to howl."""
    return margin_db(_engine(), Path(0, 0, PATH), 1 << 16)


def _closed_loop(loop: FeedbackLoop, send_db: float, block: int, seconds: float = 6.0):
    """Speech into ``loop`` (its engine's send at ``send_db``): the wedge's
    signal and its reference without the room."""
    loop.engine.mixer.set("/ch/01/mix/01/level", send_db)
    dry = _engine()
    dry.mixer.set("/ch/01/mix/01/level", send_db)
    source = sources.speech(SR, seconds)
    x = np.zeros((block, 2))
    out, ref = np.zeros(len(source)), np.zeros(len(source))
    for b in range(len(source) // block):
        cut = slice(b * block, (b + 1) * block)
        x[:, 0] = source[cut]
        out[cut] = loop.process(x)[:, 0]
        ref[cut] = dry.process(x)[:, 0]
    return out, ref


# The share of the second half's frames a settled canceller may still howl
# in: the mic's decorrelation delay moves this room's loop, and bursts of
# 0.1-0.2 s came back after F̂ had converged (5-13 % of a 10 s run's later
# seconds at 32, 64 and 128 frames; none without the delay). The loop
# alone howls in all of them.
SETTLED = 0.15


def _howls_late(out: np.ndarray, ref: np.ndarray) -> float:
    """Share of the second half's frames that howl."""
    howls = metrics.howling(out, ref, SR, min_frames=5, quiet_db=20.0)
    return float(np.mean(howls[len(howls) // 2 :]))


def test_with_no_path_or_a_path_off_the_engine_is_unchanged():
    """No paths: the cancellers' arrays are empty and the callback chunks as
    before. A path that is off (its output's suppressor off) leaves every
    output bit-identical to the engine without one, though it runs in
    chunks of its partition."""
    rng = np.random.default_rng(1)
    x = (0.3 * rng.standard_normal((SR // 2, 2))).astype(np.float32)
    bare, off = _engine(), _engine(VOCAL)
    assert all(bare.core.arrays[name].size == 0 for name in L.AFC_ARRAYS)
    off.mixer.set("/ls/bus/01/fbs/mode", "off")
    for e in (bare, off):
        e.mixer.set("/ch/02/mix/01/level", -6.0)
    np.testing.assert_array_equal(bare.render(x, 256), off.render(x, 256))
    assert off.afc.stats()[0]["frozen"]


def test_the_engines_canceller_holds_a_loop_over_its_msg(msg):
    """The send 3 dB over MSG: the loop alone howls to the end at the
    limiter; with the engine's canceller it howls while F̂ converges, then
    in brief bursts at most (``SETTLED``), and its last 2 s stay at the dry
    signal's level. It is the simulator's
    canceller (``AfcLoop``) moved into the callback: the two runs differ only
    by where the mic is rounded to float32 (after the subtraction there,
    before it here), by under 0.005 (−45 dB re the peak) over 6 s."""
    last = slice(-2 * SR, None)
    out, ref = _closed_loop(FeedbackLoop(_engine(), [Path(0, 0, PATH)]), msg + 3, 64)
    assert _howls_late(out, ref) == 1.0, "the loop alone should howl on"
    assert np.max(np.abs(out[last])) > 0.8
    engine = _engine(VOCAL)
    out, ref = _closed_loop(FeedbackLoop(engine, [Path(0, 0, PATH)]), msg + 3, 64)
    assert np.all(np.isfinite(out))
    assert _howls_late(out, ref) <= SETTLED
    assert np.max(np.abs(out[last])) < 1.2 * np.max(np.abs(ref[last]))
    sim, _ = _closed_loop(AfcLoop(_engine(), [Path(0, 0, PATH)], settings=DELAYED),
                          msg + 3, 64)  # fmt: skip
    assert np.max(np.abs(out - sim)) < 0.005


@pytest.mark.parametrize("block", [32, 128])
def test_any_power_of_two_block(msg, block):
    """The canceller's partition is the engine's block: at 32 and 128 frames
    too the loop over its MSG settles."""
    engine = _engine(VOCAL, block)
    out, ref = _closed_loop(FeedbackLoop(engine, [Path(0, 0, PATH)]), msg + 3, block)
    assert _howls_late(out, ref) <= SETTLED
    assert np.max(np.abs(out[-2 * SR :])) < 1.2 * np.max(np.abs(ref[-2 * SR :]))


def _delayed_by(engine: BlockEngine, x: np.ndarray, block: int) -> int:
    """How many samples later than without paths ``engine`` plays the mic
    (input 1) on every output, from an impulse; -1 if not one shift."""
    y0, y1 = _engine().render(x, block), engine.render(x, block)
    assert np.any(y0[:, 0]), "the mic reaches no output"
    shift = int(np.argmax(np.abs(y1[:, 0]))) - int(np.argmax(np.abs(y0[:, 0])))
    same = np.allclose(y1[shift:], y0[: len(y0) - shift], atol=1e-7)
    return shift if same else -1


def _impulse() -> np.ndarray:
    x = np.zeros((SR // 10, 2), np.float32)
    x[2400, 0] = 0.5  # after the start's parameter ramps
    return x


def test_a_mic_with_a_path_on_goes_on_its_decorrelation_delay_late():
    """While a path is on the mic reaches every output AFC_DELAY_S later (one
    line per mic, however many paths it has); a path off adds nothing."""
    x = _impulse()
    assert _delayed_by(_engine(VOCAL), x, 64) == DELAY
    assert _delayed_by(_engine(((0, 0), (0, 1))), x, 64) == DELAY
    engine = _engine(VOCAL)
    engine.mixer.set("/ls/bus/01/fbs/mode", "music")
    assert _delayed_by(engine, x, 64) == 0
    engine.mixer.set("/ls/bus/01/fbs/mode", "afc")
    assert _delayed_by(engine, x, 64) == DELAY


def test_blocks_that_are_not_whole_partitions_pass_uncorrected():
    """Device blocks of 48 frames with 64-frame partitions: nothing the
    canceller could align with what was played, so it stays at zero and
    every output is the engine's without it, on the mic's delay as always
    (the delay does not come and go with the block size)."""
    rng = np.random.default_rng(2)
    x = (0.3 * rng.standard_normal((SR // 4, 2))).astype(np.float32)
    x[:, 1] = 0.0
    x[:2400] = 0.0
    afc = _engine(VOCAL)
    assert _delayed_by(afc, x, 48) == DELAY
    assert not np.any(afc.core.arrays["afc_w"])


def test_refusals_are_one_line():
    assert parse_afc(["1=1", "2=L", "1=MTX1"], 2, 2, 64) == ((0, 0), (1, 2), (0, 7))
    with pytest.raises(ConfigError, match="power of two"):
        parse_afc(["1=1"], 2, 2, 96)
    for spec in ("3=1", "1=3", "1=CL", "1", "x=1"):
        with pytest.raises(ConfigError, match="MIC=OUTPUT"):
            parse_afc([spec], 2, 2, 64)
    with pytest.raises(ConfigError, match="twice"):
        parse_afc(["1=1", "1=1"], 2, 2, 64)
    assert parse_afc([], 2, 2, 96) == ()


@pytest.mark.parametrize(("text", "error"), [
    ('[afc]\npaths = "1=1"\n', "list"),
    ("[afc]\npaths = [1]\n", "list"),
    ("afc = 3\n", "table"),
    ("[afc\n", "show.toml"),
])  # fmt: skip
def test_show_config_paths_are_checked(tmp_path, text, error):
    """``[afc] paths`` in the show config: read as ``--afc`` takes them; a
    file that is broken, or paths that are not a list of text, is a one-line
    refusal naming the file; no table, no paths."""
    config = tmp_path / "show.toml"
    config.write_text('[afc]\npaths = ["1=1", "2=L"]\n')
    assert config_afc(config) == ["1=1", "2=L"]
    config.write_text("[osc]\n")
    assert config_afc(config) is None
    config.write_text(text)
    with pytest.raises(ConfigError, match=error):
        config_afc(config)


def _open_loop(engine: BlockEngine, seconds: float, nan_at: float | None = None):
    """The band (input 2, white noise) in the wedge, the mic (input 1, not
    sent) hearing the wedge through the room and a quiet talker: nothing to
    howl, everything for the canceller to take off."""
    engine.mixer.set_many({"/ch/01/mix/01/level": -90.0, "/ch/02/mix/01/level": 0.0})
    loop = FeedbackLoop(engine, [Path(0, 0, PATH)])
    rng = np.random.default_rng(3)
    x = np.zeros((64, 2))
    for b in range(int(seconds * SR) // 64):
        x[:, 0] = 1e-3 * rng.standard_normal(64)
        x[:, 1] = 0.1 * rng.standard_normal(64)
        if nan_at is not None and b == int(nan_at * SR) // 64:
            x[5, :] = np.nan
        out = loop.process(x)
        assert np.all(np.isfinite(out))


def test_erle_frozen_and_reset_reach_the_control_plane():
    """ERLE (mic power over corrected power) in ``/ls/stats``' terms: at the
    step size tuned for closed loops (0.01) it grows by about 0.2 dB a second
    on white noise, 2.5 dB after 12 s; a muted output freezes the path; a scene recalled, or a change of the output's
    suppressor mode, makes it start over."""
    engine = _engine(VOCAL)
    assert engine.afc.stats() == [{"mic": 1, "output": "1", "on": True,
                                   "erle_db": 0.0, "frozen": False, "diverged": 0,
                                   "learning": False, "learnt": False}]  # fmt: skip
    _open_loop(engine, 4.0)
    early = engine.afc.stats()[0]["erle_db"]
    _open_loop(engine, 8.0)
    stats = engine.afc.stats()[0]
    assert stats["erle_db"] > max(2.0, early + 1.0) and not stats["frozen"]
    learnt = engine.core.arrays["afc_w"].copy()
    engine.mixer.set("/bus/01/mix/on", 0)
    engine.process(np.zeros((64, 2)))
    assert engine.afc.stats()[0]["frozen"]
    engine.process(np.full((64, 2), 0.1))
    np.testing.assert_array_equal(engine.core.arrays["afc_w"], learnt)
    engine.afc.scene_recalled("verse")
    engine.process(np.zeros((64, 2)))
    assert not np.any(engine.core.arrays["afc_w"])
    engine.mixer.set("/bus/01/mix/on", 1)
    _open_loop(engine, 0.5)
    assert np.any(engine.core.arrays["afc_w"])
    engine.mixer.set("/ls/bus/01/fbs/mode", "music")
    engine.process(np.zeros((64, 2)))
    assert not np.any(engine.core.arrays["afc_w"])


def _silent_stage(engine: BlockEngine, seconds: float) -> np.ndarray:
    """The wedge loop closed with nothing on stage: the wedge's signal."""
    loop = FeedbackLoop(engine, [Path(0, 0, PATH)])
    x = np.zeros((64, 2))
    return np.concatenate(
        [loop.process(x)[:, 0] for _ in range(int(seconds * SR) // 64)]
    )


def test_learning_from_the_test_signal_through_the_callback(msg):
    """``AfcPaths.learn``: the wedge plays white noise at -20 dBFS RMS (under
    its limiter), the canceller learns the loop from it with the large step
    and all its partitions: over 15 dB ERLE within 5 s (17.5; 12.6 at 3 s:
    this short path is learnt by 256 partitions, most of them modelling
    nothing, and the meter averages over 1 s), where the cold step
    reaches under 1 dB on noise in that time. Muted, the wedge is silent (and
    the path frozen). Ended, the noise stops and the
    path is learnt; a mode change makes it start over, cold; refused where
    there is nothing to learn."""
    engine = _engine(VOCAL)
    engine.mixer.set("/ch/01/mix/01/level", msg - 3)
    assert engine.afc.learn(0, 30.0) == 1
    played = _silent_stage(engine, 5.0)
    stats = engine.afc.stats()[0]
    assert stats["learning"] and stats["learnt"] and stats["erle_db"] > 15.0, stats
    rms = np.sqrt(np.mean(played[SR:] ** 2))
    assert 0.08 < rms < 0.2, rms  # the noise, and what of it the loop brings back
    engine.mixer.set("/bus/01/mix/on", 0)  # muted, the wedge stays silent
    muted = _silent_stage(engine, 0.5)
    assert np.max(np.abs(muted[SR // 10 :])) == 0.0 and engine.afc.stats()[0]["frozen"]
    engine.mixer.set("/bus/01/mix/on", 1)
    engine.afc.end_learning(0)
    quiet = _silent_stage(engine, 0.5)
    assert np.max(np.abs(quiet[SR // 10 :])) < 1e-3
    stats = engine.afc.stats()[0]
    assert not stats["learning"] and stats["learnt"]
    # Learnt, the loop 3 dB over its MSG holds from the first second.
    out, ref = _closed_loop(FeedbackLoop(engine, [Path(0, 0, PATH)]), msg + 3, 64)
    assert _howls_late(out, ref) == 0.0
    engine.mixer.set("/ls/bus/01/fbs/mode", "music")
    engine.process(np.zeros((64, 2)))
    assert not engine.afc.stats()[0]["learnt"]
    with pytest.raises(ValueError, match="not in mode afc"):
        engine.afc.learn(0)
    with pytest.raises(ValueError, match="no canceller feeds 2"):
        engine.afc.learn(1)
    with pytest.raises(ValueError, match="learn for 0 to 30 s"):
        engine.afc.learn(0, 0.0)


def test_a_learning_ends_by_itself_and_a_second_ask_starts_it_over():
    """The timer: learning ends after its seconds; asked again meanwhile,
    it ends after the second ask's."""
    engine = _engine(VOCAL)
    engine.afc.learn(0, 0.05)
    wait_until(lambda: not engine.afc.learning(0), what="the learning to end")
    engine.afc.learn(0, 0.05)
    engine.afc.learn(0, 30.0)
    time.sleep(0.5)  # the first ask's end long past (a slow machine: longer still)
    assert engine.afc.learning(0)
    engine.afc.end_learning(0)
    assert not engine.afc.learning(0)


def test_a_broken_input_never_poisons_the_canceller():
    """A NaN on the inputs mid-run: the engine refuses it at its inputs, the
    canceller's state stays finite and it goes on cancelling."""
    engine = _engine(VOCAL)
    _open_loop(engine, 12.0, nan_at=2.0)
    for name in L.AFC_ARRAYS:
        assert np.all(np.isfinite(engine.core.arrays[name])), name
    assert engine.afc.stats()[0]["erle_db"] > 2.0


@pytest.mark.parametrize("given", ["command line", "show config"])
def test_the_engine_reports_its_cancellers_in_stats(tmp_path, given):
    """``livesound engine --afc 1=1`` (or ``[afc] paths`` in the show config)
    on the virtual stage: the path in ``/ls/stats``, on, its output's
    suppressor in mode ``afc``, the callback playing with it."""
    port = free_udp_port()
    config = tmp_path / "show.toml"
    config.write_text('[afc]\npaths = ["1=1"]\n')
    paths = (
        ["--afc", "1=1"] if given == "command line" else ["--show-config", str(config)]
    )
    proc = subprocess.Popen([sys.executable, "-m", "livesound", "engine", "--virtual",
                             "--inputs", "8", "--buses", "4", *paths,
                             "--state-dir", str(tmp_path / "state"),
                             "--osc-port", str(port), "--osc-host", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert "running on virtual stage" in proc.stdout.readline()
        with Client(port) as c:
            wait_until(lambda: json.loads(c.query("/ls/stats"))["engine"]["blocks"] > 100,
                       what="the engine to play blocks")  # fmt: skip
            (path,) = json.loads(c.query("/ls/stats"))["afc"]
            mode = c.query("/ls/bus/01/fbs/mode")
            # A tablet asks bus 1's canceller to learn for half a second.
            reply = c.request("/ls/bus/01/afc/learn", 0.5)
            assert (reply.address, reply.args) == ("/ls/bus/01/afc/learning", (1, 0.5))
            wait_until(lambda: json.loads(c.query("/ls/stats"))["afc"][0]["learnt"],
                       what="the path learnt")  # fmt: skip
            wait_until(lambda: not json.loads(c.query("/ls/stats"))["afc"][0]["learning"],
                       what="the learning to end")  # fmt: skip
            refused = c.request("/ls/bus/01/afc/learn", 99.0)
            assert refused.address == "/ls/error" and "learn for 0 to 30 s" in str(
                refused.args
            )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        proc.kill()
    assert (path["mic"], path["output"], path["on"]) == (1, "1", True)
    assert mode == FBS_MODES.index("afc")
    assert isinstance(path["erle_db"], float) and isinstance(path["frozen"], bool)
    assert proc.returncode == 0, err

"""The ``livesound`` command as a user runs it: real processes, real files."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from osc_helpers import DEADLINE, Client, free_udp_port, wait_until

from livesound.control.offline import BlockEngine


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livesound", *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.mark.parametrize(
    "args, expected",
    [
        (["engine", "--rate", "22050"], "use 44100, 48000, 96000"),
        (["engine", "--block", "2000"], "use 16 to 1024 frames"),
        (["engine", "--block", "8"], "use 16 to 1024 frames"),
        (["engine", "--virtual", "--in-map", "1,40"], "inputs are 1..32"),
        (["engine", "--virtual", "--out-map", "L,R,X"], "'X' is not an output"),
        (["engine", "--virtual", "--buses", "5"], "even number from 2 to 16"),
        (["engine", "--device", "no-such-card-xyz"], "no-such-card-xyz"),
        (["bench", "feedback", "--takes", "0"], "--takes must be 1 or more, not 0"),
        (["bench", "osc", "--takes", "2"], "--takes is for livesound bench feedback"),
    ],
)
def test_bad_settings_give_one_line_and_exit_2(args, expected):
    done = run_cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("livesound: error: ")
    assert expected in lines[0]
    assert "Traceback" not in done.stderr


def test_every_command_has_help():
    for command in ([], ["engine"], ["devices"], ["render"], ["bench"]):
        done = run_cli(*command, "--help")
        assert done.returncode == 0
        assert "usage: livesound" in done.stdout


def test_engine_runs_on_the_virtual_stage_and_stops_cleanly():
    port = free_udp_port()
    proc = subprocess.Popen([sys.executable, "-m", "livesound", "engine", "--virtual",
                             "--inputs", "8", "--buses", "4", "--osc-port", str(port),
                             "--osc-host", "127.0.0.1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        first = proc.stdout.readline()
        assert "running on virtual stage" in first
        with Client(port) as c:  # it answers, and plays
            wait_until(lambda: json.loads(c.query("/ls/stats"))["engine"]["blocks"],
                       what="the engine to play blocks")  # fmt: skip
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped;" in out
    assert "Traceback" not in err


def _write_wav(path, channels: int, frames: int = 9600, sr: int = 48000) -> np.ndarray:
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal((frames, channels))).astype(np.float32)
    x[min(1000, frames - 1), 0] = 0.9  # an impulse on input 1 to check alignment
    sf.write(str(path), x, sr, subtype="FLOAT")
    return x


def test_render_writes_one_aligned_file_per_output(tmp_path):
    src = tmp_path / "in.wav"
    x = _write_wav(src, channels=4)
    out = tmp_path / "out"
    done = run_cli("render", str(src), "-o", str(out), "--inputs", "8", "--buses",
                   "4", "--set", "/ch/01/mix/fader=0", "--set",
                   "/ch/01/mix/01/level=-6")  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["bus01.wav", "bus02.wav", "bus03.wav", "bus04.wav",
                            "main_l.wav", "main_r.wav", "cue_l.wav", "cue_r.wav",
                            "main_m.wav"] + [f"mtx{m:02d}.wav" for m in range(1, 7)])  # fmt: skip
    main_l, sr = sf.read(str(out / "main_l.wav"))
    assert sr == 48000 and main_l.shape[0] == x.shape[0]
    # The same engine fed by hand: the file is its output minus the latency.
    engine = BlockEngine(n_in=8, n_bus=4, phys_in=4, phys_out=8)
    engine.mixer.set_many({"/ch/01/mix/fader": 0.0, "/ch/01/mix/01/level": -6.0})
    padded = np.vstack([x, np.zeros((engine.latency, 4), np.float32)])
    ref = engine.render(padded, 64)[engine.latency :]
    np.testing.assert_array_equal(main_l.astype(np.float32), ref[:, 4])
    bus1, _ = sf.read(str(out / "bus01.wav"))
    np.testing.assert_array_equal(bus1.astype(np.float32), ref[:, 0])
    # Aligned: the impulse on input 1 peaks at the same frame in the output.
    assert int(np.argmax(np.abs(main_l))) == 1000


def test_render_refuses_a_wav_with_too_many_channels(tmp_path):
    src = tmp_path / "wide.wav"
    _write_wav(src, channels=10, frames=480)
    done = run_cli("render", str(src), "-o", str(tmp_path / "o"), "--inputs", "8")
    assert done.returncode == 2
    assert "10 channels, but the engine has 8 inputs" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_render_refuses_an_unknown_parameter(tmp_path):
    src = tmp_path / "in.wav"
    _write_wav(src, channels=2, frames=480)
    done = run_cli("render", str(src), "-o", str(tmp_path / "o"), "--set",
                   "/ch/99/mix/fader=0")  # fmt: skip
    assert done.returncode == 2
    assert "unknown address /ch/99/mix/fader" in done.stderr


@pytest.mark.slow
def test_bench_json_reports_every_measurement():
    done = run_cli("bench", "--quick", "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [r["block"] for r in report["blocks"]] == [16, 32, 64, 128, 256]
    assert [r["inputs"] for r in report["scaling"]] == [8, 32, 64, 128]
    for r in report["blocks"]:
        assert 0 < r["min_us"] <= r["p50_us"] <= r["p99_us"] + 1 <= r["max_us"] + 2
        assert r["load_pct"] > 0
    assert report["scipy"]["ratio"] > 0
    assert report["start"]["warm_to_audio_s"] > 0
    large = report["large"]
    assert (large["inputs"], large["buses"], large["block"]) == (128, 64, 64)
    assert large["load_pct"] > 0
    # Input to output on a JACK dummy server (tests/run.sh installs jackd):
    # its buffers, a period in and two out, plus the limiter's lookahead.
    rows = {(r["block"], round(r["lookahead_ms"], 2)): r for r in report["latency"]}
    assert sorted(rows) == [(16, 0.21), (16, 1.0), (32, 0.21), (32, 1.0), (64, 0.21),
                            (64, 1.0)]  # fmt: skip
    for (block, _), r in rows.items():
        assert r["device_ms"] == pytest.approx(3000 * block / 48000, abs=0.01)
        assert r["total_ms"] == pytest.approx(r["device_ms"] + r["lookahead_ms"])


@pytest.mark.slow
def test_bench_scenes_reports_recalls_in_blocks():
    done = run_cli("bench", "scenes", "--quick", "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["values_changed"] > 2000
    for label in ("ready", "cold", "osc"):
        r = report[label]
        assert 0 <= r["next_block_pct"] <= 100 and r["blocks_max"] >= 0, r
    assert report["ready"]["recalls"] == report["cold"]["recalls"] == 10
    osc = report["osc"]
    assert osc["recalls"] == 10 and osc["never_landed"] == 0, osc
    assert osc["clients"] == 10 and osc["received"] > 0


def test_osc_map_writes_the_reference(tmp_path):
    out = tmp_path / "osc.md"
    done = run_cli("osc-map", "-o", str(out), "--inputs", "4", "--buses", "2")
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert "/ch/[01..04]/mix/fader" in text
    assert "/bus/[01,02]/mix/fader" in text


def test_layout_without_an_engine_uses_the_virtual_stage_names(tmp_path):
    out = tmp_path / "mix.json"
    done = run_cli("layout", "--mix", "3", "-o", str(out), "--port", "1",
                   "--host", "10.0.0.7", "--inputs", "8", "--buses", "4")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no engine answered" in done.stderr
    session = json.loads(out.read_text())
    text = json.dumps(session)
    assert session["type"] == "session"
    assert "/ch/01/mix/03/level" in text and "/bus/03/mix/fader" in text
    assert "Lead vox" in text and "10.0.0.7:1" in text


def test_layout_refuses_a_mix_that_does_not_exist(tmp_path):
    done = run_cli("layout", "--mix", "9", "--buses", "4", "-o", str(tmp_path / "x"))
    assert done.returncode == 2
    assert "--mix 9: use 1 to 4" in done.stderr


def test_layout_names_the_engine_the_tablet_mixes_on(tmp_path):
    """Two engines (FOH and monitors): the tablet's header says which."""
    from osc_helpers import EngineProcess

    engine = EngineProcess("--name", "monitors-test", "--state-dir",
                           str(tmp_path / "state")).start()  # fmt: skip
    try:
        out = tmp_path / "mix.json"
        done = run_cli("layout", "--mix", "2", "-o", str(out), "--port",
                       str(engine.port), "--inputs", "8", "--buses", "4")  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "on monitors-test" in done.stdout
        header = json.loads(out.read_text())["content"]["widgets"][1]
        texts = {w["id"]: w.get("default") for w in header["widgets"]}
        assert texts["engine"] == "monitors-test" and texts["mix_number"] == "Mix 2"
    finally:
        engine.stop()

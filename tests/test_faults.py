"""Faults around the audio path against real ``livesound engine`` processes:
the JACK server killed and restarted under the engine, every stop signal,
and the supervisor restarting a killed engine (and giving up on one that
keeps crashing). Storage faults are in ``test_faults_storage.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audio_helpers import Jackd, LoudEngine, blocks_advance, stats
from osc_helpers import Client, fader_norm, wait_until

from livesound.control.registry import Registry
from livesound.scenes import files
from livesound.scenes.storage import state_dir_locked

N_IN, N_BUS = 8, 4
REGISTRY = Registry(N_IN, N_BUS)
FADER = "/ch/01/mix/fader"


# -- helpers -------------------------------------------------------------------------


def autosaved_fader(state: Path) -> float | None:
    with contextlib.suppress(files.SceneError):
        return files.load(REGISTRY, state / "autosave.toml").values[FADER]
    return None


# -- the audio device lost and back ---------------------------------------------------


def test_jack_server_killed_and_restarted_is_reported_played_around_and_resumed(
    tmp_path,
):
    jack = Jackd(tmp_path / "jackd").start()
    state = tmp_path / "state"
    proc = LoudEngine("--scenes", str(tmp_path / "scenes"), "--state-dir", str(state),
                      "--fallback", "virtual", audio=("--device", "system"),
                      env=jack.env, inputs=N_IN, buses=N_BUS)  # fmt: skip
    try:
        proc.start()
        with Client(proc.port) as c, Client(proc.port) as watcher:
            s = stats(c)
            assert s["engine"]["device"] == "system" and s.get("audio") is None, s
            assert blocks_advance(c)
            c.send(FADER, fader_norm(-7.0))
            wait_until(lambda: autosaved_fader(state) == pytest.approx(-7.0), 30,
                       "the autosave")  # fmt: skip
            watcher.send("/xremote")
            watcher.recv_all(0.3)

            jack.stop()
            lost = wait_until(lambda: (s := stats(c)) and s.get("audio"), 10,
                              "the lost device in /ls/stats")  # fmt: skip
            assert lost["fault"] == "device lost" and lost["device"] == "system"
            pushed = [m for m in watcher.recv_all(1.0)
                      if m.address == "/ls/status/audio"]  # fmt: skip
            assert pushed and pushed[0].arg.startswith("AUDIO DEVICE LOST: system")
            assert c.query("/ls/status/audio").startswith("AUDIO DEVICE LOST: system")
            # The fallback plays, and the control plane goes on without the
            # device: OSC, scene saves and the autosave.
            wait_until(lambda: stats(c)["audio"]["fallback"] == "virtual stage", 20,
                       "the fallback")  # fmt: skip
            assert blocks_advance(c)
            c.send(FADER, fader_norm(-12.0))
            assert c.query(FADER) == pytest.approx(fader_norm(-12.0), abs=1e-4)
            assert c.request("/ls/scene/save", "gone").address == "/ls/scene/saved"
            wait_until(lambda: autosaved_fader(state) == pytest.approx(-12.0), 30,
                       "the autosave while the device is gone")  # fmt: skip
            wait_until(lambda: any("AUDIO DEVICE LOST: system" in line
                                   for line in proc.stdout), 30,
                       "the lost device on the meter line")  # fmt: skip

            jack.start()
            back = wait_until(
                lambda: (s := stats(c)) and s.get("audio") is None
                and s["engine"]["playing"] == "system" and s,
                60, "the engine back on the JACK server")  # fmt: skip
            assert back["engine"]["pid"] == proc.proc.pid  # restarted in place
            assert blocks_advance(c)
            assert c.query(FADER) == pytest.approx(fader_norm(-12.0), abs=1e-4)
            assert (tmp_path / "scenes" / "gone.toml").exists()
        assert proc.stop() == 0
    finally:
        proc.stop()
        jack.close()


def test_stop_signal_while_the_device_is_gone_saves_and_ends(tmp_path):
    jack = Jackd(tmp_path / "jackd").start()
    state = tmp_path / "state"
    proc = LoudEngine("--scenes", str(tmp_path / "scenes"), "--state-dir", str(state),
                      audio=("--device", "system"), env=jack.env, inputs=N_IN,
                      buses=N_BUS)  # fmt: skip
    try:
        proc.start()
        with Client(proc.port) as c:
            assert blocks_advance(c)
            jack.stop()
            wait_until(lambda: (s := stats(c)) and s.get("audio"), 10, "the loss")
            frozen = stats(c)["engine"]["blocks"]
            c.send(FADER, fader_norm(-21.0))
            assert c.query(FADER) == pytest.approx(fader_norm(-21.0), abs=1e-4)
            assert stats(c)["engine"]["blocks"] == frozen  # nothing plays
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(10) == 0  # the target is 2 s; see bench faults
        assert autosaved_fader(state) == pytest.approx(-21.0)
    finally:
        proc.stop()
        jack.close()


# -- signals -------------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"])
def test_stop_signals_save_the_pending_change_and_end(tmp_path, sig):
    state = tmp_path / "state"
    proc = LoudEngine("--scenes", str(tmp_path / "scenes"), "--state-dir",
                      str(state), inputs=N_IN, buses=N_BUS).start()  # fmt: skip
    try:
        with Client(proc.port) as c:
            assert blocks_advance(c)
            c.send(FADER, fader_norm(-5.0))
            assert c.query(FADER) == pytest.approx(fader_norm(-5.0), abs=1e-4)
        proc.proc.send_signal(getattr(signal, sig))  # before the next autosave
        assert proc.proc.wait(10) == 0
        assert autosaved_fader(state) == pytest.approx(-5.0)
        time.sleep(0.1)
        assert any(line.startswith("stopped;") for line in proc.stdout), proc.stdout
    finally:
        proc.stop()


# -- the supervisor ------------------------------------------------------------------


class Supervised(LoudEngine):
    """``livesound engine --supervise`` (the supervisor is ``proc``)."""

    def command(self, port: int) -> list[str]:
        return [*super().command(port), "--supervise"]


def engine_pid(c: Client) -> int:
    return wait_until(lambda: stats(c), 60, "the engine")["engine"]["pid"]


def test_supervisor_restarts_a_killed_engine_from_the_autosave(tmp_path):
    state = tmp_path / "state"
    proc = Supervised("--scenes", str(tmp_path / "scenes"), "--state-dir",
                      str(state), inputs=N_IN, buses=N_BUS).start()  # fmt: skip
    try:
        with Client(proc.port) as c:
            first = engine_pid(c)
            assert first != proc.proc.pid
            c.send(FADER, fader_norm(-9.0))
            wait_until(lambda: autosaved_fader(state) == pytest.approx(-9.0), 30,
                       "the autosave")  # fmt: skip
            os.kill(first, signal.SIGKILL)
            s = wait_until(lambda: (s := stats(c)) and s["engine"]["pid"] != first
                           and s["engine"]["blocks"] > 0 and s, 120,
                           "the restarted engine")  # fmt: skip
            assert blocks_advance(c)
            assert c.query(FADER) == pytest.approx(fader_norm(-9.0), abs=1e-4)
            second = s["engine"]["pid"]
        assert "the engine crashed (killed by SIGKILL)" in proc.stderr
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(15) == 0
        with contextlib.suppress(ProcessLookupError):
            os.kill(second, 0)
            pytest.fail("the engine outlived its supervisor")
    finally:
        proc.stop()


def test_stop_ends_a_supervised_engine_still_compiling(tmp_path):
    # An empty kernel cache: the engine compiles for half a minute before it
    # opens audio. Stopping it then must end it and its supervisor, not
    # leave them running (nor count as a crash and start it again).
    state = tmp_path / "state"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    proc = Supervised("--scenes", str(tmp_path / "scenes"), "--state-dir", str(state),
                      inputs=N_IN, buses=N_BUS, env=env)  # fmt: skip
    proc.launch()
    try:
        wait_until(lambda: "compiling audio." in proc.stderr, 60, "compiling")
        assert not proc.running
        stopped = subprocess.run([sys.executable, "-m", "livesound", "stop",
                                  "--state-dir", str(state)], capture_output=True,
                                 text=True, timeout=60)  # fmt: skip
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.startswith("stopped the engine (pid "), stopped.stdout
        assert proc.proc.wait(30) == 0
        assert "crashed" not in proc.stderr and not proc.running
        assert not state_dir_locked(state)
    finally:
        proc.stop()


def test_a_second_engine_on_the_same_state_dir_is_refused_before_it_compiles(tmp_path):
    state = tmp_path / "state"
    proc = LoudEngine("--scenes", str(tmp_path / "scenes"), "--state-dir", str(state),
                      inputs=N_IN, buses=N_BUS).start()  # fmt: skip
    try:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
        second = subprocess.run([sys.executable, "-m", "livesound", "engine",
                                 "--virtual", "--state-dir", str(state),
                                 "--no-discovery", "--osc-port", "0"],
                                capture_output=True, text=True, timeout=60,
                                env=env)  # fmt: skip
        assert second.returncode == 2
        assert f"another engine (pid {proc.proc.pid}) uses the state dir" in (
            second.stderr
        )
        assert "compiling" not in second.stderr  # refused before the kernels
    finally:
        proc.stop()


def test_supervisor_gives_up_after_five_crashes_in_a_minute(tmp_path):
    proc = Supervised("--scenes", str(tmp_path / "scenes"), "--state-dir",
                      str(tmp_path / "state")).start()  # fmt: skip
    try:
        with Client(proc.port) as c:
            for _ in range(5):
                pid = engine_pid(c)
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda pid=pid: (s := stats(c)) is None
                           or s["engine"]["pid"] != pid, 60,
                           "the killed engine gone")  # fmt: skip
        assert proc.proc.wait(120) == 1
        time.sleep(0.1)
        assert "crashed 5 times in 60 s" in proc.stderr and "giving up" in proc.stderr
    finally:
        proc.stop()

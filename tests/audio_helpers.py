"""Helpers for tests around the audio path: an engine process that prints
its meter line on a chosen device, its stats over OSC, a JACK server a test
may stop and start again, and a JACK client of the test's own that plays
noise into a port and listens to another."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from jackserver import _jack_env, jackd_command, server_answers
from osc_helpers import DEADLINE, Client, EngineProcess, wait_until

from livesound.bench.common import free_jack_name


class LoudEngine(EngineProcess):
    """An engine with its meter line (every 5 s without a terminal), on the
    device ``audio`` names (e.g. ``("--device", "system")`` or ``("--jack",
    "foh")``; the virtual stage by default), started in ``env``."""

    def __init__(self, *extra: str, audio: tuple[str, ...] = (), env=None,
                 **kwargs) -> None:  # fmt: skip
        super().__init__(*extra, **kwargs)
        self.audio, self.env = audio, env

    def command(self, port: int) -> list[str]:
        cmd = [a for a in super().command(port) if a != "--quiet"]
        if self.audio:
            at = cmd.index("--virtual")
            cmd[at : at + 1] = self.audio
        return cmd

    def launch(self) -> None:
        if self.env is None:
            return super().launch()
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            super().launch()
        finally:
            os.environ.clear()
            os.environ.update(saved)


def stats(c: Client) -> dict | None:
    """``/ls/stats``, or None while no engine answers (restarting)."""
    c.drain()
    c.send("/ls/stats")
    with contextlib.suppress(AssertionError):
        while True:
            m = c.recv(0.5)
            if m.address == "/ls/stats":
                return json.loads(m.arg)
    return None


def blocks_advance(c: Client) -> bool:
    """Whether the engine's audio blocks go on (50 more within the deadline)."""
    before = wait_until(lambda: stats(c), 30, "stats")["engine"]["blocks"]
    return bool(wait_until(lambda: (s := stats(c)) and s["engine"]["blocks"] > before + 50,
                           30, "audio blocks advancing"))  # fmt: skip


class Jackd:
    """A JACK dummy server of our own that a test may stop and start again
    under the same name, always stopped cleanly; its name is the first free
    one of a few, so a killed one's registry slot is reclaimed
    (``livesound.bench.common.free_jack_name``)."""

    def __init__(self, log_dir: Path, rate: int = 48000, period: int = 64,
                 driver: list[str] | None = None) -> None:  # fmt: skip
        """``driver``: the backend and its options (``["-d", "net", ...]``)
        instead of the dummy one."""
        if shutil.which("jackd") is None:
            pytest.skip("jackd not installed (tests/run.sh installs jackd2)")
        self.name = free_jack_name("livesound-test")
        self.log_dir, self.rate, self.period, self.driver = (
            log_dir,
            rate,
            period,
            driver,
        )
        self.proc: subprocess.Popen | None = None
        self.env = {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def start(self) -> Jackd:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "jackd.log", "ab") as log:
            command = jackd_command(
                self.name, samplerate=self.rate, blocksize=self.period
            )
            if self.driver is not None:
                command = ["jackd", "--no-realtime", "-n", self.name, *self.driver]
            self.proc = subprocess.Popen(command,
                                         env=_jack_env(self.name),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)  # fmt: skip
        wait_until(lambda: server_answers(self.name) is not False, DEADLINE, "jackd")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # the server tells its clients it shuts down
            try:
                self.proc.wait(DEADLINE / 4)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # a server stuck in its backend's shutdown
                self.proc.wait(DEADLINE / 4)

    def close(self) -> None:
        """Stop for good; a PortAudio client that died with the first server
        left its semaphore behind."""
        self.stop()
        for leftover in Path("/dev/shm").glob(f"*_{self.name}_*"):
            leftover.unlink(missing_ok=True)


class ToneClient:
    """A JACK client of the test's own, in a process of its own
    (``jack_tone.py``): it plays white noise at -26 dBFS RMS into ``into``
    (noise: the feedback suppressor leaves it alone) and reports the RMS of
    what ``listen`` sends it."""

    def __init__(self, server: Jackd, into: str, listen: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("jack_tone.py")), into, listen],
            env=_jack_env(server.name), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.latest = -999.0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.latest = float(line)

    def level_db(self) -> float:
        """RMS in dBFS of the newest 200 periods heard (-999 until then)."""
        return self.latest

    def close(self) -> None:
        self.proc.stdin.close()  # it deactivates and closes its client
        try:
            self.proc.wait(DEADLINE / 4)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(DEADLINE / 4)

"""Helpers for tests of faults around the audio path: an engine process that
prints its meter line on a chosen device, its stats over OSC, and a JACK
dummy server a test may stop and start again."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from jackserver import _jack_env, jackd_command, server_answers
from osc_helpers import Client, EngineProcess, wait_until


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
    under the same name (always stopped cleanly: a killed jackd leaks its
    shared-memory registry slots)."""

    def __init__(self, log_dir: Path, rate: int = 48000) -> None:
        if shutil.which("jackd") is None:
            pytest.skip("jackd not installed (tests/run.sh installs jackd2)")
        self.name = f"livesound-faults-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.log_dir, self.rate = log_dir, rate
        self.proc: subprocess.Popen | None = None
        self.env = {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    def start(self) -> Jackd:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / "jackd.log", "ab") as log:
            self.proc = subprocess.Popen(jackd_command(self.name, samplerate=self.rate),
                                         env=_jack_env(self.name),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)  # fmt: skip
        wait_until(lambda: server_answers(self.name) is not False, 20, "jackd")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # the server tells its clients it shuts down
            self.proc.wait(10)

    def close(self) -> None:
        """Stop for good; a PortAudio client that died with the first server
        left its semaphore behind."""
        self.stop()
        for leftover in Path("/dev/shm").glob(f"*_{self.name}_*"):
            leftover.unlink(missing_ok=True)

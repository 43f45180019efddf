"""``livesound engine --supervise``: the engine under a supervisor.

A small process (no numba, no audio, no show) runs the engine as its child
and starts it again when it crashes (killed by a signal, or an exit code
other than 0 and 2); the new engine restores the show from the autosave.
A clean stop (0) ends the supervisor too, and so does an engine that
refused its settings (2: starting it again would change nothing). After
``MAX_CRASHES`` crashes within ``WINDOW_S`` it gives up, saying so.
SIGTERM, SIGINT, SIGHUP and SIGQUIT are passed on to the engine, which
saves and stops; the supervisor then ends with it.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import livesound

MAX_CRASHES = 5
WINDOW_S = 60.0
STOP_TIMEOUT_S = 5.0  # the engine promises 2 s; then it is killed
SETTINGS_REFUSED = 2
STANDBY_AFTER_S = 3.0  # a spare engine warms up this long after one starts
STANDBY_ENV = "LIVESOUND_STANDBY"  # set for the spare engine (see enginehost)
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def engine_command(options: list[str]) -> list[str]:
    """The child: ``livesound engine`` with ``options``. ``-P`` keeps the
    working directory (a source tree, say) off the path."""
    return [sys.executable, "-P", "-m", "livesound", "engine", *options]


def engine_environment() -> dict[str, str]:
    """The child's environment: it imports the very package this process
    runs (installed, or a checkout started with ``python -m``)."""
    env = dict(os.environ)
    home = str(Path(livesound.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        [home, *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return env


def _say(text: str) -> None:
    print(f"livesound supervisor: {text}", file=sys.stderr, flush=True)


def _how(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Supervisor:
    """Runs ``command`` again after each crash, until a clean stop, a stop
    signal, or too many crashes.

    A crash is answered by a spare engine: a second child, started
    ``STANDBY_AFTER_S`` after the running one, that has loaded everything
    and waits on its stdin for the word to take over (then it restores the
    autosave and opens the device, a fraction of a fresh start).
    """

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.command = command
        self.env = dict(os.environ) if env is None else env
        self.child: subprocess.Popen | None = None
        self.spare: subprocess.Popen | None = None
        self.started = 0.0
        self.stopping = False
        self.crashes: list[float] = []

    def _forward(self, sig: int, frame) -> None:
        if not self.stopping:
            self.stopping = True
            timer = threading.Timer(STOP_TIMEOUT_S, self._kill)
            timer.daemon = True
            timer.start()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(sig)

    def _kill(self) -> None:
        if self.child is not None and self.child.poll() is None:
            _say(f"the engine did not stop in {STOP_TIMEOUT_S:g} s; killing it")
            self.child.kill()

    def _start(self) -> None:
        """A fresh engine, or the spare one told to take over."""
        spare, self.spare = self.spare, None
        self.started = time.monotonic()
        if spare is not None and spare.poll() is None:
            try:
                spare.stdin.write(b"go\n")
                spare.stdin.flush()
            except OSError:
                spare.kill()
            else:
                self.child = spare
                _say(f"spare engine (pid {spare.pid}) takes over")
                return
        # Its own process group: a Ctrl-C in the terminal reaches the
        # engine once, passed on by us, not twice.
        self.child = subprocess.Popen(self.command, env=self.env, process_group=0)
        _say(f"engine started (pid {self.child.pid})")

    def _start_spare(self) -> None:
        self.spare = subprocess.Popen(self.command, env={**self.env, STANDBY_ENV: "1"},
                                      stdin=subprocess.PIPE, process_group=0)  # fmt: skip

    def _end_spare(self) -> None:
        spare, self.spare = self.spare, None
        if spare is None:
            return
        spare.terminate()  # it holds nothing of the show
        spare.wait()

    def _wait(self) -> int:
        """Until the engine ends: its exit code (negative: the signal)."""
        assert self.child is not None
        while True:
            due = None
            if self.spare is None and not self.stopping:
                due = max(0.0, self.started + STANDBY_AFTER_S - time.monotonic())
            with contextlib.suppress(subprocess.TimeoutExpired):
                return self.child.wait(due)
            self._start_spare()

    def run(self) -> int:
        """Supervise until the end; returns the supervisor's exit code."""
        for sig in FORWARDED:
            signal.signal(sig, self._forward)
        try:
            while True:
                self._start()
                code = self._wait()
                if self.stopping or code == 0:
                    return 0  # asked to stop, or stopped by itself: not a crash
                if code == SETTINGS_REFUSED:
                    _say("the engine refused its settings (exit code 2); "
                         "not restarting")  # fmt: skip
                    return code
                now = time.monotonic()
                self.crashes = [t for t in self.crashes if now - t < WINDOW_S]
                self.crashes.append(now)
                if len(self.crashes) >= MAX_CRASHES:
                    _say(f"the engine crashed {len(self.crashes)} times in "
                         f"{WINDOW_S:g} s (last: {_how(code)}); giving up")  # fmt: skip
                    return 1
                _say(f"the engine crashed ({_how(code)}); restarting it from the "
                     "autosave")  # fmt: skip
        finally:
            self._end_spare()


def supervise(options: list[str]) -> int:
    """``livesound engine --supervise OPTIONS``."""
    return Supervisor(engine_command(options), engine_environment()).run()

"""Plain ``livesound``: find the engine on this machine, or start one.

The engine is started as its own process in its own session (process
group), so Ctrl-C, a hang-up or a SIGKILL of the console never reaches it:
the show's audio depends only on the engine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from livesound.osc.client import Client, osc

START_TIMEOUT_S = 180.0  # the first start compiles the audio kernels


class EngineStartError(RuntimeError):
    """The engine could not be started; the message says why."""


def engine_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    """Whether an engine answers ``/xinfo`` on ``host``:``port``."""
    with Client(port, host, timeout=timeout) as c:
        try:
            c.ask(osc("/xinfo"))
        except OSError:
            return False
    return True


def engine_command(argv: list[str]) -> list[str]:
    """``livesound engine --supervise`` (restarted after a crash) with the
    engine options plain ``livesound`` got."""
    return [sys.executable, "-m", "livesound", "engine", *argv, "--quiet",
            "--supervise"]  # fmt: skip


def ensure_engine(port: int, argv: list[str], state_dir: Path) -> int | None:
    """Start an engine unless one answers on ``port``; returns its pid, or
    None if one was already running. Its output goes to ``engine.log`` in
    ``state_dir``."""
    if engine_answers(port):
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "engine.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            engine_command(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    print(f"starting the engine (log: {log_path})...", file=sys.stderr, flush=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise EngineStartError(
                f"the engine exited ({proc.returncode}): " + " / ".join(tail)
            )
        if engine_answers(port):
            return proc.pid
    raise EngineStartError(f"the engine did not answer on port {port} in time")

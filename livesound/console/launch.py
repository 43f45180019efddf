"""Plain ``livesound``: find the engine on this machine, or start one.

The engine is started as its own process in its own session (process
group), so Ctrl-C, a hang-up or a SIGKILL of the console never reaches it:
the show's audio depends only on the engine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

from livesound.osc.client import Client, osc

# The first start compiles the audio kernels: minutes on a slow or busy
# machine. While the engine says what it compiles it is waited for; it has
# failed only when it has said nothing new for this long.
START_QUIET_S = 180.0


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
    engine options plain ``livesound`` got, from the installed package:
    ``-P`` keeps a source tree in the working directory from shadowing it
    (and from compiling a second copy)."""
    return [sys.executable, "-P", "-m", "livesound", "engine", *argv, "--quiet",
            "--supervise"]  # fmt: skip


class Progress:
    """What a starting engine writes to its log, shown as it comes with the
    seconds since the start: one line rewritten in place on a terminal,
    else a line each."""

    def __init__(self, out: TextIO, log_path: Path, offset: int) -> None:
        self.out, self.path, self.offset = out, log_path, offset
        self.start = time.monotonic()
        self.tty = out.isatty()
        self.lines: list[str] = []  # this start's log lines so far
        self._partial = b""

    def _read(self) -> list[str]:
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                data = log.read()
        except OSError:
            return []
        self.offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        # A meter line rewrites itself with \r: its last state is the news.
        new = [b.decode(errors="replace").split("\r")[-1].strip() for b in complete]
        new = [line for line in new if line]
        self.lines += new
        return new

    def show(self) -> bool:
        """Show the lines the engine wrote since the last call; whether there
        were any."""
        new = self._read()
        elapsed = f"{time.monotonic() - self.start:3.0f} s"
        if not self.tty:
            for line in new:
                print(f"[{elapsed}] {line}", file=self.out, flush=True)
            return bool(new)
        latest = self.lines[-1] if self.lines else "starting"
        width = shutil.get_terminal_size().columns - 1
        text = f"starting the engine: {elapsed}  {latest}"[:width]
        self.out.write(f"\r{text}\033[K")
        self.out.flush()
        return bool(new)

    def done(self) -> None:
        self.show()
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def ensure_engine(
    port: int, argv: list[str], state_dir: Path, out: TextIO | None = None
) -> int | None:
    """Start an engine unless one answers on ``port``; returns its pid, or
    None if one was already running. Its output goes to ``engine.log`` in
    ``state_dir`` and, while it starts (the first start compiles for a
    minute or more), to ``out`` (stderr) as it comes."""
    if engine_answers(port):
        return None
    out = out or sys.stderr
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "engine.log"
    with open(log_path, "ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(
            engine_command(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    print(f"starting the engine (log: {log_path})", file=out, flush=True)
    progress = Progress(out, log_path, offset)
    deadline = time.monotonic() + START_QUIET_S
    while time.monotonic() < deadline:
        if progress.show():
            deadline = time.monotonic() + START_QUIET_S
        if proc.poll() is not None:
            progress.done()
            raise EngineStartError(
                f"the engine exited ({proc.returncode}): "
                + " / ".join(progress.lines[-3:])
            )
        if engine_answers(port):
            progress.done()
            return proc.pid
    progress.done()
    raise EngineStartError(
        f"the engine did not answer on port {port} and has "
        f"said nothing for {START_QUIET_S:.0f} s (see its log)"
    )

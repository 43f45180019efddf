"""The console as a user runs it: a real terminal (tmux), real processes.

- plain ``livesound`` on the virtual stage starts an engine and attaches;
  keys move a fader, the meters move, the screen shows the change;
- with the console drawing at full rate, the engine processes every block
  (virtual device, and JACK's dummy driver);
- ``kill -9`` of the console: the engine misses no block, and a new console
  reattaches showing the same show.

Every wait is for a condition (text on screen, a value in the engine) with the
suite's one deadline. Counting blocks over a stretch of wall clock is a
real-time measurement: it assumes a 2-core machine where the engine's audio
thread (SCHED_FIFO when allowed, else a normal thread) gets a core within its
device buffer while another process keeps the other core busy.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from console_helpers import (
    DEADLINE,
    ROOT,
    Client,
    EngineProcess,
    engine_with_scenes,
    fader_norm,
    query,
    stats,
    wait_until,
)
from jackserver import JackClock
from osc_helpers import START_DEADLINE, free_udp_port

pytestmark = pytest.mark.slow
SR, BLOCK = 48000, 64


class Tmux:
    """A private tmux server (its own socket) running one command in a pane."""

    def __init__(self, tmp_path: Path, command: list[str], size=(120, 40)) -> None:
        self.socket = f"ls-console-{os.getpid()}-{id(self)}"
        env = {"LIVESOUND_STATE": os.environ["LIVESOUND_STATE"], "TERM": "xterm-256color",
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        line = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # exec: the pane's process is the command itself, so its pid is ours.
        shell = f"cd {shlex.quote(str(tmp_path))} && exec env {line} " + shlex.join(
            command
        )
        self.tmux("new-session", "-d", "-s", "t", "-x", str(size[0]), "-y",
                  str(size[1]), shell)  # fmt: skip
        self.pid = int(self.tmux("display-message", "-p", "-t", "t", "#{pane_pid}"))

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=DEADLINE)  # fmt: skip
        return done.stdout.strip()

    def keys(self, *keys: str) -> None:
        for k in keys:
            self.tmux("send-keys", "-t", "t", k)
            # paced like a hand: keys sent in one burst reach the console as
            # one read, where an escape sequence may not be told from the next
            time.sleep(0.05)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def wait_for(self, text: str, timeout: float = DEADLINE) -> str:
        """Wait until the pane shows ``text``; returns the screen."""
        return wait_until(lambda: text in (s := self.screen()) and s, timeout,
                          f"{text!r} on screen; it shows:\n{self.screen()}")  # fmt: skip

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        self.tmux("kill-server")


def meter_rows(screen: str) -> list[str]:
    """The meter area of the mixer view (between the dynamics row and the
    fader readouts)."""
    lines = screen.splitlines()
    return lines[6:-3]


def _supervisor(pid: int) -> bool:
    """Whether process ``pid`` runs ``livesound engine --supervise`` (False
    once it is gone)."""
    try:
        return b"--supervise" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def engine_pids(port: int) -> list[int]:
    """Processes running ``livesound engine`` on OSC ``port`` (started by plain
    ``livesound`` in its own session, so not our child)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"engine" in argv and b"--osc-port" in argv and str(port).encode() in argv:
            found.append(int(proc.name))
    return found


def console_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "livesound", "console", "--port", str(port), *extra]


def test_plain_livesound_starts_the_engine_and_the_keys_reach_it(tmp_path):
    port = free_udp_port()
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    cmd = [sys.executable, "-m", "livesound", "--virtual", "--inputs", "8", "--buses",
           "4", "--osc-port", str(port), "--osc-host", "127.0.0.1", "--no-discovery",
           "--scenes", str(scenes)]  # fmt: skip
    term = Tmux(tmp_path, cmd)
    try:
        term.wait_for("MAIN MIX", START_DEADLINE)  # the engine starts first
        term.wait_for("virtual stage")

        # Supervised: the supervisor, the engine it runs and a warm spare
        # (started a few seconds after the engine). A child between its fork
        # and its exec still shows its parent's command line, the
        # supervisor's: wait until each is what it runs.
        def supervised() -> list[int] | None:
            pids = engine_pids(port)
            supervisors = [p for p in pids if _supervisor(p)]
            return pids if len(pids) == 3 and len(supervisors) == 1 else None

        pids = wait_until(supervised, what="the supervisor, the engine and its spare")
        # In their own session: a hang-up of the terminal never reaches them.
        assert all(os.getsid(p) != os.getsid(term.pid) for p in pids)
        first = meter_rows(term.screen())
        wait_until(lambda: meter_rows(term.screen()) != first, what="the meters move")
        term.keys("Right", "Home", "Up", "Up")
        wait_until(lambda: abs(query(port, "/ch/02/mix/fader") - fader_norm(2.0)) < 2e-3,
                   what="the engine to take the fader")  # fmt: skip
        # the strip's readout (second strip, second-to-last row of the bank)
        readouts = term.wait_for("+2.0").splitlines()[-3]
        assert readouts[7:14].strip() == "+2.0", readouts
        term.keys("q")
        term.wait_for("Quit the console?")
        term.keys("y")
        wait_until(lambda: not term.alive(), what="the console to quit")
        # quitting the console leaves the show running
        assert query(port, "/ch/02/mix/fader") == pytest.approx(
            fader_norm(2.0), abs=2e-3
        )
        # ...and so does closing the terminal a console runs in (the hang-up
        # goes to the terminal's session, which the engine is not in).
        again = Tmux(tmp_path, console_command(port))
        again.wait_for("MAIN MIX")
        again.close()
        wait_until(
            lambda: not again.alive(), what="the console to end with its terminal"
        )
        assert sorted(engine_pids(port)) == sorted(pids)
        assert query(port, "/ch/02/mix/fader") == pytest.approx(
            fader_norm(2.0), abs=2e-3
        )
    finally:
        term.close()
        for pid in engine_pids(port):
            os.kill(pid, signal.SIGINT)
        wait_until(lambda: not engine_pids(port), what="the engine to stop")


def _blocks_during(port: int, seconds: float) -> tuple[int, int, float]:
    """Engine blocks and xruns counted over ``seconds`` of wall clock."""
    s0, t0 = stats(port)["engine"], time.perf_counter()
    time.sleep(seconds)  # the stretch measured
    s1, t1 = stats(port)["engine"], time.perf_counter()
    return s1["blocks"] - s0["blocks"], s1["xruns"] - s0["xruns"], t1 - t0


def _console_at_full_rate(tmp_path: Path, port: int) -> Tmux:
    """A console drawing at 30 fps, attached and done reading the show (its
    status bar shows the engine's status, neither "connecting" nor "sync")."""
    term = Tmux(tmp_path, console_command(port, "--fps", "30"))
    term.wait_for("MAIN MIX")
    wait_until(lambda: "keys wait" not in term.screen(), what="the show to be read")
    return term


def test_keys_pressed_while_attaching_never_act_on_unread_values(tmp_path):
    engine = engine_with_scenes(tmp_path, inputs=8, buses=4)
    term = None
    try:
        with Client(engine.port) as c:
            c.send("/ch/01/mix/fader", fader_norm(-4.0))
            assert c.query("/ch/01/mix/fader") == pytest.approx(
                fader_norm(-4.0), abs=2e-3
            )
        term = Tmux(tmp_path, console_command(engine.port))
        # Up at once, many times, while the console starts and reads the show:
        # each either waits (refused, "keys wait") or acts on the value read
        # from the engine, never on a placeholder (a default of -oo would
        # put the fader at -60 dB).
        for _ in range(40):
            term.keys("Up")
        term.wait_for("MAIN MIX")
        wait_until(lambda: "keys wait" not in term.screen(), what="the show to be read")
        db = query(engine.port, "/ch/01/mix/fader")
        assert db >= fader_norm(-4.0) - 2e-3, "a key acted on an unread value"
        term.keys("Home")
        wait_until(lambda: abs(query(engine.port, "/ch/01/mix/fader") - fader_norm(0.0))
                   < 2e-3, what="keys to act once the show is read")  # fmt: skip
    finally:
        if term is not None:
            term.close()
        engine.stop()


def test_engine_processes_every_block_with_the_console_drawing(tmp_path):
    engine = EngineProcess(inputs=32, buses=16).start()
    term = None
    try:
        _, xruns_alone, _ = _blocks_during(engine.port, 8.0)
        term = _console_at_full_rate(tmp_path, engine.port)
        term.keys("f")  # sends on faders: every strip redraws too
        blocks, xruns, elapsed = _blocks_during(engine.port, 8.0)
        assert term.alive()
        expected = elapsed * SR / BLOCK
        # The virtual device is clocked by a thread: a stall beyond its
        # buffer (the machine busy with other real-time work, a VM
        # descheduled) resynchronises it, counted as an xrun. The console
        # must not cause any: no more than the engine had alone, give or
        # take the one stall such a machine has now and then.
        assert blocks == pytest.approx(expected, rel=0.03), (blocks, expected)
        assert xruns <= 2 * xruns_alone + 1, (xruns, xruns_alone)
    finally:
        if term is not None:
            term.close()
        engine.stop()


@pytest.mark.realtime
def _console_kept_up(late: int, late_alone: int, cycles: float) -> bool:
    # 3 % of cycles: on this 2-core VM with a core kept busy, a console at
    # full rate beside the 27-output engine has made a non-realtime JACK
    # client late in 1.3-1.7 % of cycles (alone: 0.1-0.2 %); a console that
    # starved the engine would make it late in most of them.
    return late <= 2 * late_alone + 0.03 * cycles


def test_engine_on_jack_processes_every_block_with_the_console_drawing(
    tmp_path, jack_server
):
    engine = EngineProcess("--device", str(jack_server.name), "--out-map",
                           "L,R,1,2,3,4,CL,CR", inputs=32, buses=16)  # fmt: skip
    engine.command = lambda port, _c=engine.command: [
        a for a in _c(port) if a != "--virtual"
    ]
    engine.start()
    term = None
    clock = None
    try:
        device = stats(engine.port)["engine"]["device"]
        assert "virtual" not in device.lower(), device
        clock = JackClock()

        def blocks() -> int:
            return stats(engine.port)["engine"]["blocks"]

        def measure() -> tuple[int, int, int, float]:
            """Frames processed, frames the server clocked, cycles JACK
            reported late, and how far apart the clocks may have been read."""
            late0 = jack_server.client_xruns("PortAudio")
            b0, c0, apart0 = clock.against(blocks)
            time.sleep(8.0)  # the stretch measured
            b1, c1, apart1 = clock.against(blocks)
            late = jack_server.client_xruns("PortAudio") - late0
            slack = (apart0 + apart1) * SR + 2 * BLOCK
            return (b1 - b0) * BLOCK, c1 - c0, late, slack

        def attempt() -> tuple[int, int, float]:
            """The console's stretch with the engine alone on both sides (the
            machine's other load drifts: the worse side counts); the cycles
            JACK reported late with the console, without, and in all."""
            nonlocal term
            *_, late_before, _ = measure()
            term = _console_at_full_rate(tmp_path, engine.port)
            term.keys("f")  # sends on faders: every strip redraws too
            frames, clocked, late, slack = measure()
            assert term.alive()
            term.close()
            *_, late_after, _ = measure()
            # Every period the server clocked was processed, except those
            # JACK reported the engine late for (the OSC round trip that
            # reads the block count is the slack between the two clocks).
            lost = clocked - frames
            assert lost <= BLOCK * late + slack, (frames, clocked, late, slack)
            return late, max(late_before, late_after), clocked / BLOCK

        # JACK also calls a client late when the server itself woke late (a
        # machine busy with other work does, console or not): the console may
        # not make that much worse than without it. A shared VM's
        # descheduling comes in bursts that one 8 s stretch cannot average,
        # so a second attempt decides when the first one had such a burst.
        tries = [attempt()]
        if not _console_kept_up(*tries[0]):
            tries.append(attempt())
        assert any(_console_kept_up(*t) for t in tries), tries
    finally:
        if clock is not None:
            clock.close()
        if term is not None:
            term.close()
        engine.stop()


def test_kill_9_of_the_console_misses_no_block_and_a_new_one_reattaches(tmp_path):
    engine = engine_with_scenes(tmp_path, inputs=8, buses=4)
    first = second = None
    try:
        first = _console_at_full_rate(tmp_path, engine.port)
        first.keys("Right", "Right", "Home", "Down", "Down", "Down", "m")
        wait_until(lambda: query(engine.port, "/ch/03/mix/on") == 0, what="the mute")
        assert query(engine.port, "/ch/03/mix/fader") == pytest.approx(
            fader_norm(-3.0), abs=2e-3)  # fmt: skip
        with Client(engine.port) as tablet:
            tablet.send("/ch/05/config/name", "Tablet")
        first.wait_for("Tablet")
        _, xruns_before, _ = _blocks_during(engine.port, 4.0)
        os.kill(first.pid, signal.SIGKILL)
        wait_until(lambda: not first.alive(), what="the console to die")
        blocks, xruns, elapsed = _blocks_during(engine.port, 4.0)
        # The virtual device resynchronises after a stall of the machine (an
        # xrun, blocks skipped): the console's death may add none of its own,
        # give or take the one stall a busy machine has now and then.
        assert xruns <= 2 * xruns_before + 1, (xruns, xruns_before)
        assert blocks == pytest.approx(elapsed * SR / BLOCK, rel=0.05), blocks
        first.close()
        second = _console_at_full_rate(tmp_path, engine.port)
        second.keys("Right", "Right")

        # Strip 3 shows the fader at -3.0 and its mute; strip 5 the new name
        # (each once the console has read it).
        def strip_3() -> str:
            rows = second.screen().splitlines()
            return rows[-3][14:21].strip() if len(rows) >= 3 else ""

        wait_until(lambda: strip_3() == "-3.0", what="strip 3 showing -3.0")
        assert "Tablet" in second.wait_for("Tablet").splitlines()[2]
    finally:
        for term in (first, second):
            if term is not None:
                term.close()
        engine.stop()

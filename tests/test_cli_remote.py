"""``livesound get|set|stop|scene list|scene diff`` as an engineer types them,
against a real background engine (virtual stage, free port, its own state
dir, no discovery), plus what the engine takes over OSC (enum names), what
the console asks when it connects, and what plain ``livesound`` shows while
an engine starts."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from osc_helpers import Client, EngineProcess, fader_norm, free_udp_port

from livesound.console.launch import engine_answers, ensure_engine
from livesound.console.link import Link, sync_order
from livesound.console.state import ConsoleState
from livesound.control.registry import FBS_MODES, Registry
from livesound.scenes import files

ROOT = Path(__file__).resolve().parent.parent
FADER = "/ch/01/mix/fader"
MODE = "/ls/bus/01/fbs/mode"
REGISTRY = Registry(8, 4)  # EngineProcess's default size


def cli(*args: str, port: int = 0) -> subprocess.CompletedProcess:
    """``livesound ARGS`` (with ``--port`` when given), as a user runs it."""
    cmd = [sys.executable, "-m", "livesound", *args]
    if port:
        cmd += ["--port", str(port)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)


def one_error(done: subprocess.CompletedProcess, code: int, says: str) -> None:
    """A refusal: exit ``code``, one plain line on stderr, no traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livesound: error: "), lines
    assert says in lines[0], lines[0]


@pytest.fixture(scope="module")
def show(tmp_path_factory):
    """An 8x4 engine with its scene folder; a client on localhost (the
    engineer)."""
    base = tmp_path_factory.mktemp("cli-remote")
    folder = base / "scenes"
    engine = EngineProcess("--scenes", str(folder), "--state-dir", str(base / "state"))
    engine.start()
    try:
        with Client(engine.port) as client:
            yield engine, folder, client
    finally:
        engine.stop()


# -- help ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["get", "set", "stop", "scene", "state"])
def test_every_new_command_has_help(command):
    done = cli(command, "--help")
    assert done.returncode == 0 and f"usage: livesound {command}" in done.stdout
    assert "--port" in done.stdout


# -- get and set ------------------------------------------------------------------


def test_get_shows_the_live_value_in_engineering_units(show):
    engine, _, c = show
    c.send(FADER, fader_norm(-10.0))
    assert c.query(FADER) == pytest.approx(fader_norm(-10.0))
    done = cli("get", FADER, port=engine.port)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{FADER}  -10 dB"]
    # An address above parameters shows every one below it.
    below = cli("get", "/ls/bus/01/fbs", port=engine.port)
    assert below.returncode == 0, below.stderr
    assert [line.split()[0] for line in below.stdout.splitlines()] == [
        "/ls/bus/01/fbs/mode", "/ls/bus/01/fbs/maxdepth", "/ls/bus/01/fbs/release"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("address", "typed", "shown", "on_the_wire"),
    [
        (FADER, "-6dB", "-6 dB", fader_norm(-6.0)),
        (FADER, "-12", "-12 dB", fader_norm(-12.0)),
        (FADER, "-inf", "-inf dB", 0.0),
        ("/ch/01/eq/2/f", "2.5kHz", "2500 Hz", REGISTRY["/ch/01/eq/2/f"].to_norm(2500)),
        ("/ch/01/mix/on", "off", "off", 0),
        (MODE, "Speech", "speech", FBS_MODES.index("speech")),
        ("/ch/01/config/name", "Lead vox", "Lead vox", "Lead vox"),
    ],
)
def test_set_changes_the_engine_and_shows_what_it_holds(
    show, address, typed, shown, on_the_wire
):
    engine, _, c = show
    done = cli("set", address, typed, port=engine.port)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{address}  {shown}"]
    if isinstance(on_the_wire, str):
        assert c.query(address) == on_the_wire
    else:
        assert c.query(address) == pytest.approx(on_the_wire, abs=1e-6)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((FADER, "20"), "/ch/01/mix/fader takes -90..10 dB, got 20"),
        ((FADER, "-6Hz"), "takes a number in dB"),
        ((FADER, "loud"), "takes a number in dB"),
        ((MODE, "loud"), "takes one of off, speech, music, ringout"),
        (
            ("/ch/01/mix/fadr", "0"),
            "unknown address /ch/01/mix/fadr; did you mean /ch/01/mix/fader?",
        ),  # fmt: skip
        (("/ch/09/mix/fader", "0"), "this engine has 8 inputs and 4 buses"),
        (("/ch/01/config/name", "Lead", "vox"), "quote a name with spaces"),
        ((FADER,), "set takes an address and a value"),
    ],
)
def test_set_refuses_in_plain_words_and_changes_nothing(show, args, says):
    engine, _, c = show
    c.send(FADER, fader_norm(-3.0))
    before = c.query(FADER)
    one_error(cli("set", *args, port=engine.port), 2, says)
    assert c.query(FADER) == before


def test_get_and_set_say_when_no_engine_runs():
    port = free_udp_port()
    one_error(
        cli("get", FADER, port=port), 1, f"no engine answered on 127.0.0.1:{port}"
    )
    one_error(cli("set", FADER, "-6dB", port=port), 1, "no engine answered")


# -- enum names over OSC ---------------------------------------------------------------


def test_enums_take_their_names_over_osc(show):
    engine, _, c = show
    for name in ("off", "speech", "music"):
        c.send(MODE, name)  # as the README's `/ls/bus/01/fbs/mode off`
        assert c.query(MODE) == FBS_MODES.index(name)
    c.send("/config/solo/chmode", "AFL")
    assert c.query("/config/solo/chmode") == 1
    refused = c.request(MODE, "loud")
    assert refused.address == "/ls/error"
    assert refused.args[0] == MODE and "off, speech, music, ringout" in refused.args[1]
    assert c.query(MODE) == FBS_MODES.index("music")


# -- scenes --------------------------------------------------------------------------


def test_scene_list_flags_broken_files(show):
    engine, folder, _ = show
    saved = cli("scene", "save", "verse", "--scenes", str(folder), port=engine.port)
    assert saved.returncode == 0, saved.stderr
    (folder / "broken.toml").write_text('format = 1\nname = "x"\n[ch.01\n')
    (folder / "bigger.toml").write_text("format = 1\n[ch.40]\nfader_db = -3.0\n")
    try:
        # No --inputs: the files are judged by the running engine's size.
        done = cli("scene", "list", "--scenes", str(folder), port=engine.port)
    finally:
        (folder / "broken.toml").unlink()
        (folder / "bigger.toml").unlink()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("bigger  1 value(s) an engine of 8 inputs and 4 buses")
    assert "line 3: unknown parameter ch.40.fader_db" in lines[0]
    assert lines[1].startswith("broken  BROKEN: not valid TOML")
    assert "line 3" in lines[1]
    assert "verse" in lines[2:]


def test_scene_list_says_when_the_folder_is_empty_or_missing(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = cli("scene", "list", "--scenes", str(empty), port=free_udp_port())
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr.strip() == f"no scenes in {empty}"
    missing = tmp_path / "missing"
    one_error(cli("scene", "list", "--scenes", str(missing)), 2,
              f"no scene folder {missing}")  # fmt: skip


def test_scene_diff_against_live_without_discovery(show):
    engine, folder, c = show
    c.send(FADER, fader_norm(-10.0))
    assert c.query(FADER) == pytest.approx(fader_norm(-10.0))
    saved = cli("scene", "save", "chorus", "--scenes", str(folder), port=engine.port)
    assert saved.returncode == 0, saved.stderr
    assert files.load(REGISTRY, folder / "chorus.toml").values[FADER] == -10.0

    # The suppressor may place a live notch on the virtual stage at any
    # moment (a difference too): the fader's line is the one this test makes.
    def fader_rows() -> list[str]:
        diff = cli("scene", "diff", "chorus", "--scenes", str(folder), port=engine.port)
        assert diff.returncode == 0, diff.stderr
        lines = diff.stdout.splitlines()
        assert re.fullmatch(r"\d+ difference\(s\)", lines[-1]), lines
        assert int(lines[-1].split()[0]) == len(lines) - 1
        return [line for line in lines if line.startswith(f"{FADER} ")]

    assert fader_rows() == []
    assert cli("set", FADER, "0", port=engine.port).returncode == 0
    assert fader_rows() == [f"{FADER}  chorus: -10 dB  live: 0 dB"]
    gone = cli("scene", "diff", "chorus", "--scenes", str(folder), port=free_udp_port())
    one_error(gone, 1, "compares it with the running engine's live show")


# -- the console's connect -------------------------------------------------------------


def test_console_connect_asks_only_for_what_the_engine_has(show):
    """The console sizes its requests from ``/ls/stats``: an 8x4 engine is
    never asked for /ch/33 or /bus/05 (which it would refuse and log)."""
    engine, _, c = show
    logged = len(engine.errors)
    state = ConsoleState()  # 32 x 16 until the engine says otherwise

    async def attach() -> None:
        link = Link(state, "127.0.0.1", engine.port, meters=False)
        await link.start()
        try:
            while not (
                state.n_in == 8
                and state.n_bus == 4
                and all(a in state.known for a in sync_order(state))
            ):
                await asyncio.sleep(0.05)
        finally:
            link.close()

    asyncio.run(asyncio.wait_for(attach(), 60))
    assert state.values["/ch/08/config/name"] == c.query("/ch/08/config/name")
    time.sleep(0.3)  # the engine's log lines of the last requests
    assert not [line for line in engine.errors[logged:] if "refused" in line]


# -- stop ------------------------------------------------------------------------------


def test_stop_ends_the_engine_cleanly_and_says_when_none_runs(tmp_path):
    state = tmp_path / "state"
    engine = EngineProcess("--state-dir", str(state)).start()
    try:
        elsewhere = cli(
            "stop", "--state-dir", str(tmp_path / "other"), port=engine.port
        )
        one_error(elsewhere, 2, "uses the state dir")  # names the way out
        assert engine.proc.poll() is None
        assert cli("set", FADER, "-7dB", port=engine.port).returncode == 0
        done = cli("stop", "--state-dir", str(state), port=engine.port)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"stopped the engine (pid {engine.proc.pid})"
        # Gone by the time stop returns, as after Ctrl-C: exit code 0, the
        # last change autosaved on the way out, the port free.
        assert engine.proc.wait(5) == 0
        saved = files.load(REGISTRY, state / "autosave.toml").values[FADER]
        assert saved == pytest.approx(-7.0, abs=1e-3)
        assert not engine_answers(engine.port)
    finally:
        engine.stop()
    again = cli("stop", "--state-dir", str(state), port=engine.port)
    assert again.returncode == 0
    assert again.stdout.startswith("no engine running")


# -- first start -----------------------------------------------------------------------


def test_plain_livesound_shows_the_engine_starting(tmp_path, monkeypatch):
    """While plain ``livesound`` waits for the engine it starts, each line
    the engine writes appears with the seconds elapsed (on a terminal, in
    place on one line)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # python -P: not the cwd
    state = tmp_path / "state"
    port = free_udp_port()
    argv = ["--virtual", "--inputs", "2", "--buses", "2", "--osc-port", str(port),
            "--osc-host", "127.0.0.1", "--no-discovery", "--state-dir", str(state)]  # fmt: skip
    shown = io.StringIO()
    try:
        pid = ensure_engine(port, argv, state, out=shown)
        assert pid is not None and engine_answers(port)
        assert ensure_engine(port, argv, state, out=io.StringIO()) is None
    finally:
        stopped = cli("stop", "--state-dir", str(state))
        assert stopped.returncode == 0, stopped.stderr
    lines = shown.getvalue().splitlines()
    assert lines[0] == f"starting the engine (log: {state / 'engine.log'})"
    running = [line for line in lines if "livesound engine running" in line]
    assert running and re.match(r"\[\s*\d+ s\] livesound engine running", running[0])

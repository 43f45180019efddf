"""Scenes from outside the engine: the ``livesound scene`` command against a
running ``livesound engine``, the OSC scene commands and who may use them,
and the show surviving a ``kill -9`` of the engine (autosave, restore).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from osc_helpers import (
    DEADLINE,
    Client,
    EngineProcess,
    fader_norm,
    free_udp_port,
    msg,
    parse,
    wait_until,
)

from livesound.control.offline import BlockEngine
from livesound.control.registry import Registry
from livesound.osc.roles import ENGINEER, Permissions, Role
from livesound.osc.server import OscServer
from livesound.scenes import files, remote
from livesound.scenes.manager import SceneManager

N_IN, N_BUS = 8, 4
FADER = "/ch/01/mix/fader"
REGISTRY = Registry(N_IN, N_BUS)


def scene_cli(*args: str, port: int = 0, folder: Path | None = None):
    """``livesound scene ...`` for the 8x4 test engine on ``port``."""
    cmd = [sys.executable, "-m", "livesound", "scene", *args,
           "--port", str(port), "--inputs", str(N_IN), "--buses", str(N_BUS)]  # fmt: skip
    if folder is not None:
        cmd += ["--scenes", str(folder)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=DEADLINE)


@pytest.fixture(scope="module")
def show(tmp_path_factory):
    """An engine (with OSCQuery, for ``diff`` against the live show), its
    scene folder and a client on localhost (the engineer)."""
    base = tmp_path_factory.mktemp("scene-cli")
    folder = base / "scenes"
    engine = EngineProcess("--scenes", str(folder), "--state-dir", str(base / "state"),
                           discovery=True).start()  # fmt: skip
    try:
        with Client(engine.port) as client:
            yield engine, folder, client
    finally:
        engine.stop()


def test_cli_save_list_recall_and_diff(show):
    engine, folder, c = show
    run = lambda *a: scene_cli(*a, port=engine.port, folder=folder)  # noqa: E731
    c.send(FADER, fader_norm(-10.0))
    assert c.query(FADER) == pytest.approx(fader_norm(-10.0))

    saved = run("save", "song one")
    assert saved.returncode == 0, saved.stderr
    assert "song one" in saved.stdout
    assert files.load(REGISTRY, folder / "song one.toml").values[FADER] == -10.0
    listed = run("list")
    assert listed.returncode == 0 and "song one" in listed.stdout.splitlines()

    c.send(FADER, fader_norm(0.0))
    assert c.query(FADER) == pytest.approx(0.75)
    diff = run("diff", "song one")  # against the live show
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines() == [
        f"{FADER}  song one: -10 dB  live: 0 dB",
        "1 difference(s)",
    ]
    assert run("save", "song two").returncode == 0
    both = run("diff", "song one", "song two")
    assert both.stdout.splitlines()[-1] == "1 difference(s)"
    assert FADER in both.stdout

    recalled = run("recall", "song one")
    assert recalled.returncode == 0, recalled.stderr
    assert recalled.stdout.startswith("song one ")
    assert c.query(FADER) == pytest.approx(fader_norm(-10.0))
    assert run("diff", "song one").stdout.splitlines() == ["0 difference(s)"]


def test_cli_refusals_are_one_line_errors(show):
    engine, folder, c = show
    run = lambda *a: scene_cli(*a, port=engine.port, folder=folder)  # noqa: E731
    before = c.query(FADER)
    for args, says in [
        (("recall", "no such scene"), "no scene"),
        (("diff", "no such scene"), "no such scene"),
        (("recall", "../../etc/passwd"), "scene name"),
        (("recall",), "takes 1 name"),
    ]:
        r = run(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("livesound: error:") and says in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert c.query(FADER) == before
    gone = scene_cli("recall", "x", port=free_udp_port())  # no engine there
    assert gone.returncode == 1 and "no engine answered" in gone.stderr


def test_cli_go_and_back_follow_the_cue_list(show):
    engine, folder, c = show
    run = lambda *a: scene_cli(*a, port=engine.port, folder=folder)  # noqa: E731
    for name, db in (("cue a", -20.0), ("cue b", -6.0)):
        c.send(FADER, fader_norm(db))
        c.query(FADER)
        assert run("save", name).returncode == 0
    files.write_atomic(folder / "cuelist.toml", 'cues = ["cue a", "cue b"]\n')
    try:
        assert run("recall", "cue a").stdout.split() == ["cue", "a", "cue", "b"]
        assert run("go").returncode == 0
        assert c.query(FADER) == pytest.approx(fader_norm(-6.0))
        assert run("back").returncode == 0
        assert c.query(FADER) == pytest.approx(fader_norm(-20.0))
        assert c.request("/ls/scene/current").args == ("cue a", "cue b")
    finally:
        (folder / "cuelist.toml").unlink()


# -- who may recall ------------------------------------------------------------------


def test_osc_recall_is_for_the_engineer_only(show):
    engine, folder, c = show
    c.send(FADER, fader_norm(-30.0))
    assert c.query(FADER) == pytest.approx(fader_norm(-30.0))
    assert scene_cli("save", "roles", port=engine.port).returncode == 0
    c.send(FADER, fader_norm(0.0))
    index = c.request("/ls/scene/list").args.index("roles")
    with Client(engine.port, ip="127.0.0.2") as stranger:  # read-only by default
        assert stranger.request("/ls/errors", 1).args == (1,)  # goscene is the X32's
        for args in (("/ls/scene/recall", "roles"), ("/-action/goscene", index)):
            reply = stranger.request(*args)
            assert reply.address == "/ls/error", reply
            assert reply.args[0] == args[0] and "not allowed" in reply.args[1]
        assert "roles" in stranger.request("/ls/scene/list").args  # may read
    assert c.query(FADER) == pytest.approx(0.75)
    reply = c.request("/-action/goscene", index)
    assert reply.address == "/ls/scene/current" and reply.args[0] == "roles"
    assert c.query(FADER) == pytest.approx(fader_norm(-30.0))
    c.send(FADER, fader_norm(0.0))
    assert c.request("/ls/scene/recall", "roles").args[0] == "roles"
    assert c.query(FADER) == pytest.approx(fader_norm(-30.0))


PERFORMER, ENGINEER_ADDR = ("10.0.0.2", 9000), ("10.0.0.9", 9000)


@pytest.fixture
def served(tmp_path):
    """An OSC server (not bound: datagrams go straight to ``handle_datagram``)
    with the scene commands, a performer of mix 1 and an engineer."""
    e = BlockEngine(n_in=N_IN, n_bus=N_BUS, phys_in=8, phys_out=8)
    perms = Permissions(by_address={PERFORMER[0]: Role("performer", 1),
                                    ENGINEER_ADDR[0]: ENGINEER})  # fmt: skip
    server = OscServer(e.mixer, perms)
    scenes = SceneManager(e.mixer, tmp_path)
    remote.register(server, scenes, lambda: 0.0)
    for client in (PERFORMER, ENGINEER_ADDR):  # /-action/goscene refuses quietly
        server.handle_datagram(msg("/ls/errors", 1), client)
    e.mixer.set(FADER, -12.0)
    scenes.save("a")
    scenes.save("b")
    e.mixer.set(FADER, 0.0)
    yield e, server, scenes
    server.close()


def ask(server, addr, address, *args):
    return [parse(r) for r, _ in server.handle_datagram(msg(address, *args), addr)]


@pytest.mark.parametrize(
    "address, args",
    [
        ("/ls/scene/recall", ("a",)),
        ("/-action/goscene", (0,)),
        ("/ls/scene/go", ()),
        ("/ls/scene/back", ()),
        ("/ls/scene/save", ("c",)),
        ("/ls/scene/rename", ("a", "c")),
        ("/ls/scene/delete", ("a",)),
    ],
)
def test_scene_commands_refused_for_a_performer_accepted_for_the_engineer(
    served, address, args
):
    e, server, scenes = served
    before, names = e.mixer.snapshot(), scenes.names()
    replies = ask(server, PERFORMER, address, *args)
    assert [r.address for r in replies] == ["/ls/error"]
    assert replies[0].args == (address, "not allowed for role performer:1")
    assert e.mixer.snapshot() == before and scenes.names() == names
    replies = ask(server, ENGINEER_ADDR, address, *args)
    assert [r.address for r in replies] != ["/ls/error"], replies
    assert e.mixer.snapshot() != before or scenes.names() != names


def test_performer_may_read_the_scene_list_and_current(served):
    e, server, scenes = served
    assert ask(server, PERFORMER, "/ls/scene/list")[0].args == ("a", "b")
    assert ask(server, PERFORMER, "/ls/scene/current")[0].args == ("", "a")


@pytest.mark.parametrize(
    "address, args",
    [
        ("/-action/goscene", (2,)),
        ("/-action/goscene", (-1,)),
        ("/-action/goscene", ("a",)),
        ("/-action/goscene", ()),
        ("/ls/scene/recall", ()),
        ("/ls/scene/recall", (3,)),
        ("/ls/scene/recall", ("../a",)),
        ("/ls/scene/save", ("c", 61.0)),
        ("/ls/scene/rename", ("a", "b")),
    ],
)
def test_bad_scene_commands_are_answered_with_an_error(served, address, args):
    e, server, scenes = served
    before = e.mixer.snapshot()
    replies = ask(server, ENGINEER_ADDR, address, *args)
    assert [r.address for r in replies] == ["/ls/error"], replies
    assert e.mixer.snapshot() == before and scenes.names() == ["a", "b"]


# -- the show survives kill -9 ----------------------------------------------------------


def test_engine_killed_with_sigkill_restores_the_show(tmp_path):
    args = (
        "--scenes",
        str(tmp_path / "scenes"),
        "--state-dir",
        str(tmp_path / "state"),
    )
    autosave = tmp_path / "state" / "autosave.toml"
    first = EngineProcess(*args).start()
    try:
        assert not any("restored" in line for line in first.stdout)
        with Client(first.port) as c:
            c.send("/ch/03/mix/fader", 0.6)
            c.send("/ch/03/config/name", "Sax")
            assert c.query("/ch/03/mix/fader") == pytest.approx(0.6)

        def saved() -> bool:
            try:  # the file may be missing for a moment (mid-rotation)
                values = files.load(REGISTRY, autosave).values
            except (files.SceneError, OSError):
                return False
            fader = REGISTRY["/ch/03/mix/fader"].from_norm(0.6)
            return values["/ch/03/config/name"] == "Sax" and values[
                "/ch/03/mix/fader"
            ] == pytest.approx(fader)

        wait_until(saved, what="the autosave")
        os.kill(first.proc.pid, signal.SIGKILL)
        assert first.finished() == -signal.SIGKILL
    finally:
        first.stop()
    second = EngineProcess(*args).start()
    try:
        assert any("restored the show" in line for line in second.stdout), second.stdout
        with Client(second.port) as c:
            assert c.query("/ch/03/mix/fader") == pytest.approx(0.6)
            assert c.query("/ch/03/config/name") == "Sax"
    finally:
        second.stop()


def test_cli_writes_and_reads_a_scene_note(show):
    engine, folder, c = show
    run = lambda *a: scene_cli(*a, port=engine.port, folder=folder)  # noqa: E731
    assert run("save", "noted").returncode == 0
    assert run("note", "noted").stdout.strip() == "noted: no note"
    written = run("note", "noted", "swap the vocal mic after song 3")
    assert written.returncode == 0, written.stderr
    assert (
        run("note", "noted").stdout.strip() == "noted: swap the vocal mic after song 3"
    )
    assert files.load(REGISTRY, folder / "noted.toml").notes == (
        "swap the vocal mic after song 3")  # fmt: skip
    missing = run("note", "nothing here", "x")
    assert missing.returncode == 2 and "no scene 'nothing here'" in missing.stderr

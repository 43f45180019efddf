"""Storage faults against real ``livesound engine`` processes: a full disk, a
read-only folder, broken files at start, autosave generations and partial
restore, one engine per state dir, refused commands leaving the show alone,
and ``kill -9`` in the middle of saves.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from audio_helpers import LoudEngine
from osc_helpers import (
    DEADLINE,
    START_DEADLINE,
    Client,
    EngineProcess,
    fader_norm,
    wait_until,
)

from livesound.bench.faults import fill
from livesound.control.registry import Registry
from livesound.scenes import autosave, files

N_IN, N_BUS = 8, 4
REGISTRY = Registry(N_IN, N_BUS)
FADER = "/ch/01/mix/fader"


# -- helpers -------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "256k"):
    """A small tmpfs at ``folder`` (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                           str(folder)], capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def engine(scenes: Path, state: Path, discovery: bool = False) -> EngineProcess:
    return EngineProcess("--scenes", str(scenes), "--state-dir", str(state),
                         inputs=N_IN, buses=N_BUS, discovery=discovery).start()  # fmt: skip


def reply_to(
    c: Client, address: str, *args, timeout: float = DEADLINE
) -> tuple[str, tuple]:
    """The engine's answer to one command (pushes in between skipped)."""
    c.drain()
    c.send(address, *args)
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        m = c.recv(left)
        if m.address == "/ls/error" or not m.address.startswith("/ls/status/"):
            return m.address, m.args
    raise AssertionError(f"no answer to {address}")


def live(port: int) -> dict:
    """The running engine's whole show, over OSCQuery."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=DEADLINE) as r:
        tree = json.load(r)
    values = {}

    def walk(node: dict) -> None:
        for child in node.get("CONTENTS", {}).values():
            walk(child)
        if node.get("FULL_PATH") in REGISTRY and "VALUE" in node:
            values[node["FULL_PATH"]] = node["VALUE"][0]

    walk(tree)
    assert len(values) > 500, "OSCQuery gave too little of the show"
    return values


def fader_in(path: Path) -> float:
    return files.load(REGISTRY, path).values[FADER]


def saved_fader(path: Path) -> float | None:
    """The fader in a file that may be missing for a moment (mid-rotation)."""
    with contextlib.suppress(files.SceneError):
        return fader_in(path)
    return None


def scene_text(fader_db: float) -> str:
    return f'format = 1\nname = "x"\n\n[ch.01]\nfader_db = {fader_db}\n'


def blocks(c: Client) -> int:
    return c.stats()["engine"]["blocks"]


# -- a full disk -------------------------------------------------------------------


def test_full_disk_is_reported_retried_and_never_stops_audio(tmp_path):
    with tmpfs(tmp_path / "disk") as disk:
        proc = LoudEngine("--scenes", str(disk / "scenes"), "--state-dir",
                          str(disk / "state"), inputs=N_IN, buses=N_BUS).start()  # fmt: skip
        try:
            with Client(proc.port) as c, Client(proc.port) as watcher:
                watcher.send("/xremote")
                filler = fill(disk)
                c.send(FADER, fader_norm(-9.0))
                storage = wait_until(lambda: c.stats().get("storage"),
                                     what="a storage fault in /ls/stats")  # fmt: skip
                assert storage["fault"] == "disk full", storage
                assert storage["file"].endswith("autosave.toml") and storage["since"]
                pushed = watcher.recv()  # the subscriber is told
                while pushed.address != "/ls/status/storage":
                    pushed = watcher.recv()
                assert "disk full" in pushed.arg, pushed
                address, args = reply_to(c, "/ls/scene/save", "verse")
                assert address == "/ls/error" and "disk full" in args[1], args
                assert c.query("/ls/status/storage").startswith("disk full")
                wait_until(lambda: any("STORAGE: disk full" in line for line in proc.stdout),
                           what="the fault on the meter line")  # fmt: skip
                before = blocks(c)
                wait_until(lambda: blocks(c) > before + 100, what="blocks advancing")
                assert proc.proc.poll() is None
                filler.unlink()
                wait_until(lambda: c.stats().get("storage") is None,
                           what="the retry clearing the fault")  # fmt: skip
                watcher.send("/xremote")
                assert fader_in(disk / "state" / "autosave.toml") == pytest.approx(-9.0)
                assert files.load(REGISTRY, disk / "scenes" / "verse.toml")
                assert c.query("/ls/status/storage") == ""
        finally:
            proc.stop()


# -- a read-only folder ------------------------------------------------------------


def test_read_only_folder_refuses_writes_and_recovers(tmp_path):
    with tmpfs(tmp_path / "disk", "4m") as disk:
        scenes, state = disk / "scenes", disk / "state"
        scenes.mkdir()
        (scenes / "intro.toml").write_text(scene_text(-3.0))
        proc = engine(scenes, state)
        try:
            with Client(proc.port) as c:
                remount(disk, "ro")
                c.send(FADER, fader_norm(-11.0))
                storage = wait_until(lambda: c.stats().get("storage"),
                                     what="a storage fault in /ls/stats")  # fmt: skip
                assert storage["fault"] == "read-only", storage
                for command in (("/ls/scene/save", "verse"),
                                ("/ls/scene/rename", "intro", "opener"),
                                ("/ls/scene/delete", "intro"),
                                ("/ls/scene/safe", "ch.02", 1)):  # fmt: skip
                    address, args = reply_to(c, *command)
                    assert address == "/ls/error" and "read-only" in args[1], command
                assert sorted(p.name for p in scenes.iterdir()) == ["intro.toml"]
                assert reply_to(c, "/ls/scene/safes") == ("/ls/scene/safes", ())
                remount(disk, "rw")
                wait_until(lambda: c.stats().get("storage") is None,
                           what="the retry clearing the fault")  # fmt: skip
                assert fader_in(state / "autosave.toml") == pytest.approx(-11.0)
                assert files.load(REGISTRY, scenes / "verse.toml")  # kept, retried
        finally:
            with contextlib.suppress(subprocess.CalledProcessError):
                remount(disk, "rw")
            proc.stop()


# -- bad files at start --------------------------------------------------------------


def test_bad_files_never_block_start_up(tmp_path):
    scenes, state = tmp_path / "scenes", tmp_path / "state"
    scenes.mkdir()
    state.mkdir()
    (scenes / "good.toml").write_text(scene_text(-4.0))
    (scenes / "broken.toml").write_text("format = 1\n[ch.01\n")
    (scenes / "cuelist.toml").write_text("cues = [\n")
    (scenes / ".good.toml.k2j3.tmp").write_text("format = 1\n[ch")
    (state / "safes.toml").write_bytes(b'strips = ["\xff\xfe"]\n')
    (state / "autosave.toml").write_text("not = [toml\n")
    (state / "autosave.1.toml").write_text(scene_text(-17.0))
    (state / ".autosave.toml.x81k.tmp").write_text("format = 1\n")
    proc = engine(scenes, state)
    try:
        with Client(proc.port) as c:
            assert c.query(FADER) == pytest.approx(fader_norm(-17.0), abs=1e-4)
            assert reply_to(c, "/ls/scene/list") == ("/ls/scene/list", ("good",))
        for folder, name in ((scenes, "broken.toml"), (scenes, "cuelist.toml"),
                             (state, "safes.toml"), (state, "autosave.toml")):  # fmt: skip
            assert not (folder / name).exists(), name
            kept = list(folder.glob(f"{name}.unreadable-*"))
            assert len(kept) == 1, (name, list(folder.iterdir()))
        assert not list(tmp_path.rglob("*.tmp")), "stale temp files were kept"
        log = proc.stderr
        assert "broken.toml: not valid TOML" in log and "line 2" in log
        assert "cuelist.toml" in log and "safes.toml" in log
    finally:
        assert proc.stop() == 0


def test_partial_restore_names_each_refused_value(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "autosave.toml").write_text(
        'format = 1\nname = "autosave"\n\n[ch.01]\nfader_db = -13.0\n\n'
        "[ch.02]\nfader_db = 99.0\nmute_db = 1\n"
    )
    proc = engine(tmp_path / "scenes", state)
    try:
        with Client(proc.port) as c:
            assert c.query(FADER) == pytest.approx(fader_norm(-13.0), abs=1e-4)
        log = proc.stderr
        assert "autosave.toml:8: ch.02.fader_db" in log, log
        assert "autosave.toml:9: unknown parameter ch.02.mute_db" in log, log
        assert (state / "autosave.toml").exists()  # restored from: not set aside
    finally:
        proc.stop()


# -- generations -------------------------------------------------------------------


def state_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livesound", "state", *args],
                          capture_output=True, text=True, timeout=DEADLINE)  # fmt: skip


def test_generations_rotate_to_ten_and_restore(tmp_path):
    scenes, state = tmp_path / "scenes", tmp_path / "state"
    state.mkdir()
    for n in range(autosave.GENERATIONS):
        autosave.path_of(state, n).write_text(scene_text(-float(n + 1)))
    proc = engine(scenes, state)
    try:
        with Client(proc.port) as c:
            assert c.query(FADER) == pytest.approx(fader_norm(-1.0), abs=1e-4)
            c.send(FADER, fader_norm(-30.0))
            wait_until(lambda: saved_fader(state / "autosave.toml") == pytest.approx(-30.0),
                       what="the next autosave")  # fmt: skip
            found = autosave.generations(state)
            assert [g.n for g in found] == list(range(autosave.GENERATIONS))
            # every file moved one up; the oldest (-10 dB) dropped off
            assert [fader_in(g.path) for g in found] == pytest.approx(
                [-30.0, *range(-1, -10, -1)]
            )
            listing = state_cli("list", "--state-dir", str(state))
            assert listing.returncode == 0
            assert len(listing.stdout.splitlines()) == autosave.GENERATIONS
            assert "autosave.9.toml" in listing.stdout
            asked = state_cli("restore", "3", "--state-dir", str(state),
                              "--port", str(proc.port))  # fmt: skip
            assert asked.returncode == 0, asked.stderr
            assert "running engine loaded generation 3" in asked.stdout
            assert c.query(FADER) == pytest.approx(fader_norm(-3.0), abs=1e-4)
    finally:
        proc.stop()
    offline = state_cli("restore", "5", "--state-dir", str(state))
    assert offline.returncode == 0, offline.stderr
    assert "no engine running" in offline.stdout
    assert fader_in(state / "autosave.toml") == fader_in(state / "autosave.6.toml")


# -- one engine per state dir -------------------------------------------------------


def test_second_engine_on_the_same_state_dir_exits_2(tmp_path):
    first = engine(tmp_path / "scenes", tmp_path / "state")
    try:
        second = EngineProcess("--scenes", str(tmp_path / "scenes"), "--state-dir",
                               str(tmp_path / "state"), inputs=N_IN, buses=N_BUS)  # fmt: skip
        second.launch()
        assert second.finished(START_DEADLINE) == 2
        pid = first.proc.pid
        line = (f"livesound: error: another engine (pid {pid}) uses the state dir "
                f"{tmp_path / 'state'}")  # fmt: skip
        assert line in second.stderr.splitlines(), second.stderr
        assert not second.running  # never got as far as audio and OSC
        assert first.proc.poll() is None
    finally:
        assert first.stop() == 0


# -- refused means untouched ----------------------------------------------------------


def test_refused_scene_commands_leave_the_show_untouched(tmp_path):
    scenes, state = tmp_path / "scenes", tmp_path / "state"
    scenes.mkdir()
    values = {f"ch.{i:02d}": -float(i) for i in range(1, N_IN + 1)}
    whole = "".join(f"\n[{s}]\nfader_db = {v}\non = 0\n" for s, v in values.items())
    (scenes / "a.toml").write_text('format = 1\nname = "a"\n' + whole)
    (scenes / "b.toml").write_text(scene_text(-2.0))
    (scenes / "cuelist.toml").write_text('cues = ["a", "b"]\n')
    proc = engine(scenes, state, discovery=True)
    try:
        with Client(proc.port) as c:
            assert c.request("/ls/errors", 1).args == (1,)  # goscene is the X32's
            (scenes / "cuelist.toml").write_text("cues = [\n")  # broken mid-show
            (scenes / "bad.toml").write_text(scene_text(-2.0) + "fader_db = 1\n")
            before = live(proc.port)
            refused = [("/ls/scene/go",), ("/ls/scene/back",),
                       ("/ls/scene/recall", "bad"), ("/ls/scene/recall", "none"),
                       ("/ls/scene/recall",), ("/-action/goscene", 9),
                       ("/ls/scene/save", "../x"), ("/ls/scene/save", "x", 99.0),
                       ("/ls/scene/rename", "a", "b"), ("/ls/scene/rename", "z", "y"),
                       ("/ls/scene/delete", "none"), ("/ls/scene/safe", "ch.99", 1),
                       ("/ls/state/restore", 4)]  # fmt: skip
            for command in refused:
                address, args = reply_to(c, *command)
                assert address == "/ls/error", (command, address, args)
                assert live(proc.port) == before, command
            assert sorted(p.name for p in scenes.glob("*.toml")) == [
                "a.toml", "b.toml", "bad.toml", "cuelist.toml"]  # fmt: skip
            # A good scene still recalls whole with the cue list broken.
            assert reply_to(c, "/ls/scene/recall", "a")[0] == "/ls/scene/current"
            after = live(proc.port)
            for strip, db in values.items():
                address = f"/ch/{strip[3:]}/mix/"
                assert after[address + "fader"] == pytest.approx(
                    fader_norm(db), abs=1e-4
                )
                assert after[address + "on"] == 0
    finally:
        proc.stop()


# -- kill -9 in the middle of saves ---------------------------------------------------


def test_kill_9_during_saves_loses_no_scene_and_leaves_no_corrupt_file(tmp_path):
    scenes, state = tmp_path / "scenes", tmp_path / "state"
    acknowledged: set[str] = set()
    rng = random.Random(7)
    for round_ in range(4):
        proc = engine(scenes, state)
        stop = threading.Event()

        def save_loop(port: int = proc.port, round_: int = round_, stop=stop) -> None:
            with Client(port) as c:
                n = 0
                while not stop.is_set():
                    name = f"r{round_}-{n}"
                    c.send(FADER, fader_norm(-float(n % 40)))
                    # A short wait, so the loop soon sees ``stop`` once the
                    # engine is killed; a save answered later is not counted.
                    with contextlib.suppress(AssertionError, OSError):
                        answer = reply_to(c, "/ls/scene/save", name, timeout=5.0)
                        if answer[0] == "/ls/scene/saved":
                            acknowledged.add(name)
                    n += 1

        saver = threading.Thread(target=save_loop)
        saver.start()
        try:
            time.sleep(rng.uniform(0.3, 3.0))  # a varied moment, not a deadline
            os.killpg(proc.proc.pid, signal.SIGKILL)
            proc.finished()
        finally:
            stop.set()
            saver.join(DEADLINE)
        for path in [*scenes.glob("*.toml"), *state.glob("*.toml")]:
            files.load(REGISTRY, path)  # every file whole
        missing = [n for n in acknowledged if not (scenes / f"{n}.toml").exists()]
        assert not missing, missing
    assert acknowledged
    proc = engine(scenes, state)  # the next start clears what a kill left
    try:
        assert not list(scenes.glob("*.tmp")) and not list(state.glob("*.tmp"))
    finally:
        proc.stop()

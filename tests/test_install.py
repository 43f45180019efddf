"""The README's two commands in either order, in a fresh venv: ``pip install .
&& livesound`` and the install step of ``bash tests/run.sh`` (``pip install
-e '.[test]'``).

Each install is followed by ``livesound --help`` and by plain ``livesound``
in a real terminal (tmux), started from the source tree as a new user
would: it must show the engine's start (the seconds elapsed, the kernel
being compiled on a cold start), run the engine from the installed copy
(its compiled kernels land in numba's cache folder for that copy, never in
the source tree's), attach the console, and ``livesound stop`` must end
the engine. numba's files must never appear inside a package folder (they
once turned ``livesound.dsp`` into a namespace package and broke
``livesound --help``).

The venv sees the system's site-packages (numpy, numba ... are not
downloaded again); livesound itself is installed into it fresh from a copy
of this tree. Several minutes: the kernels are compiled three times.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from numba.core.caching import UserProvidedCacheLocator
from osc_helpers import Client, free_udp_port, wait_until

from livesound.places import audio_digest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = "pip install . && livesound"  # the README's first command
EDITABLE = "python3 -m pip install -q -e '.[test]'"  # tests/run.sh's install step
START_S = 900.0  # a cold compile on a loaded 2-core machine


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new user's shell: nothing points into this tree
    or at another numba cache."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR")}  # fmt: skip
    env.update(extra)
    return env


class Setup:
    """A copy of the source tree, a fresh venv, a numba cache folder."""

    def __init__(self, src: Path, venv: Path, cache: Path) -> None:
        if not src.exists():
            shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
                ".git", "__pycache__", "*.egg-info", "build", ".ruff_cache",
                ".pytest_cache"))  # fmt: skip
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                        str(venv)], check=True, timeout=300)  # fmt: skip
        self.src, self.venv, self.cache = src, venv, cache
        self.python = venv / "bin" / "python"
        self.env = clean_env(XDG_CACHE_HOME=str(cache),
                             PATH=f"{venv / 'bin'}:{os.environ['PATH']}")  # fmt: skip
        purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
        self.site = Path(self.run(str(self.python), "-c", purelib).stdout.strip())

    def run(self, *cmd: str, timeout: float = 600) -> subprocess.CompletedProcess:
        done = subprocess.run(cmd, cwd=self.src, capture_output=True, text=True,
                              timeout=timeout, env=self.env)  # fmt: skip
        assert done.returncode == 0, (cmd, done.stdout, done.stderr)
        return done

    def install(self, editable: bool) -> Path:
        """One of the two install steps; returns the package folder in use."""
        extra = ["-e", ".[test]"] if editable else ["."]
        self.run(str(self.python), "-m", "pip", "install", "-q", *extra)
        where = self.run(str(self.python), "-P", "-c",
                         "import livesound; print(livesound.__file__)").stdout  # fmt: skip
        package = Path(where.strip()).parent
        assert package == (
            self.src / "livesound" if editable else self.site / "livesound"
        )
        return package

    def cache_folders(self) -> set[str]:
        """numba's cache folders, under the audio plane's digest folder."""
        numba = self.cache / "livesound" / "numba" / audio_digest()
        return {p.name for p in numba.iterdir()} if numba.is_dir() else set()


def cache_folders_of(package: Path) -> set[str]:
    """numba's cache folders for a copy of the package: one per folder of
    compiled code (audio, virtual)."""
    return {UserProvidedCacheLocator.get_suitable_cache_subpath(str(package / sub / "x.py"))
            for sub in ("audio", "virtual")}  # fmt: skip


def no_numba_files_in(*folders: Path) -> None:
    for folder in folders:
        found = [p for p in folder.rglob("*") if p.suffix in (".nbi", ".nbc")]
        assert found == [], found


def first_start(setup: Setup, package: Path, tmp: Path) -> None:
    """Plain ``livesound`` in a terminal, from the source tree; then stop."""
    cold = not cache_folders_of(package) <= setup.cache_folders()
    before = setup.cache_folders()
    port, state = free_udp_port(), tmp / f"state-{uuid.uuid4().hex[:8]}"
    command = ["livesound", "--virtual", "--inputs", "2", "--buses", "2",
               "--osc-port", str(port), "--osc-host", "127.0.0.1", "--no-discovery",
               "--state-dir", str(state), "--scenes", str(tmp / "scenes")]  # fmt: skip
    env = {k: setup.env[k] for k in ("PATH", "HOME", "XDG_CACHE_HOME")}
    env["TERM"] = "xterm-256color"
    # The pane outlives livesound, so a start that fails leaves its words.
    shell = (f"cd {shlex.quote(str(setup.src))} && env -i "
             + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " "
             + shlex.join(command) + "; echo livesound exited $?; sleep 3600")  # fmt: skip
    sock = f"ls-install-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def tmux(*args: str) -> str:
        return subprocess.run(["tmux", "-L", sock, *args], capture_output=True,
                              text=True, timeout=10).stdout  # fmt: skip

    tmux("new-session", "-d", "-s", "t", "-x", "120", "-y", "40", shell)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + START_S
        while "MAIN MIX" not in (screen := tmux("capture-pane", "-p", "-t", "t")):
            if "livesound exited" in screen or time.monotonic() > deadline:
                log = state / "engine.log"
                tail = log.read_text()[-3000:] if log.exists() else "(no engine.log)"
                raise AssertionError(f"no console; the screen:\n{screen}\n"
                                     f"the engine's log:\n{tail}")  # fmt: skip
            seen += [line for line in screen.splitlines()
                     if line.startswith("starting the engine:")]  # fmt: skip
            time.sleep(0.5)
        assert seen, "no progress line while the engine started"
        if cold:  # the seconds and the kernel being compiled
            shown = r"starting the engine: +\d+ s  compiling audio\.kernels\.\w+"
            assert any(re.match(shown, line) for line in seen), seen
        # The virtual sound card's loop compiles in its own thread as it
        # starts: stopped before its first block, it would leave no cache.
        with Client(port) as c:
            wait_until(lambda: c.stats()["engine"]["blocks"] > 0, START_S,
                       "the virtual stage to play")  # fmt: skip
    finally:
        stopped = subprocess.run(
            ["livesound", "stop", "--state-dir", str(state), "--port", str(port)],
            capture_output=True, text=True, timeout=120, env=setup.env)  # fmt: skip
        tmux("kill-server")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.startswith("stopped the engine (pid ")
    # The engine compiled (or loaded) the installed copy's kernels only.
    assert cache_folders_of(package) <= setup.cache_folders()
    assert setup.cache_folders() - before <= cache_folders_of(package)


@pytest.mark.parametrize("editable_first", [False, True],
                         ids=["install-then-editable", "editable-then-install"])  # fmt: skip
def test_the_two_commands_work_in_either_order(tmp_path_factory, editable_first):
    readme = (ROOT / "README.md").read_text()
    assert INSTALLED in readme and "bash tests/run.sh" in readme
    assert EDITABLE in (ROOT / "tests" / "run.sh").read_text()
    # One source copy and one cache for both orders (as a user's clone and
    # ~/.cache): the source copy's kernels compile once, each venv's
    # installed copy once.
    shared = tmp_path_factory.getbasetemp()
    base = tmp_path_factory.mktemp("install")
    setup = Setup(shared / "install-src", base / "venv", shared / "install-cache")
    for editable in (editable_first, not editable_first):
        package = setup.install(editable)
        helped = setup.run(str(setup.venv / "bin" / "livesound"), "--help")
        assert "usage: livesound" in helped.stdout
        first_start(setup, package, base)
        no_numba_files_in(setup.src / "livesound", setup.site / "livesound")

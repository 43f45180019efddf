"""Autosave generations in the state folder: the newest show and nine before it.

``autosave.toml`` is the newest; each new autosave is written to a temp
file and fsynced, then ``autosave.8.toml`` … ``autosave.toml`` move one
number up (``autosave.9.toml`` drops off) and the temp file is renamed to
``autosave.toml``. A crash at any moment leaves whole files only: at worst
the newest is missing and ``autosave.1.toml`` is the newest that reads.
When the disk is too full for a new autosave, the oldest generations (all
but the newest two) are given up, one at a time, to make room for it.
"""

import contextlib
import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path

from livesound.scenes import files

NAME = "autosave.toml"
GENERATIONS = 10


def path_of(state_dir: Path, n: int) -> Path:
    """Generation ``n`` (0 = the newest)."""
    return state_dir / (NAME if n == 0 else f"autosave.{n}.toml")


@dataclass
class Generation:
    """One autosave on disk."""

    n: int
    path: Path
    mtime: float
    size: int


def generations(state_dir: Path) -> list[Generation]:
    """The autosaves present, newest first."""
    found = []
    for n in range(GENERATIONS):
        path = path_of(state_dir, n)
        with contextlib.suppress(OSError):
            st = path.stat()
            found.append(Generation(n, path, st.st_mtime, st.st_size))
    return found


def write(state_dir: Path, text: str) -> Path:
    """Store ``text`` as the newest generation, rotating the older ones."""
    newest = path_of(state_dir, 0)
    while True:
        try:
            tmp = files.write_temp(newest, text)
            break
        except OSError as exc:
            older = generations(state_dir)[2:]
            if exc.errno != errno.ENOSPC or not older:
                raise
            older[-1].path.unlink()
    try:
        for n in range(GENERATIONS - 1, 0, -1):
            older = path_of(state_dir, n - 1)
            if older.exists():
                os.replace(older, path_of(state_dir, n))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    files.commit(tmp, newest)
    return newest


def listing(state_dir: Path) -> list[str]:
    """``livesound state list``: one line per generation, newest first."""
    rows = []
    for g in generations(state_dir):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(g.mtime))
        rows.append(f"{g.n:2d}  {when}  {g.size:8d} B  {g.path.name}")
    return rows


def make_newest(state_dir: Path, n: int) -> Path:
    """Copy generation ``n`` in as the newest, so the next start restores it
    (every generation stays: the current newest becomes ``autosave.1.toml``)."""
    source = path_of(state_dir, n)
    if not 0 <= n < GENERATIONS or not source.exists():
        raise files.SceneError(f"no autosave generation {n} in {state_dir}")
    return write(state_dir, files.read_text(source))

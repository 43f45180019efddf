"""The show's files on a disk that may fail: faults, retries, bad files, the lock.

A write that fails (disk full, read-only, permission denied) is a *storage
fault*: reported in words, shown until a later write succeeds, never fatal.
A file that cannot be read is kept aside as ``NAME.unreadable-<stamp>`` so
the engine starts without it and nothing the engineer wrote is lost.
"""

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from livesound.scenes.files import SceneError

log = logging.getLogger("livesound.scenes")

LOCK_FILE = "engine.lock"
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0

_WORDS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def describe(exc: OSError) -> str:
    """An OS error in the words an engineer reads: disk full, read-only …"""
    return _WORDS.get(exc.errno) or (exc.strerror or str(exc)).lower()


def stamp(at: float | None = None) -> str:
    """``YYYYmmdd-HHMMSS`` (local time) for kept-aside files."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(at))


def keep_aside(path: Path) -> Path | None:
    """Rename an unreadable file to ``NAME.unreadable-<stamp>`` (``-2``, ``-3``
    … if that exists: never overwriting); None if even that fails."""
    base = path.with_name(f"{path.name}.unreadable-{stamp()}")
    kept, n = base, 1
    while kept.exists():
        n += 1
        kept = base.with_name(f"{base.name}-{n}")
    try:
        os.rename(path, kept)
    except OSError as exc:
        log.warning("%s could not be kept aside: %s", path, describe(exc))
        return None
    return kept


@dataclass
class Fault:
    """The newest failed write: what went wrong, with which file, since when."""

    fault: str
    file: str
    since: float

    def text(self) -> str:
        return f"{self.fault}: {self.file}"

    def report(self) -> dict:
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.since))
        return {"fault": self.fault, "file": self.file, "since": since}


class Storage:
    """Writes of the show's files, with the fault they leave and their retries.

    Failed writes that must not be lost (autosave, scene saves) stay pending
    and are retried with backoff (1, 2, 4 … 30 s) by ``retry``; the fault
    clears when a write succeeds and nothing is pending.
    """

    def __init__(self) -> None:
        self.fault: Fault | None = None
        self.pending: dict[Path, Callable[[], None]] = {}
        self.listeners: list[Callable[[str], None]] = []
        self._delay = RETRY_FIRST_S
        self._next_try = 0.0

    def run(self, path: Path, write: Callable[[], None], keep: bool = False) -> None:
        """Do ``write`` (of ``path``); on failure record the fault and raise
        ``StorageError``; with ``keep`` the write stays pending for ``retry``."""
        try:
            write()
        except OSError as exc:
            if keep:
                self.pending[path] = write
            self._set(Fault(describe(exc), str(path), time.time()))
            raise StorageError(f"{describe(exc)}: cannot write {path}"
                               + ("; kept, retrying" if keep else "")) from None  # fmt: skip
        self.pending.pop(path, None)
        if not self.pending:
            self._delay = RETRY_FIRST_S
            self._set(None)

    def retry(self, now: float) -> None:
        """Retry pending writes when their backoff has passed (``now``: any
        monotonic seconds)."""
        if not self.pending or now < self._next_try:
            return
        for path, write in list(self.pending.items()):
            try:
                self.run(path, write, keep=True)
            except StorageError:
                self._next_try = now + self._delay
                self._delay = min(RETRY_MAX_S, 2 * self._delay)
                return
        log.warning("storage recovered: pending writes done")

    def status(self) -> str:
        """The fault in one line; empty when storage is fine."""
        return self.fault.text() if self.fault else ""

    def _set(self, fault: Fault | None) -> None:
        was = self.status()
        if fault is not None and self.fault is not None:
            fault.since = self.fault.since  # still the same trouble
        self.fault = fault
        if self.status() != was:
            if fault is not None:
                log.warning("storage fault: %s", fault.text())
            for listener in self.listeners:
                listener(self.status())


class StorageError(SceneError):
    """A write of the show's files failed; the message says why in words."""


class StateDirLocked(RuntimeError):
    """Another engine holds the state folder."""


def lock_state_dir(folder: Path) -> int:
    """Hold ``folder``'s lock file for this process's life (returns its fd,
    -1 when the folder cannot even be read).

    Raises ``StateDirLocked`` naming the other engine's pid when it is taken.
    The lock is held through a read-only descriptor, so the folder's file
    system can still be remounted read-only under a running engine.
    """
    path = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError:
        try:  # a read-only folder still locks through an existing file
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            log.warning("state dir %s not locked: %s", folder, describe(exc))
            return -1
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StateDirLocked(
            f"another engine (pid {other}) uses the state dir {folder}"
        ) from None
    # Without it (read-only folder) the lock holds; only the pid is missing.
    with contextlib.suppress(OSError):
        path.write_text(f"{os.getpid()}\n")
    return fd


_held: dict[Path, int] = {}  # folder -> lock descriptor, held until exit


def hold_state_dir(folder: Path) -> None:
    """Take ``folder``'s lock for this process's life, once (see
    ``lock_state_dir``). The command line takes it before the audio kernels
    load or compile, so that ``livesound stop`` and a second engine see an
    engine from its first second; the engine process asks again when it
    starts and keeps the lock it has."""
    key = folder.resolve()
    if key not in _held:
        _held[key] = lock_state_dir(folder)


def state_dir_locked(folder: Path) -> bool:
    """Whether an engine holds ``folder`` now."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

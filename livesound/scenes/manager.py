"""Recalling scenes into the live show: scope, safes, fades, cues, autosave.

The manager has no clock of its own: callers pass ``now`` in seconds. The
engine passes the wall clock (monotonic), so fades and autosave go on while
the audio device is gone; an offline render may pass its audio clock.
"""

import contextlib
import logging
import re
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from livesound.audio.layout import GAIN_RAMP_S
from livesound.control.events import SCENE
from livesound.control.mixer import Mixer, Prepared
from livesound.control.registry import Param
from livesound.scenes import autosave as generations
from livesound.scenes import files
from livesound.scenes.files import FADED_GROUPS, GROUPS, Scene, SceneError, Scope
from livesound.scenes.storage import Storage, keep_aside

log = logging.getLogger("livesound.scenes")

AUTOSAVE_EVERY_S = 2.0
# A ready scene is derived again ahead of time once this many values were
# changed live since (its recall would derive them again otherwise).
REFRESH_TOUCHED = 64
CUE_FILE = "cuelist.toml"
SAFES_FILE = "safes.toml"


def reserved(name: str) -> str | None:
    """What the file of a scene called ``name`` would collide with (the cue
    list, the recall safes, an autosave generation), else None. The state
    folder may be the scene folder; case is ignored for file systems that
    ignore it."""
    file = f"{name}.toml".lower()
    if file == CUE_FILE:
        return "the cue list"
    if file == SAFES_FILE:
        return "the recall safes"
    if any(
        file == generations.path_of(Path(), n).name
        for n in range(generations.GENERATIONS)
    ):
        return "an autosave"
    return None


@dataclass
class Safes:
    """Strips and parameter groups that no recall touches."""

    strips: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)

    def protects(self, param: Param) -> bool:
        return param.group in self.groups or param.strip.name in self.strips


@dataclass
class Ready:
    """A scene read and derived ahead of its recall, with the file's stamp
    and the recall safes it was derived under (either changed: stale)."""

    scene: Scene
    stamp: tuple[int, int]
    safes: tuple
    prepared: Prepared
    at_once: dict[str, Any]
    faded: dict[str, Any]


def _stamp(path: Path) -> tuple[int, int]:
    """A file's modification time and size (0, 0 when it is gone)."""
    try:
        st = path.stat()
    except OSError:
        return 0, 0
    return st.st_mtime_ns, st.st_size


@dataclass
class Fade:
    """Values moving from ``start`` to ``end`` (X32 0..1 fader law), landing
    on the scene's own values at the end."""

    begin: float
    duration: float
    moves: dict[str, tuple[float, float]]
    targets: dict[str, Any]


class SceneManager:
    """Scenes in a folder, recalled into a Mixer."""

    def __init__(
        self,
        mixer: Mixer,
        folder: Path,
        state_dir: Path | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.mixer = mixer
        self.registry = mixer.registry
        self.folder = Path(folder)
        self.state_dir = state_dir
        self.safes = Safes()
        self.storage = storage or Storage()
        self.fades: list[Fade] = []
        self.cue_index = -1
        # Told the scene's name after every recall and restore (undo's barrier).
        self.recalled: list[Callable[[str], None]] = []
        self.current: str | None = None
        self._saved_changes = mixer.changes
        self._saved_at = 0.0
        # Every scene of the folder read and derived ahead (``prepare_all``),
        # so a recall by name lands as fast as GO.
        self._readies: dict[str, Ready] = {}
        self._ready_lock = threading.Lock()
        self._refresher: threading.Thread | None = None
        self._refresh_again = False
        self._load_safes()
        files.remove_stale_temps(self.folder)
        if state_dir is not None:
            files.remove_stale_temps(state_dir)

    # -- files --------------------------------------------------------------

    def path(self, name: str) -> Path:
        """The file of scene ``name`` (names are file names, minus .toml)."""
        if not re.fullmatch(r"[\w][\w .+-]{0,63}", name):
            raise SceneError(
                f"scene name {name!r}: letters, digits, space . + - _ only"
            )
        taken = reserved(name)
        if taken is not None:
            raise SceneError(
                f"scene name {name!r} is reserved (its file would overwrite "
                f"{taken}): choose another name"
            )
        return self.folder / f"{name}.toml"

    def names(self) -> list[str]:
        """Every scene in the folder, sorted (the show's own files left out)."""
        if not self.folder.is_dir():
            return []
        return sorted(
            p.stem for p in self.folder.glob("*.toml") if not reserved(p.stem)
        )

    def load(self, name: str) -> Scene:
        path = self.path(name)
        if not path.exists():
            raise SceneError(f"no scene {name!r} in {self.folder}")
        scene = files.load(self.registry, path)
        scene.name = name  # the file is the scene, whatever a copy says inside
        return scene

    def save(self, name: str, scope: Scope | None = None, fade_s: float = 0.0,
             notes: str | None = None) -> Path:  # fmt: skip
        """Store the live show (what ``scope`` covers) as scene ``name``; a
        scene saved over keeps its notes unless ``notes`` is given."""
        scene = files.capture(self.registry, self.mixer.snapshot(), name,
                              scope or Scope(), fade_s)  # fmt: skip
        path = self.path(name)
        if notes is None and path.exists():
            with contextlib.suppress(SceneError):
                notes = files.load(self.registry, path).notes
        scene.notes = notes or ""
        text = files.to_toml(self.registry, scene)
        # A failed save stays pending and is retried: a scene once saved
        # is never lost to a full disk.
        self.storage.run(path, lambda: files.write_atomic(path, text), keep=True)
        return path

    def set_notes(self, name: str, notes: str) -> None:
        """Give scene ``name`` the note ``notes`` (its values untouched)."""
        if len(notes) > files.MAX_NOTES:
            raise SceneError(f"a note is at most {files.MAX_NOTES} characters")
        scene = self.load(name)
        scene.notes = notes
        path = self.path(name)
        text = files.to_toml(self.registry, scene)
        self.storage.run(path, lambda: files.write_atomic(path, text), keep=True)

    def rename(self, old: str, new: str) -> None:
        src, dst = self.path(old), self.path(new)
        if not src.exists():
            raise SceneError(f"no scene {old!r}")
        if dst.exists():
            raise SceneError(f"scene {new!r} exists already")
        scene = files.load(self.registry, src)
        scene.name = new
        text = files.to_toml(self.registry, scene)
        self.storage.run(dst, lambda: files.write_atomic(dst, text))
        try:
            self.storage.run(src, src.unlink)
        except SceneError:
            dst.unlink(missing_ok=True)  # refused: leave the folder as it was
            raise

    def delete(self, name: str) -> None:
        path = self.path(name)
        if not path.exists():
            raise SceneError(f"no scene {name!r}")
        self.storage.run(path, path.unlink)

    def check_files(self) -> None:
        """At start: keep every scene file and the cue list that cannot be
        read as TOML aside (logged with file and line), so the show runs
        without them. Scenes that only refuse values stay: recalling one
        says why."""
        for name in self.names():
            path = self.folder / f"{name}.toml"
            try:
                files.check(path)
            except SceneError as exc:
                self._set_aside(path, exc)
        try:
            self.cues()
        except SceneError as exc:
            self._set_aside(self.folder / CUE_FILE, exc)

    def _set_aside(self, path: Path, problem: object) -> None:
        kept = keep_aside(path)
        log.warning(
            "%s; kept aside as %s", problem, kept.name if kept else "(in place)"
        )

    # -- recall ---------------------------------------------------------------

    def _split(self, scene: Scene) -> tuple[dict[str, Any], dict[str, Any]]:
        """What a recall sets at once and what it fades (scope and safes applied)."""
        at_once: dict[str, Any] = {}
        faded: dict[str, Any] = {}
        for address, value in scene.values.items():
            param = self.registry[address]
            if not scene.scope.covers(param) or self.safes.protects(param):
                continue
            if (
                scene.fade_s > 0
                and param.group in FADED_GROUPS
                and param.taper == "fader"
            ):
                faded[address] = value
            else:
                at_once[address] = value
        return at_once, faded

    def prepare(self, name: str) -> None:
        """Read and derive scene ``name`` now, so recalling it later lands in
        the next audio block."""
        stamp = _stamp(self.path(name))
        scene = self.load(name)
        at_once, faded = self._split(scene)
        ready = Ready(scene, stamp, self._safes_key(), self.mixer.prepare(at_once),
                      at_once, faded)  # fmt: skip
        with self._ready_lock:
            old = self._readies.pop(name, None)
            self._readies[name] = ready
        if old is not None:
            self.mixer.discard(old.prepared)

    def prepare_all(self) -> None:
        """Make every scene ready whose file, recall safes or live changes
        since make its prepared set stale: the next cue first. A broken
        file is only logged (recalling it says why)."""
        names = self.names()
        first = self.next_cue()
        for name in sorted(names, key=lambda n: n != first):
            if self._fresh(name) is None:
                try:
                    self.prepare(name)
                except SceneError as exc:
                    log.warning("scene %s not prepared: %s", name, exc)
        with self._ready_lock:
            gone = [n for n in self._readies if n not in names]
            dropped = [self._readies.pop(n) for n in gone]
        for ready in dropped:
            self.mixer.discard(ready.prepared)

    def refresh(self) -> None:
        """``prepare_all`` on a thread of its own, off the request path: one
        at a time, and once more after it when asked again meanwhile."""
        with self._ready_lock:
            self._refresh_again = True
            if self._refresher is None:
                self._refresher = threading.Thread(target=self._refresh_loop,
                                                   name="scene-prepare", daemon=True)  # fmt: skip
                self._refresher.start()

    def _refresh_loop(self) -> None:
        while True:
            with self._ready_lock:
                if not self._refresh_again:
                    self._refresher = None
                    return
                self._refresh_again = False
            self.prepare_all()

    def _fresh(self, name: str) -> Ready | None:
        """Scene ``name``'s ready set if it still holds (same file, same
        safes, not too much changed live since), else None."""
        ready = self._readies.get(name)
        if (
            ready is None
            or ready.stamp != _stamp(self.folder / f"{name}.toml")
            or ready.safes != self._safes_key()
            or len(ready.prepared.touched) > REFRESH_TOUCHED
        ):
            return None
        return ready

    def _take_ready(self, name: str) -> Ready | None:
        """Scene ``name``'s ready set, taken for its recall (its prepared set
        is used up by it); None if there is none or it is stale (a changed
        file or changed safes: the recall reads the file again)."""
        with self._ready_lock:
            ready = self._readies.get(name)
            if ready is None:
                return None
            del self._readies[name]
        if (
            ready.stamp == _stamp(self.folder / f"{name}.toml")
            and ready.safes == self._safes_key()
        ):
            return ready
        self.mixer.discard(ready.prepared)
        return None

    def _safes_key(self) -> tuple:
        return tuple(sorted(self.safes.strips)), tuple(sorted(self.safes.groups))

    def recall(self, scene: Scene | str, now: float) -> dict[str, Any]:
        """Apply a scene: everything but fades in one change set.

        Values outside the scene's scope or protected by a recall safe are
        left alone. With a fade time, faders and send levels move from
        where they are to the scene's values over that time (``tick``);
        everything else switches at once. A scene made ready by
        ``prepare`` lands without deriving anything. Returns what changed
        at once.
        """
        ready = None
        if isinstance(scene, str):
            ready = self._take_ready(scene)
            scene = ready.scene if ready is not None else self.load(scene)
        at_once, faded = (ready.at_once, ready.faded) if ready else self._split(scene)
        try:
            cues = self.cues()
        except SceneError as exc:
            # The scene itself is fine: it is recalled, only its cue
            # position is unknown.
            log.warning("cue position not updated: %s", exc)
            cues = []
        get = self.mixer.get
        moves = {a: (self.registry[a].to_norm(get(a)), self.registry[a].to_norm(v))
                 for a, v in faded.items()}  # fmt: skip
        # A new recall takes over whatever an older fade was still moving.
        for fade in self.fades:
            for address in list(fade.moves):
                if address in moves or address in at_once:
                    del fade.moves[address]
        # Derived now if it was not ready: either way it lands as a GO.
        prepared = ready.prepared if ready else self.mixer.prepare(at_once)
        changed = self.mixer.apply(prepared, source=SCENE)
        if moves:
            # The audio plane ramps every fader step over GAIN_RAMP_S: end
            # the steps that much early so the sound arrives at the fade time.
            duration = max(0.0, scene.fade_s - GAIN_RAMP_S)
            self.fades.append(Fade(now, duration, moves, faded))
        self.current = scene.name
        if scene.name in cues:
            self.cue_index = cues.index(scene.name)
        log.info("recalled %s: %d changed at once, %d fading over %.1f s", scene.name,
                 len(changed), len(moves), scene.fade_s)  # fmt: skip
        for tell in self.recalled:
            tell(scene.name)
        return changed

    def tick(self, now: float) -> None:
        """Advance running fades to ``now`` (call every block or every ~10 ms)."""
        if not self.fades:
            return
        changes: dict[str, Any] = {}
        for fade in self.fades:
            x = (
                1.0
                if fade.duration <= 0
                else min(1.0, (now - fade.begin) / fade.duration)
            )
            for address, (a, b) in fade.moves.items():
                param = self.registry[address]
                value = param.from_norm(a + (b - a) * x)
                changes[address] = fade.targets[address] if x >= 1.0 else value
        self.fades = [f for f in self.fades if now < f.begin + f.duration and f.moves]
        changes = {a: self.registry[a].validate(v) for a, v in changes.items()}
        if changes:
            self.mixer.set_many(changes, source=SCENE)

    # -- cue list ---------------------------------------------------------------

    def cues(self) -> list[str]:
        """The show's scenes in order (``cuelist.toml``: ``cues = [...]``)."""
        path = self.folder / CUE_FILE
        if not path.exists():
            return self.names()
        try:
            cues = tomllib.loads(files.read_text(path)).get("cues", [])
        except tomllib.TOMLDecodeError as exc:
            raise SceneError(f"{path}: {exc}") from None
        if not isinstance(cues, list) or not all(isinstance(c, str) for c in cues):
            raise SceneError(f'{path}: write cues = ["scene", ...]')
        return cues

    def go(self, now: float, step: int = 1) -> str:
        """Recall the next (or, with ``step=-1``, previous) cue; returns its name."""
        cues = self.cues()
        if not cues:
            raise SceneError("the cue list is empty")
        index = min(max(self.cue_index + step, 0), len(cues) - 1)
        self.recall(cues[index], now)
        self.cue_index = index
        return cues[index]

    def next_cue(self) -> str | None:
        """The cue after the current one; None at the end or when the cue
        list cannot be read (GO says why)."""
        try:
            cues = self.cues()
        except SceneError:
            return None
        return cues[self.cue_index + 1] if self.cue_index + 1 < len(cues) else None

    # -- recall safes -------------------------------------------------------------

    def set_safe(self, item: str, safe: bool) -> None:
        """Make a strip (``ch.07``) or a group (``eq``) safe from recalls, or not.

        Safes belong to the show, not to a scene: they are kept with the
        autosave state and survive a restart.
        """
        known = {p.strip.name for p in self.registry}
        safes = Safes(set(self.safes.strips), set(self.safes.groups))
        if item in GROUPS:
            target = safes.groups
        elif item in known:
            target = safes.strips
        else:
            raise SceneError(f"{item!r} is neither a strip (ch.01, bus.03, main) "
                             f"nor a group ({', '.join(GROUPS)})")  # fmt: skip
        if safe:
            target.add(item)
        else:
            target.discard(item)
        self._save_safes(safes)  # refused if it cannot be kept: nothing changes
        self.safes = safes

    def _safes_path(self) -> Path | None:
        return self.state_dir / SAFES_FILE if self.state_dir else None

    def _save_safes(self, safes: Safes) -> None:
        path = self._safes_path()
        if path is not None:
            text = tomli_w.dumps({"strips": sorted(safes.strips),
                                  "groups": sorted(safes.groups)})  # fmt: skip
            self.storage.run(path, lambda: files.write_atomic(path, text))

    def _load_safes(self) -> None:
        path = self._safes_path()
        if path is None or not path.exists():
            return
        try:
            data = tomllib.loads(files.read_text(path))
            strips, groups = data.get("strips", []), data.get("groups", [])
            if not all(isinstance(x, str) for x in [*strips, *groups]):
                raise SceneError(f'{path}: write strips = ["ch.07"], groups = ["eq"]')
            self.safes = Safes(set(strips), set(groups))
        except (SceneError, tomllib.TOMLDecodeError, TypeError) as exc:
            self._set_aside(path, f"recall safes not restored from {path}: {exc}")

    # -- autosave ---------------------------------------------------------------

    @property
    def autosave_path(self) -> Path | None:
        return generations.path_of(self.state_dir, 0) if self.state_dir else None

    def autosave(self, now: float) -> bool:
        """Save the whole show if it changed, at most every few seconds.

        A failed autosave is a storage fault, retried by ``storage.retry``
        (with the show as it is then) until it succeeds."""
        path = self.autosave_path
        if path is None or self.mixer.changes == self._saved_changes:
            return False
        if now - self._saved_at < AUTOSAVE_EVERY_S or path in self.storage.pending:
            return False
        self._saved_at = now
        self.refresh()  # ready scenes whose values changed live go stale
        try:
            self.storage.run(path, self._write_autosave, keep=True)
        except SceneError:
            return False
        return True

    def _write_autosave(self) -> None:
        changes = self.mixer.changes
        scene = files.capture(self.registry, self.mixer.snapshot(), "autosave", Scope())
        generations.write(self.state_dir, files.to_toml(self.registry, scene))
        self._saved_changes = changes

    def restore(self) -> generations.Generation | None:
        """Bring back the newest autosave that reads after a restart; returns
        that generation (None if none). Unreadable ones are kept aside; in a
        file with some bad values every valid value is restored and each
        refused one logged (file:line: key)."""
        if self.state_dir is None:
            return None
        for gen in generations.generations(self.state_dir):
            try:
                self.load_generation(gen.n)
            except SceneError as exc:
                self._set_aside(gen.path, exc)
                continue
            self._saved_changes = self.mixer.changes
            return gen
        return None

    def load_generation(self, n: int) -> list[str]:
        """Apply autosave generation ``n`` to the live show; returns the
        refused values (each also logged)."""
        path = generations.path_of(self.state_dir, n) if self.state_dir else None
        if path is None or not 0 <= n < generations.GENERATIONS or not path.exists():
            raise SceneError(f"no autosave generation {n}")
        scene, refused = files.parse_partial(
            self.registry, files.read_text(path), str(path)
        )
        for problem in refused:
            log.warning("autosave value not restored: %s", problem)
        self.mixer.set_many(scene.values, source=SCENE)
        for tell in self.recalled:
            tell(path.name)
        return refused

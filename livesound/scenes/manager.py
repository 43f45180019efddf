"""Recalling scenes into the live show: scope, safes, fades, cues, autosave.

The manager has no clock of its own: callers pass ``now`` in seconds of
the audio clock (frames processed / sample rate), so a fade in an offline
render lands exactly where it would live.
"""

import logging
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from livesound.control.mixer import Mixer, Prepared
from livesound.scenes import files
from livesound.scenes.files import FADED_GROUPS, GROUPS, Scene, SceneError, Scope

log = logging.getLogger("livesound.scenes")

AUTOSAVE_EVERY_S = 2.0
GAIN_RAMP_S = 0.010  # the audio plane's gain ramp (layout.G_GAIN_RAMP)
CUE_FILE = "cuelist.toml"
SOURCE = "scene"


@dataclass
class Safes:
    """Strips and parameter groups that no recall touches."""

    strips: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)

    def protects(self, address: str, group: str) -> bool:
        return group in self.groups or files.strip_of(address) in self.strips


@dataclass
class Ready:
    """A scene read and derived ahead of its recall."""

    scene: Scene
    safes: tuple
    prepared: Prepared
    at_once: dict[str, Any]
    faded: dict[str, Any]


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
        self, mixer: Mixer, folder: Path, state_dir: Path | None = None
    ) -> None:
        self.mixer = mixer
        self.registry = mixer.registry
        self.folder = Path(folder)
        self.state_dir = state_dir
        self.safes = Safes()
        self.fades: list[Fade] = []
        self.cue_index = -1
        self.current: str | None = None
        self._saved_changes = mixer.changes
        self._saved_at = 0.0
        self._ready: Ready | None = None
        self._load_safes()
        # Temp files of saves that a crash interrupted (never *.toml).
        if self.folder.is_dir():
            for stale in self.folder.glob(".*.toml.*.tmp"):
                stale.unlink(missing_ok=True)

    # -- files --------------------------------------------------------------

    def path(self, name: str) -> Path:
        """The file of scene ``name`` (names are file names, minus .toml)."""
        if not re.fullmatch(r"[\w][\w .+-]{0,63}", name):
            raise SceneError(
                f"scene name {name!r}: letters, digits, space . + - _ only"
            )
        return self.folder / f"{name}.toml"

    def names(self) -> list[str]:
        """Every scene in the folder, sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.toml") if p.name != CUE_FILE)

    def load(self, name: str) -> Scene:
        path = self.path(name)
        if not path.exists():
            raise SceneError(f"no scene {name!r} in {self.folder}")
        scene = files.load(self.registry, path)
        scene.name = name  # the file is the scene, whatever a copy says inside
        return scene

    def save(self, name: str, scope: Scope | None = None, fade_s: float = 0.0) -> Path:
        """Store the live show (what ``scope`` covers) as scene ``name``."""
        scene = files.capture(self.registry, self.mixer.snapshot(), name,
                              scope or Scope(), fade_s)  # fmt: skip
        path = self.path(name)
        files.save(self.registry, scene, path)
        return path

    def rename(self, old: str, new: str) -> None:
        src, dst = self.path(old), self.path(new)
        if not src.exists():
            raise SceneError(f"no scene {old!r}")
        if dst.exists():
            raise SceneError(f"scene {new!r} exists already")
        scene = files.load(self.registry, src)
        scene.name = new
        files.save(self.registry, scene, dst)
        src.unlink()

    def delete(self, name: str) -> None:
        path = self.path(name)
        if not path.exists():
            raise SceneError(f"no scene {name!r}")
        path.unlink()

    # -- recall ---------------------------------------------------------------

    def _split(self, scene: Scene) -> tuple[dict[str, Any], dict[str, Any]]:
        """What a recall sets at once and what it fades (scope and safes applied)."""
        at_once: dict[str, Any] = {}
        faded: dict[str, Any] = {}
        for address, value in scene.values.items():
            param = self.registry[address]
            if not scene.scope.covers(param) or self.safes.protects(
                address, param.group
            ):
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
        the next audio block (the engine prepares the next cue)."""
        if self._ready is not None:
            self.mixer.discard(self._ready.prepared)
            self._ready = None
        scene = self.load(name)
        at_once, faded = self._split(scene)
        prepared = self.mixer.prepare(at_once)
        self._ready = Ready(scene, self._safes_key(), prepared, at_once, faded)

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
        ready = self._ready
        if isinstance(scene, str):
            if ready and ready.scene.name == scene and ready.safes == self._safes_key():
                scene = ready.scene
            else:
                scene = self.load(scene)
        if ready is not None and ready.scene is not scene:
            ready = None
        at_once, faded = (ready.at_once, ready.faded) if ready else self._split(scene)
        get = self.mixer.get
        moves = {a: (self.registry[a].to_norm(get(a)), self.registry[a].to_norm(v))
                 for a, v in faded.items()}  # fmt: skip
        # A new recall takes over whatever an older fade was still moving.
        for fade in self.fades:
            for address in list(fade.moves):
                if address in moves or address in at_once:
                    del fade.moves[address]
        if ready is not None:
            self._ready = None
            changed = self.mixer.apply(ready.prepared, source=SOURCE)
        else:
            changed = {a: v for a, v in at_once.items() if get(a) != v}
            self.mixer.set_many(changed, source=SOURCE)
        if moves:
            # The audio plane ramps every fader step over GAIN_RAMP_S: end
            # the steps that much early so the sound arrives at the fade time.
            duration = max(0.0, scene.fade_s - GAIN_RAMP_S)
            self.fades.append(Fade(now, duration, moves, faded))
        self.current = scene.name
        cues = self.cues()
        if scene.name in cues:
            self.cue_index = cues.index(scene.name)
        log.info("recalled %s: %d changed at once, %d fading over %.1f s", scene.name,
                 len(changed), len(moves), scene.fade_s)  # fmt: skip
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
            self.mixer.set_many(changes, source=SOURCE)

    # -- cue list ---------------------------------------------------------------

    def cues(self) -> list[str]:
        """The show's scenes in order (``cuelist.toml``: ``cues = [...]``)."""
        path = self.folder / CUE_FILE
        if not path.exists():
            return self.names()
        try:
            cues = tomllib.loads(path.read_text()).get("cues", [])
        except (OSError, tomllib.TOMLDecodeError) as exc:
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

    def prepare_next(self) -> None:
        """Make the next cue ready (see ``prepare``); a broken file is only logged."""
        name = self.next_cue()
        if name is not None:
            try:
                self.prepare(name)
            except SceneError as exc:
                log.warning("next cue not prepared: %s", exc)

    def next_cue(self) -> str | None:
        cues = self.cues()
        return cues[self.cue_index + 1] if self.cue_index + 1 < len(cues) else None

    # -- recall safes -------------------------------------------------------------

    def set_safe(self, item: str, safe: bool) -> None:
        """Make a strip (``ch.07``) or a group (``eq``) safe from recalls, or not.

        Safes belong to the show, not to a scene: they are kept with the
        autosave state and survive a restart.
        """
        known = {files.strip_of(p.address) for p in self.registry}
        if item in GROUPS:
            target = self.safes.groups
        elif item in known:
            target = self.safes.strips
        else:
            raise SceneError(f"{item!r} is neither a strip (ch.01, bus.03, main) "
                             f"nor a group ({', '.join(GROUPS)})")  # fmt: skip
        if safe:
            target.add(item)
        else:
            target.discard(item)
        self._save_safes()

    def _safes_path(self) -> Path | None:
        return self.state_dir / "safes.toml" if self.state_dir else None

    def _save_safes(self) -> None:
        path = self._safes_path()
        if path is not None:
            text = tomli_w.dumps({"strips": sorted(self.safes.strips),
                                  "groups": sorted(self.safes.groups)})  # fmt: skip
            files.write_atomic(path, text)

    def _load_safes(self) -> None:
        path = self._safes_path()
        if path is None or not path.exists():
            return
        try:
            data = tomllib.loads(path.read_text())
            self.safes = Safes(set(data.get("strips", [])), set(data.get("groups", [])))
        except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
            log.warning("recall safes not restored from %s: %s", path, exc)

    # -- autosave ---------------------------------------------------------------

    @property
    def autosave_path(self) -> Path | None:
        return self.state_dir / "autosave.toml" if self.state_dir else None

    def autosave(self, now: float) -> bool:
        """Save the whole show if it changed, at most every few seconds."""
        path = self.autosave_path
        if path is None or self.mixer.changes == self._saved_changes:
            return False
        if now - self._saved_at < AUTOSAVE_EVERY_S:
            return False
        scene = files.capture(self.registry, self.mixer.snapshot(), "autosave", Scope())
        files.save(self.registry, scene, path)
        self._saved_changes, self._saved_at = self.mixer.changes, now
        return True

    def restore(self) -> bool:
        """Bring back the autosaved show after a restart; False if none."""
        path = self.autosave_path
        if path is None or not path.exists():
            return False
        try:
            scene = files.load(self.registry, path)
        except SceneError as exc:
            # Keep it: the next autosave must not overwrite the only copy.
            kept = path.with_name(f"autosave-unrestored-{int(time.time())}.toml")
            path.replace(kept)
            log.warning("autosave not restored (kept as %s): %s", kept, exc)
            return False
        self.mixer.set_many(scene.values, source=SOURCE)
        self._saved_changes = self.mixer.changes
        return True


def parse_scope(strips: str | None, groups: str | None) -> Scope:
    """A scope from the command line: ``ch.01,bus.03`` and ``fader,mute``."""
    group_list = tuple(g.strip() for g in groups.split(",")) if groups else GROUPS
    bad = [g for g in group_list if g not in GROUPS]
    if bad:
        raise SceneError(f"unknown group {bad[0]!r}; groups are {', '.join(GROUPS)}")
    strip_list = tuple(s.strip() for s in strips.split(",")) if strips else None
    return Scope(strip_list, group_list)

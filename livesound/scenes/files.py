"""Scene files: TOML, human-readable, diff-friendly, written atomically.

A scene stores parameter values by strip and by the registry's scene key
(names carry units: ``fader_db``, ``eq.2.freq_hz``)::

    format = 1
    name = "Band"
    fade_s = 2.0

    [scope]
    strips = "all"                 # or ["ch.01", "bus.03", "main", ...]
    groups = ["fader", "mute", "sends", "eq"]

    [ch.01]
    fader_db = -4.0
    name = "Kick"

Only what the scope stores is written; keys are sorted, so a scene under
version control changes line by line with the show.
"""

import contextlib
import math
import os
import re
import stat
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from livesound.control.registry import Param, ParamError, Registry, Target

FORMAT = 1
GROUPS = ("config", "preamp", "eq", "delay", "dynamics", "mute", "fader", "routing",
          "solo", "sends", "osc", "limiter", "notches")  # fmt: skip
# Crossfaded over the scene's fade time; everything else switches at once.
FADED_GROUPS = ("fader", "sends")


class SceneError(ValueError):
    """A scene file refused; the message names the file, line and key."""


@dataclass
class Scope:
    """Which strips and which parameter groups a scene applies."""

    strips: tuple[str, ...] | None = None  # None: every strip
    groups: tuple[str, ...] = GROUPS

    def covers(self, param: Param) -> bool:
        if param.group not in self.groups or not param.key:
            return False
        return self.strips is None or param.strip.name in self.strips


@dataclass
class Scene:
    """A scene: values by address, plus its fade time and scope."""

    name: str
    values: dict[str, Any] = field(default_factory=dict)
    fade_s: float = 0.0
    scope: Scope = field(default_factory=Scope)
    notes: str = ""  # the engineer's note: what the scene is for, what to watch


MAX_NOTES = 2000  # characters of a scene's note


def capture(registry: Registry, values: dict[str, Any], name: str, scope: Scope,
            fade_s: float = 0.0) -> Scene:  # fmt: skip
    """A scene of what ``scope`` covers in the live ``values``.

    Fixed notches belong to the show; live ones to the moment the feedback
    suppressor placed them, so they are stored switched off.
    """
    stored = {p.address: values[p.address] for p in registry if scope.covers(p)}
    for address in stored:
        p = registry[address]
        if p.target is Target.NOTCH and p.key.endswith(".on"):
            fixed = registry.find(p.strip, p.key.removesuffix("on") + "fixed")
            if not values[fixed.address]:
                stored[address] = 0
    return Scene(name, stored, fade_s, scope)


def _file_value(param: Param, value: Any) -> Any:
    if param.kind == "enum":
        return param.choices[value]
    return value


def to_toml(registry: Registry, scene: Scene) -> str:
    """The scene file text: sorted, stable, only what the scope stores."""
    doc: dict[str, Any] = {"format": FORMAT, "name": scene.name, "fade_s": scene.fade_s}
    if scene.notes:
        doc["notes"] = scene.notes
    scope: dict[str, Any] = {"groups": sorted(scene.scope.groups)}
    scope["strips"] = (
        "all" if scene.scope.strips is None else sorted(scene.scope.strips)
    )
    doc["scope"] = scope
    for address, value in scene.values.items():
        param = registry[address]
        table = doc
        *path, leaf = [*param.strip.name.split("."), *param.key.split(".")]
        for part in path:
            table = table.setdefault(part, {})
        table[leaf] = _file_value(param, value)
    return tomli_w.dumps(_sorted(doc))


def _sorted(d: dict) -> dict:
    return {k: _sorted(v) if isinstance(v, dict) else v for k, v in sorted(d.items())}


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` so a crash leaves either the old file or the new one.

    Temp file in the same folder, fsync, rename over the target, fsync the
    folder: a power cut mid-save never leaves a truncated scene.
    """
    commit(write_temp(path, text), path)


def commit(tmp: str, path: Path) -> None:
    """Rename a ``write_temp`` file over ``path`` and fsync the folder."""
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def write_temp(path: Path, text: str) -> str:
    """``text`` fsynced in a temp file beside ``path`` (``.NAME.*.tmp``, which
    a start removes if a crash left it); returns the temp file's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600; a scene is an ordinary file of the show: keep
        # an existing file's mode, else what the umask gives a new file.
        umask = os.umask(0)
        os.umask(umask)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def remove_stale_temps(folder: Path) -> None:
    """Remove temp files of writes that a crash interrupted (never *.toml)."""
    if folder.is_dir():
        for stale in folder.glob(".*.toml.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


def _line_numbers(text: str) -> dict[str, int]:
    """The line of every dotted key path (table headers plus key), as far as
    a line-by-line reading finds them; only computed for an error."""
    lines: dict[str, int] = {}
    current = ""
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"\[\s*([^\]]+?)\s*\]$", stripped)
        if header:
            current = header.group(1).replace('"', "").replace(" ", "")
            continue
        key = stripped.split("=", 1)[0].strip().replace('"', "")
        if "=" in stripped:
            lines.setdefault(f"{current}.{key}" if current else key, n)
    return lines


def _where(source: str, text: str, path: str) -> str:
    """``file:line`` of the dotted ``path``, or just the file."""
    line = _line_numbers(text).get(path)
    return f"{source}:{line}" if line else source


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        path = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(_flatten(v, path))
        else:
            out[path] = v
    return out


def parse(registry: Registry, text: str, source: str = "<scene>") -> Scene:
    """A validated scene from file text; any problem raises ``SceneError``.

    Nothing is applied from a file with any error in it.
    """
    scene, refused = _parse(registry, text, source, strict=True)
    return scene


def parse_partial(
    registry: Registry, text: str, source: str = "<scene>"
) -> tuple[Scene, list[str]]:
    """A scene of every valid value in file text, and one ``file:line: key:
    why`` for each value refused; a file that is not a scene at all (not
    TOML, wrong format, bad header) raises ``SceneError``."""
    return _parse(registry, text, source, strict=False)


def check(path: Path) -> None:
    """Raise ``SceneError`` if a file cannot be read as TOML at all (the
    error names the line). Its values are not judged: a scene for a bigger
    engine or a newer livesound is not a broken file."""
    try:
        tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(f"{path}: not valid TOML: {exc}") from None


def _header(registry: Registry, text: str, source: str) -> tuple:
    """(name, fade, scope, notes, flattened values) of a scene file's text."""
    try:
        doc = tomllib.loads(text)
        flat = _flatten({k: v for k, v in doc.items() if k not in HEADER})
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SceneError(f"{source}: tables or arrays nested too deeply") from None
    version = doc.get("format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise SceneError(f"{source}: no `format = {FORMAT}` line: not a scene file")
    if version > FORMAT:
        raise SceneError(f"{source}: format {version} is newer than this livesound "
                         f"understands ({FORMAT}); upgrade livesound")  # fmt: skip
    doc = migrate(doc, version)
    name = doc.get("name", Path(source).stem)
    fade = doc.get("fade_s", 0.0)
    if not isinstance(name, str):
        raise SceneError(f"{_where(source, text, 'name')}: name must be text")
    if (
        isinstance(fade, bool)
        or not isinstance(fade, int | float)
        or not (0.0 <= fade <= 60.0 and math.isfinite(fade))
    ):
        raise SceneError(f"{_where(source, text, 'fade_s')}: fade_s is 0..60 seconds")
    notes = doc.get("notes", "")
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        raise SceneError(f"{_where(source, text, 'notes')}: notes are text of at most "
                         f"{MAX_NOTES} characters")  # fmt: skip
    scope = _parse_scope(registry, doc.get("scope", {}), source)
    return name, fade, scope, notes, flat


def _parse(
    registry: Registry, text: str, source: str, strict: bool
) -> tuple[Scene, list[str]]:
    name, fade, scope, notes, flat = _header(registry, text, source)
    lines: dict[str, int] | None = None

    def refuse(path: str, why: str) -> None:
        nonlocal lines
        if strict:
            raise SceneError(f"{_where(source, text, path)}: {why}")
        lines = _line_numbers(text) if lines is None else lines
        where = f"{source}:{lines[path]}" if path in lines else source
        refused.append(f"{where}: {why}")

    by_key = {(p.strip.name, p.key): p for p in registry if p.key}
    values: dict[str, Any] = {}
    refused: list[str] = []
    for path, raw in flat.items():
        param, strip, key = None, "", path
        parts = path.split(".")
        for split in range(1, len(parts)):
            strip, key = ".".join(parts[:split]), ".".join(parts[split:])
            param = by_key.get((strip, key))
            if param is not None:
                break
        if param is None:
            refuse(path, f"unknown parameter {path}")
            continue
        try:
            values[param.address] = param.validate(raw)
        except ParamError as exc:
            refuse(path, f"{path}: {exc}")
    return Scene(str(name), values, float(fade), scope, notes), refused


HEADER = ("format", "name", "fade_s", "scope", "notes")


def _parse_scope(registry: Registry, raw: Any, source: str) -> Scope:
    if not isinstance(raw, dict):
        raise SceneError(f"{source}: [scope] must be a table")
    strips = raw.get("strips", "all")
    groups = raw.get("groups", list(GROUPS))
    if not isinstance(groups, list) or any(g not in GROUPS for g in groups):
        raise SceneError(f"{source}: scope groups are some of {', '.join(GROUPS)}")
    if strips == "all":
        return Scope(None, tuple(groups))
    if not isinstance(strips, list) or not all(isinstance(s, str) for s in strips):
        raise SceneError(f'{source}: scope strips is "all" or a list like ["ch.01"]')
    known = {p.strip.name for p in registry}
    unknown = [s for s in strips if s not in known]
    if unknown:
        raise SceneError(f"{source}: scope names no strip {unknown[0]!r} "
                         "(strips look like ch.01, bus.03, main)")  # fmt: skip
    return Scope(tuple(strips), tuple(groups))


def migrate(doc: dict, version: int) -> dict:
    """Bring an older scene format up to date (format 0: no scope table)."""
    if version < 1:
        doc.setdefault("scope", {"strips": "all", "groups": list(GROUPS)})
    return doc


def read_text(path: Path) -> str:
    """A scene file's text; unreadable or not UTF-8 raises ``SceneError``."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(f"{path}: cannot read: {exc}") from None


def load(registry: Registry, path: Path) -> Scene:
    """Read and validate a scene file."""
    return parse(registry, read_text(path), str(path))


def save(registry: Registry, scene: Scene, path: Path) -> None:
    write_atomic(Path(path), to_toml(registry, scene))


def diff(registry: Registry, a: dict[str, Any], b: dict[str, Any]) -> list[tuple]:
    """``(address, value in a, value in b)`` wherever two shows differ, in
    registry order; a value only one side stores shows as ``-``."""
    rows = []
    for p in registry:
        left, right = a.get(p.address, "-"), b.get(p.address, "-")
        if not _same(p, left, right):
            rows.append((p.address, _shown(p, left), _shown(p, right)))
    return rows


def _same(param: Param, a: Any, b: Any) -> bool:
    """Equal, floats within what an OSC round trip (float32) preserves, and
    any fader at or below -90 dB the same as off."""
    if isinstance(a, float) and isinstance(b, float):
        if param.taper == "fader" and a <= -90.0 and b <= -90.0:
            return True
        return a == b or math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    return a == b


def _shown(param: Param, value: Any) -> str:
    if value == "-":
        return "-"
    if param.kind == "enum":
        return param.choices[value]
    if param.kind == "float":
        return f"{value:g} {param.unit}".rstrip()
    return str(value)

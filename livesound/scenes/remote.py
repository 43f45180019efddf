"""Scenes over OSC: our ``/ls/scene/...`` commands and the X32 scene action.

| address | arguments | does |
|---|---|---|
| `/ls/scene/recall` | `,s name` | recall a scene (replies `/ls/scene/current`) |
| `/ls/scene/save` | `,s name [,f fade_s]` | store the live show as a scene |
| `/ls/scene/go`, `/ls/scene/back` | | next / previous cue of the cue list |
| `/ls/scene/list` | | replies `/ls/scene/list ,s...` with every scene |
| `/ls/scene/current` | | replies `/ls/scene/current ,ss current next` |
| `/ls/scene/rename` | `,ss old new` | rename a scene file |
| `/ls/scene/delete` | `,s name` | delete a scene file |
| `/ls/scene/safe` | `,si item 0/1` | make a strip (`ch.07`) or group (`eq`) recall-safe |
| `/ls/scene/safes` | | replies `/ls/scene/safes ,s...` with every safe |
| `/-action/goscene` | `,i N` or `,s "N"` | X32: recall scene N of the list (0-based) |
| `/ls/state/restore` | `,i N` | load autosave generation N (0 = newest) into the show |
| `/ls/status/storage` | | replies `,s` the storage fault ("" when clear); pushed to `/xremote` subscribers when it changes |

Every `/ls/` command is answered: its reply, or `/ls/error ,ss address
reason` (a write that failed says why: disk full, read-only, permission
denied); `/-action/goscene` refuses quietly, as the X32, unless the client
asked for errors. A refused command changes nothing in the show.

The X32's show addresses answer from the scene list: `/-show/showfile/show/name`
(the scene folder's name), `/-show/showfile/scene/NNN/name` and `/hasdata`
(scene NNN of the list, the `goscene` number) and `/-show/prepos/current`
(the current scene's number, -1 for none), which is also pushed to `/xremote`
subscribers on every recall, as X32 scene-watching tools expect.
"""

import functools
from collections.abc import Callable

from livesound.osc.server import OscServer
from livesound.osc.x32tree import SHOW_SLOTS
from livesound.scenes.files import SceneError
from livesound.scenes.manager import SceneManager
from livesound.scenes.storage import describe

STORAGE_STATUS = "/ls/status/storage"
PREPOS = "/-show/prepos/current"


def _slot_name(scenes: SceneManager, k: int) -> str:
    names = scenes.names()
    return names[k] if k < len(names) else ""


def _slot_used(scenes: SceneManager, k: int) -> int:
    return int(k < len(scenes.names()))


def _text(args: list, count: int = 1) -> list[str]:
    if len(args) < count or not all(isinstance(a, str) for a in args[:count]):
        raise SceneError(f"takes {count} scene name(s) as strings")
    return args[:count]


def _answered(handler: Callable[[list], list[tuple]]) -> Callable[[list], list[tuple]]:
    """A handler whose file errors become error replies, never silence."""

    def run(args: list) -> list[tuple]:
        try:
            return handler(args)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise SceneError(f"{describe(exc)}{where}") from None

    return run


def register(
    server: OscServer, scenes: SceneManager, clock: Callable[[], float]
) -> None:
    """Serve the scene commands on ``server``; ``clock`` gives the fades'
    time (the engine's wall clock)."""

    def current() -> list[tuple]:
        return [("/ls/scene/current", scenes.current or "", scenes.next_cue() or "")]

    def current_number() -> int:
        names = scenes.names()
        return names.index(scenes.current) if scenes.current in names else -1

    def after_recall() -> list[tuple]:
        server.push(PREPOS, current_number())
        return current()

    def recall(args: list) -> list[tuple]:
        scenes.recall(_text(args)[0], clock())
        return after_recall()

    def save(args: list) -> list[tuple]:
        name = _text(args)[0]
        fade = (
            float(args[1])
            if len(args) > 1 and isinstance(args[1], int | float)
            else 0.0
        )
        if not 0.0 <= fade <= 60.0:
            raise SceneError("fade time is 0..60 s")
        scenes.save(name, fade_s=fade)
        return [("/ls/scene/saved", name)]

    def go(step: int) -> Callable[[list], list[tuple]]:
        def run(args: list) -> list[tuple]:
            scenes.go(clock(), step)
            return after_recall()

        return run

    def goscene(args: list) -> list[tuple]:
        names = scenes.names()
        # X32 clients send the number as an int or as a string ("1").
        number = args[0] if len(args) == 1 else None
        if isinstance(number, str) and number.strip().isdigit():
            number = int(number)
        if not isinstance(number, int) or not 0 <= number < len(names):
            raise SceneError(f"takes a scene number 0..{len(names) - 1}")
        scenes.recall(names[number], clock())
        return after_recall()

    def note(args: list) -> list[tuple]:
        name = _text(args)[0]
        return [("/ls/scene/note", name, scenes.load(name).notes)]

    def set_note(args: list) -> list[tuple]:
        if len(args) != 2 or not all(isinstance(a, str) for a in args):
            raise SceneError("takes a scene name and the note, ,ss NAME TEXT")
        scenes.set_notes(args[0], args[1])
        return [("/ls/scene/note", args[0], args[1])]

    def rename(args: list) -> list[tuple]:
        old, new = _text(args, 2)
        scenes.rename(old, new)
        return [("/ls/scene/list", *scenes.names())]

    def delete(args: list) -> list[tuple]:
        scenes.delete(_text(args)[0])
        return [("/ls/scene/list", *scenes.names())]

    def safe(args: list) -> list[tuple]:
        if (
            len(args) != 2
            or not isinstance(args[0], str)
            or not isinstance(args[1], int)
        ):
            raise SceneError("takes a strip or group name and 0/1, e.g. ,si ch.07 1")
        scenes.set_safe(args[0], bool(args[1]))
        return safes(args)

    def safes(args: list) -> list[tuple]:
        items = sorted(scenes.safes.strips) + sorted(scenes.safes.groups)
        return [("/ls/scene/safes", *items)]

    def restore(args: list) -> list[tuple]:
        if len(args) != 1 or not isinstance(args[0], int):
            raise SceneError("takes an autosave generation number, e.g. ,i 1")
        refused = scenes.load_generation(args[0])
        return [("/ls/state/restore", args[0], len(refused))]

    def storage(args: list) -> list[tuple]:
        return [(STORAGE_STATUS, scenes.storage.status())]

    commands = {
        "/ls/scene/safe": safe, "/ls/scene/recall": recall, "/ls/scene/save": save,
        "/ls/scene/go": go(1), "/ls/scene/back": go(-1), "/ls/scene/rename": rename,
        "/ls/scene/delete": delete, "/-action/goscene": goscene,
        "/ls/state/restore": restore, "/ls/scene/note/set": set_note,
    }  # fmt: skip
    queries = {
        "/ls/scene/safes": safes,
        "/ls/scene/list": lambda a: [("/ls/scene/list", *scenes.names())],
        "/ls/scene/current": lambda a: current(),
        "/ls/scene/note": note,
        STORAGE_STATUS: storage,
    }

    def refreshing(handler: Callable[[list], list[tuple]]) -> Callable:
        def run(args: list) -> list[tuple]:
            answer = handler(args)
            scenes.refresh()  # a file, the safes or the show changed
            return answer

        return run

    for address, handler in commands.items():
        server.add_command(address, _answered(refreshing(handler)))
    for address, handler in queries.items():
        server.add_command(address, _answered(handler), write=False)
    server.provide(PREPOS, current_number)
    server.provide("/-show/showfile/show/name", lambda: scenes.folder.name)
    for k in range(SHOW_SLOTS):
        slot = f"/-show/showfile/scene/{k:03d}"
        server.provide(f"{slot}/name", functools.partial(_slot_name, scenes, k))
        server.provide(f"{slot}/hasdata", functools.partial(_slot_used, scenes, k))
    scenes.storage.listeners.append(lambda text: server.push(STORAGE_STATUS, text))
    server.add_stats(
        "storage", lambda: scenes.storage.fault and scenes.storage.fault.report()
    )

"""The X32's whole parameter tree, laid over livesound's registry.

X32 apps and client libraries read the console's whole tree when they
connect and keep the last reply per address, so every address of an X32
must answer with a value of the X32's type. Where livesound has the
concept, the registry answers. Every other address of the X32's tree
answers with the X32's default and takes writes without effect, marked
``COMPAT``: a concept livesound does not have, such as FX returns, tape,
bus dynamics, or a bus feeding the main (livesound's buses are monitor
mixes).

The tree also knows the X32's nodes (``/node ,s ch/01/mix``): the leaves of
each node in the X32's field order, and how each field is printed. The
facts (addresses, types, field order and text formats) follow the
unofficial X32/M32 OSC protocol document and scene files saved by X32s.
"""

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

from livesound.control.registry import X32_COLORS as COLORS
from livesound.control.registry import Param, Registry, Strip, StripKind

X32_STRIP = Strip(StripKind.X32, 0)  # what a compatibility address belongs to

COMPAT = "X32 compatibility, no effect"
LIVE = (
    (r"/-stat/solo", "1 while any channel is soloed (pushed on every solo change)"),
    (r"/-stat/selidx", "the strip a surface selected: kept and pushed to the others"),
    (r"/-prefs/name", "the console's name"),
    (r"/-prefs/ip/addr/\d", "the console's IPv4 address, byte by byte"),
    (r"/-show/prepos/current", "the current scene's number (-1 for none); pushed "
     "on every recall"),
    (r"/-show/showfile/show/name", "the scene folder's name"),
    (r"/-show/showfile/scene/\d{3}/(name|hasdata)", "scene NNN of the scene list "
     "(the /-action/goscene number)"),
)  # fmt: skip
"""X32 addresses that answer livesound's own state (address pattern, what
they hold); read-only but ``/-stat/selidx``."""

EQ_TYPES_X32 = ("LCut", "LShv", "PEQ", "VEQ", "HShv", "HCut", "BU6", "BU12",
                "BS12", "LR12", "BU18", "BU24", "BS24", "LR24")  # fmt: skip
SEND_TYPES = ("IN/LC", "<-EQ", "EQ->", "PRE", "POST", "GRP")
GATE_MODES = ("EXP2", "EXP3", "EXP4", "GATE", "DUCK")
DYN_RATIOS = ("1.1", "1.3", "1.5", "2.0", "2.5", "3.0", "4.0", "5.0", "7.0", "10",
              "20", "100")  # fmt: skip
FILTER_TYPES = ("LC6", "LC12", "HC6", "HC12", "1.0", "2.0", "3.0", "5.0", "10.0")
INSERT_SEL = ("OFF", "FX1L", "FX1R", "FX2L", "FX2R", "FX3L", "FX3R", "FX4L", "FX4R",
              "FX5L", "FX5R", "FX6L", "FX6R", "FX7L", "FX7R", "FX8L", "FX8R", "AUX1",
              "AUX2", "AUX3", "AUX4", "AUX5", "AUX6")  # fmt: skip
SELIDX = tuple(
    [f"Ch{c:02d}" for c in range(1, 33)] + [f"Aux{c}" for c in range(1, 9)]
    + [f"Fx{k}{s}" for k in range(1, 5) for s in "LR"]
    + [f"Bus{b}" if b < 10 else f"Bs{b}" for b in range(1, 17)]
    + [f"Mtx{m}" for m in range(1, 7)] + ["LR", "M/C"]
)  # fmt: skip
"""``/-stat/selidx``: the selected strip, by index (0 = Ch01 ... 71 = M/C)."""


@dataclass(frozen=True)
class Spec:
    """A leaf of the X32's tree without its address: its type, its X32
    default (engineering units) and how ``/node`` prints it (``fmt``)."""

    kind: str
    default: Any
    fmt: str
    lo: float = 0.0
    hi: float = 1.0
    unit: str = ""
    taper: str = "lin"
    choices: tuple[str, ...] = ()


def _on(default: int = 0) -> Spec:
    return Spec("int", default, "onoff")


def _enum(choices: tuple[str, ...], default: int | str = 0) -> Spec:
    index = choices.index(default) if isinstance(default, str) else default
    return Spec("enum", index, "enum", choices=choices)


def _int(default: int = 0, lo: int = 0, hi: int = 1 << 30, fmt: str = "int") -> Spec:
    return Spec("int", default, fmt, lo, hi)


def _lin(default: float, lo: float, hi: float, fmt: str, unit: str = "") -> Spec:
    return Spec("float", default, fmt, lo, hi, unit)


def _log(default: float, lo: float, hi: float, fmt: str, unit: str = "") -> Spec:
    return Spec("float", default, fmt, lo, hi, unit, "log")


def _level(default: float = -math.inf) -> Spec:
    return Spec("float", default, "level", -90.0, 10.0, "dB", "fader")


_STR = Spec("str", "", "str")
_BITS8, _BITS6 = _int(0, 0, 255, "bits8"), _int(0, 0, 63, "bits6")
_PAN = _lin(0.0, -100.0, 100.0, "pan")

# Node layouts: node name -> [(leaf, spec)] in the X32's field order.
Layout = list[tuple[str, Spec]]


def _config(color: str, source: int | None = None) -> Layout:
    fields = [("name", _STR), ("icon", _int(1, 1, 74)), ("color", _enum(COLORS, color))]
    return fields + ([("source", _int(source, 0, 64))] if source is not None else [])


def _dyn() -> dict[str, Layout]:
    return {
        "dyn": [("on", _on()), ("mode", _enum(("COMP", "EXP"))),
                ("det", _enum(("PEAK", "RMS"), 1)), ("env", _enum(("LIN", "LOG"), 1)),
                ("thr", _lin(0.0, -60.0, 0.0, "db1", "dB")),
                ("ratio", _enum(DYN_RATIOS, "3.0")),
                ("knee", _lin(1.0, 0.0, 5.0, "lin0", "dB")),
                ("mgain", _lin(0.0, 0.0, 24.0, "db2", "dB")),
                ("attack", _lin(10.0, 0.0, 120.0, "lin0", "ms")),
                ("hold", _log(10.0, 0.02, 2000.0, "ms", "ms")),
                ("release", _log(151.0, 5.0, 4000.0, "ms", "ms")),
                ("pos", _enum(("PRE", "POST"), 1)), ("keysrc", _int(0, 0, 64)),
                ("mix", _lin(100.0, 0.0, 100.0, "lin0", "%")), ("auto", _on())],
        "dyn/filter": _filter(),
        "insert": [("on", _on()), ("pos", _enum(("PRE", "POST"), 1)),
                   ("sel", _enum(INSERT_SEL))],
    }  # fmt: skip


def _filter() -> Layout:
    return [("on", _on()), ("type", _enum(FILTER_TYPES, "3.0")),
            ("f", _log(990.9, 20.0, 20000.0, "freq", "Hz"))]  # fmt: skip


def _eq(bands: int, types: tuple[str, ...]) -> dict[str, Layout]:
    shapes = ("PEQ", "PEQ", "PEQ", "HShv") if bands == 4 else (
        "LCut", "PEQ", "PEQ", "PEQ", "PEQ", "HCut")  # fmt: skip
    freqs = (124.7, 496.6, 1970.0, 10020.0) if bands == 4 else (
        20.0, 124.7, 496.6, 1970.0, 10020.0, 20000.0)  # fmt: skip
    layout: dict[str, Layout] = {"eq": [("on", _on(1))]}
    for k in range(bands):
        layout[f"eq/{k + 1}"] = [
            ("type", _enum(types, shapes[k])),
            ("f", _log(freqs[k], 20.0, 20000.0, "freq", "Hz")),
            ("g", _lin(0.0, -15.0, 15.0, "sdb2", "dB")),
            ("q", _log(2.0, 10.0, 0.3, "q")),
        ]
    return layout


def _sends(count: int, on: int = 1) -> dict[str, Layout]:
    """Sends ``mix/01``..: odd ones carry pan, tap and pan-follow."""
    layout: dict[str, Layout] = {}
    for k in range(1, count + 1):
        fields = [("on", _on(on)), ("level", _level())]
        if k % 2:
            fields += [("pan", _PAN), ("type", _enum(SEND_TYPES, "POST")),
                       ("panFollow", _int(0, 0, 1))]  # fmt: skip
        layout[f"mix/{k:02d}"] = fields
    return layout


def _strip_mix(st: int = 1) -> Layout:
    return [("on", _on(1)), ("fader", _level()), ("st", _on(st)), ("pan", _PAN),
            ("mono", _on()), ("mlevel", _level())]  # fmt: skip


def _grp() -> dict[str, Layout]:
    return {"grp": [("dca", _BITS8), ("mute", _BITS6)]}


def _channel(n: int) -> dict[str, Layout]:
    return {
        "config": _config("YE", n),
        **_grp(),
        "preamp": [("trim", _lin(0.0, -18.0, 18.0, "sdb1", "dB")), ("invert", _on()),
                   ("hpon", _on()), ("hpslope", _enum(("12", "18", "24"), "24")),
                   ("hpf", _log(101.0, 20.0, 400.0, "hpf", "Hz"))],
        "delay": [("on", _on()), ("time", _log(0.3, 0.3, 500.0, "time", "ms"))],
        "gate": [("on", _on()), ("mode", _enum(GATE_MODES, "GATE")),
                 ("thr", _lin(-80.0, -80.0, 0.0, "db1", "dB")),
                 ("range", _lin(60.0, 3.0, 60.0, "db1", "dB")),
                 ("attack", _lin(0.0, 0.0, 120.0, "lin0", "ms")),
                 ("hold", _log(7.0, 0.02, 2000.0, "ms", "ms")),
                 ("release", _log(199.0, 5.0, 4000.0, "ms", "ms")),
                 ("keysrc", _int(0, 0, 64))],
        "gate/filter": _filter(),
        **_dyn(),
        **_eq(4, EQ_TYPES_X32[:6]),
        "mix": _strip_mix(),
        **_sends(16),
        "automix": [("group", _enum(("OFF", "X", "Y"))),
                    ("weight", _lin(0.0, -12.0, 12.0, "sdb1", "dB"))],
    }  # fmt: skip


def _auxin(n: int) -> dict[str, Layout]:
    return {
        "config": _config("GN", 32 + n),
        "preamp": [("trim", _lin(0.0, -18.0, 18.0, "sdb1", "dB")), ("invert", _on())],
        **_eq(4, EQ_TYPES_X32[:6]),
        "mix": _strip_mix(),
        **_sends(16),
        **_grp(),
    }


def _fxrtn(n: int) -> dict[str, Layout]:
    return {"config": _config("MG"), **_eq(4, EQ_TYPES_X32[:6]), "mix": _strip_mix(),
            **_sends(16), **_grp()}  # fmt: skip


def _bus(n: int) -> dict[str, Layout]:
    # livesound's buses are monitor mixes: they never feed the main (st OFF).
    return {"config": _config("CY"), **_dyn(), **_eq(6, EQ_TYPES_X32),
            "mix": _strip_mix(st=0), **_sends(6), **_grp()}  # fmt: skip


def _mtx(n: int) -> dict[str, Layout]:
    return {"config": _config("WH"), "preamp": [("invert", _on())], **_dyn(),
            **_eq(6, EQ_TYPES_X32), "mix": [("on", _on(1)), ("fader", _level())],
            **_grp()}  # fmt: skip


def _main(mix: Layout) -> dict[str, Layout]:
    return {"config": _config("WH"), **_dyn(), **_eq(6, EQ_TYPES_X32), "mix": mix,
            **_sends(6), **_grp()}  # fmt: skip


def _config_tree() -> dict[str, Layout]:
    def links(n: int) -> Layout:
        return [(f"{k}-{k + 1}", _on()) for k in range(1, n, 2)]

    return {
        "chlink": links(32), "auxlink": links(8), "fxlink": links(8),
        "buslink": links(16), "mtxlink": links(6),
        "mute": [(str(k), _on()) for k in range(1, 7)],
        "linkcfg": [("hadly", _on()), ("eq", _on()), ("dyn", _on()),
                    ("fdrmute", _on())],
        "mono": [("mode", _enum(("LR+M", "LCR"))), ("link", _on())],
        "solo": [("level", _level(0.0)),
                 ("source", _enum(("OFF", "LR", "LR+C", "LRPFL", "LRAFL", "AUX56",
                                   "AUX78"), "LR")),
                 ("sourcetrim", _lin(0.0, -18.0, 18.0, "sdb1", "dB")),
                 ("chmode", _enum(("PFL", "AFL"))), ("busmode", _enum(("PFL", "AFL"))),
                 ("dcamode", _enum(("PFL", "AFL"))), ("exclusive", _on()),
                 ("followsel", _on()), ("followsolo", _on()),
                 ("dimatt", _lin(-40.0, -40.0, 0.0, "sdb1", "dB")), ("dim", _on()),
                 ("mono", _on()), ("delay", _on()),
                 ("delaytime", _lin(0.3, 0.3, 500.0, "time", "ms")),
                 ("masterctrl", _on()), ("mute", _on()), ("dimpfl", _on())],
        "talk": [("enable", _on()), ("source", _enum(("INT", "EXT")))],
        "talk/A": [("level", _level()), ("dim", _on()), ("latch", _on()),
                   ("destmap", _int(0, 0, 1 << 18))],
        "talk/B": [("level", _level()), ("dim", _on()), ("latch", _on()),
                   ("destmap", _int(0, 0, 1 << 18))],
        "osc": [("level", _lin(-20.0, -60.0, 0.0, "sdb1", "dB")),
                ("f1", _log(1000.0, 20.0, 20000.0, "freq", "Hz")),
                ("f2", _log(100.0, 20.0, 20000.0, "freq", "Hz")),
                ("fsel", _enum(("F1", "F2"))),
                ("type", _enum(("SINE", "PINK", "WHITE"))), ("dest", _int(0, 0, 25))],
        "tape": [("gainL", _lin(0.0, -6.0, 24.0, "sdb1", "dB")),
                 ("gainR", _lin(0.0, -6.0, 24.0, "sdb1", "dB")), ("autoplay", _on())],
        "amixenable": [("X", _on()), ("Y", _on())],
    }  # fmt: skip


def _stat_tree() -> dict[str, Layout]:
    pages = {"CHAN": 7, "METER": 6, "ROUTE": 10, "SETUP": 9, "LIB": 3, "FX": 9,
             "MON": 3, "USB": 2, "SCENE": 5, "ASSIGN": 4}  # fmt: skip
    tree: dict[str, Layout] = {
        "": [("selidx", _enum(SELIDX)), ("chfaderbank", _int(0, 0, 4)),
             ("grpfaderbank", _int(0, 0, 4)), ("sendsonfader", _on()),
             ("bussendbank", _int(0, 0, 5)), ("eqband", _int(0, 0, 6)), ("solo", _on()),
             ("keysolo", _on()), ("userbank", _int(0, 0, 2)), ("autosave", _on()),
             ("lock", _int(0, 0, 2)), ("usbmounted", _on()), ("remote", _on()),
             ("rtamodeeq", _enum(("BAR", "SPEC"))),
             ("rtamodegeq", _enum(("BAR", "SPEC"))), ("rtaeqpre", _on()),
             ("rtageqpost", _on()), ("rtasource", _int(0, 0, 127)),
             ("xcardtype", _int(0, 0, 15)), ("xcardsync", _on()), ("geqonfdr", _on()),
             ("geqpos", _int(0, 0, 32)), ("dcaspill", _int(0, 0, 8))],
        "screen": [("screen", _int(0, 0, 9)), ("mutegrp", _on()), ("utils", _on())],
        "tape": [("state", _int(0, 0, 6)), ("file", _STR),
                 ("etime", _int(0, 0, 1 << 30)), ("rtime", _int(0, 0, 1 << 30))],
        "osc": [("on", _on())],
        "talk": [("A", _on()), ("B", _on())],
        "solosw": [(f"{k:02d}", _on()) for k in range(1, 81)],
        "urec": [("state", _int(0, 0, 6)), ("etime", _int(0, 0, 1 << 30)),
                 ("rtime", _int(0, 0, 1 << 30))],
    }  # fmt: skip
    for page, count in pages.items():
        tree[f"screen/{page}"] = [("page", _int(0, 0, count - 1))]
    return tree


def _prefs_tree() -> dict[str, Layout]:
    tree: dict[str, Layout] = {
        "": [("style", _STR), ("bright", _lin(100.0, 10.0, 100.0, "lin0", "%")),
             ("lcdcont", _lin(50.0, 0.0, 100.0, "lin0", "%")),
             ("ledbright", _lin(50.0, 10.0, 100.0, "lin0", "%")),
             ("lamp", _lin(50.0, 10.0, 100.0, "lin0", "%")), ("lampon", _on()),
             ("clockrate", _enum(("48K", "44K1"))),
             ("clocksource", _enum(("INT", "AES50A", "AES50B", "Exp Card"))),
             ("confirm_general", _on(1)), ("confirm_overwrite", _on(1)),
             ("confirm_sceneload", _on(1)), ("viewrtn", _on()),
             ("selfollowsbank", _on()), ("scene_advance", _on()),
             ("safe_masterlevels", _on()), ("haflags", _int(0, 0, 255)),
             ("autosel", _on()),
             ("show_control", _enum(("CUES", "SCENES", "SNIPPETS"), "SCENES")),
             ("clockmode", _enum(("24h", "12h"))), ("hardmute", _on()),
             ("dcamute", _on()), ("invertmutes", _enum(("NORM", "INV"))),
             ("name", _STR), ("rec_control", _enum(("USB", "XLIVE")))],
        "remote": [("enable", _on()), ("protocol", _enum(("MC", "HUI", "CC"))),
                   ("port", _enum(("MIDI", "CARD", "RTP"))), ("ioenable", _int(0, 0, 63))],
        "card": [("UFifc", _int(0, 0, 5)), ("UFmode", _int(0, 0, 3)),
                 ("USBmode", _int(0, 0, 5)), ("ADATwc", _int(0, 0, 1)),
                 ("ADATsync", _int(0, 0, 4)), ("MADImode", _int(0, 0, 1)),
                 ("MADIin", _int(0, 0, 4)), ("MADIout", _int(0, 0, 5)),
                 ("MADIsrc", _int(0, 0, 3)), ("URECtracks", _int(0, 0, 2)),
                 ("URECplayb", _int(0, 0, 1)), ("URECrout", _int(0, 0, 2)),
                 ("URECsdsel", _int(0, 0, 1))],
        "rta": [("visibility", _int(0, 0, 12)), ("gain", _lin(0.0, 0.0, 60.0, "lin0")),
                ("autogain", _on()), ("source", _int(0, 0, 127)),
                ("pos", _enum(("PRE", "POST"))), ("mode", _enum(("BAR", "SPEC"))),
                ("options", _int(0, 0, 63)), ("det", _enum(("RMS", "PEAK"))),
                ("decay", _log(1.0, 0.25, 16.0, "db2", "s")),
                ("peakhold", _int(0, 0, 8))],
        "ip": [("dhcp", _on())],
        "key": [("layout", _int(0, 0, 1))] + [(f"{k:02d}", _STR) for k in range(100)],
    }  # fmt: skip
    for part in ("addr", "mask", "gateway"):
        tree[f"ip/{part}"] = [(str(k), _int(0, 0, 255)) for k in range(4)]
    for k in range(1, 17):
        tree[f"iQ/{k:02d}"] = [
            (
                "iQmodel",
                _enum(("none", "iQ8", "iQ10", "iQ12", "iQ15", "iQ15B", "iQ18B")),
            ),
            ("iQeqset", _enum(("Linear", "Live", "Speech", "Playback", "User"))),
            ("iQsound", _int(0, 0, 20)),
        ]
    return tree


SHOW_SLOTS = 100
"""Scene, cue and snippet slots of an X32 show (``000``..``099``)."""


def _show_tree() -> dict[str, Layout]:
    tree: dict[str, Layout] = {
        "prepos": [("current", _int(-1, -1, SHOW_SLOTS - 1))],
        "showfile/show": [("name", _STR)] + [
            (k, _int(0, 0, 1)) for k in ("inputs", "mxsends", "mxbuses", "console",
                                         "chan16", "chan32", "return", "buses",
                                         "lrmtxdca", "effects")],
    }  # fmt: skip
    for k in range(SHOW_SLOTS):
        tree[f"showfile/cue/{k:03d}"] = [
            ("numb", _int(0, 0, 9999)), ("name", _STR), ("skip", _on()),
            ("scene", _int(-1, -1, 99)), ("bit", _int(-1, -1, 99)),
            ("miditype", _int(0, 0, 4)), ("midichan", _int(0, 0, 15)),
            ("midipara1", _int(0, 0, 127)), ("midipara2", _int(0, 0, 127)),
        ]  # fmt: skip
        tree[f"showfile/scene/{k:03d}"] = [
            ("name", _STR), ("notes", _STR), ("safes", _int(0, 0, 511)),
            ("hasdata", _on()),
        ]  # fmt: skip
        tree[f"showfile/snippet/{k:03d}"] = [
            ("name", _STR), ("eventtyp", _int(0, 0, 1 << 30)),
            ("channels", _int(0, 0, 1 << 30)), ("auxbuses", _int(0, 0, 1 << 30)),
            ("maingrps", _int(0, 0, 1 << 30)), ("hasdata", _on()),
        ]  # fmt: skip
    return tree


def _sections() -> list[tuple[str, dict[str, Layout]]]:
    """Every node of the X32's tree: (node path, its leaves)."""
    out: list[tuple[str, dict[str, Layout]]] = []
    out += [(f"/ch/{n:02d}", _channel(n)) for n in range(1, 33)]
    out += [(f"/auxin/{n:02d}", _auxin(n)) for n in range(1, 9)]
    out += [(f"/fxrtn/{n:02d}", _fxrtn(n)) for n in range(1, 9)]
    out += [(f"/bus/{n:02d}", _bus(n)) for n in range(1, 17)]
    out += [(f"/mtx/{n:02d}", _mtx(n)) for n in range(1, 7)]
    out.append(("/main/st", _main([("on", _on(1)), ("fader", _level()),
                                   ("pan", _PAN)])))  # fmt: skip
    out.append(("/main/m", _main([("on", _on(1)), ("fader", _level())])))
    for n in range(1, 9):
        out.append((f"/dca/{n}", {"": [("on", _on(1)), ("fader", _level())],
                                  "config": _config("YE")}))  # fmt: skip
    out += [(f"/headamp/{n:03d}",
             {"": [("gain", _lin(0.0, -12.0, 60.0, "sdb1", "dB")), ("phantom", _on())]})
            for n in range(128)]  # fmt: skip
    out += [("/config", _config_tree()), ("/-stat", _stat_tree()),
            ("/-prefs", _prefs_tree()), ("/-show", _show_tree())]  # fmt: skip
    return out


def _in_show(address: str, n_in: int, n_bus: int) -> bool:
    """Whether a strip address exists in a show of this size: the X32's
    channels, buses, sends and solo switches beyond the show's are not
    there (a client learns the show's size from which ones answer)."""
    parts = address.split("/")
    head = parts[1]
    if head in ("ch", "bus") and int(parts[2]) > (n_in if head == "ch" else n_bus):
        return False
    if head in ("ch", "auxin", "fxrtn") and len(parts) > 4 and parts[3] == "mix":
        return not parts[4].isdigit() or int(parts[4]) <= n_bus
    if address.startswith("/-stat/solosw/"):
        return not n_in < int(parts[3]) <= 32
    if address.startswith("/config/buslink/"):
        return int(parts[3].split("-")[0]) < n_bus
    return True


class X32Tree:
    """The X32's addresses and nodes over ``registry``, for the strips the
    show has (its inputs, buses and their sends; an X32 has 32 and 16).

    ``params`` holds a ``Param`` for every X32 leaf the registry lacks, with
    the X32's default; ``nodes`` maps each node path to its leaf addresses
    in the X32's field order; ``fmt`` says how ``/node`` prints each leaf.
    """

    def __init__(self, registry: Registry) -> None:
        self.params: dict[str, Param] = {}
        self.nodes: dict[str, list[str]] = {}
        self.fmt: dict[str, str] = {}
        for prefix, layouts in _sections():
            for node, fields in layouts.items():
                path = f"{prefix}/{node}" if node else prefix
                leaves = []
                for leaf, spec in fields:
                    address = f"{path}/{leaf}"
                    if not _in_show(address, registry.n_in, registry.n_bus):
                        continue
                    leaves.append(address)
                    self.fmt[address] = spec.fmt
                    if address not in registry:
                        self.params[address] = self._param(address, spec)
                if leaves:
                    self.nodes[path] = leaves
        # A single leaf is a node of one field (``/node ,s ch/01/mix/fader``).
        for address in registry:
            self.fmt.setdefault(address.address, _fmt_of(address))

    @staticmethod
    def _param(address: str, spec: Spec) -> Param:
        live = (text for pattern, text in LIVE if re.fullmatch(pattern, address))
        doc = next(live, COMPAT)
        return Param(address, spec.kind, spec.default, X32_STRIP, spec.lo, spec.hi,
                     spec.unit, spec.taper, "x32", None, "", spec.choices, doc)  # fmt: skip

    def __contains__(self, address: str) -> bool:
        return address in self.params

    def leaves(self) -> list[str]:
        """Every leaf address of the X32's tree, in tree order."""
        return [a for leaves in self.nodes.values() for a in leaves]


@functools.cache
def _tree(n_in: int, n_bus: int, n_notch: int) -> X32Tree:
    return X32Tree(Registry(n_in, n_bus, n_notch))


def tree_for(registry: Registry) -> X32Tree:
    """The X32 tree over a registry of this shape (built once per shape)."""
    return _tree(registry.n_in, registry.n_bus, registry.n_notch)


def _fmt_of(param: Param) -> str:
    """How ``/node`` prints a registry parameter the X32 tree lacks."""
    if param.kind in ("str", "enum"):
        return param.kind
    if param.kind == "int":
        return "onoff" if param.hi == 1 else "int"
    return "level" if param.taper == "fader" else "g"

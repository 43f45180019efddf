"""The OSC address space as a generated Markdown reference (``livesound osc-map``).

Every row comes from the parameter registry, so the reference cannot drift
from what the server accepts. Addresses that differ only in their numbers
(32 channels, 16 sends, 16 notches, EQ bands) collapse into one row with
their numbers written as ranges: ``/ch/[01..32]/mix/[01..16]/level``.
"""

import re
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from livesound.control import taper
from livesound.control.registry import Param, Registry
from livesound.osc.x32tree import COMPAT, tree_for

# A numbered path segment: channel, bus, band or notch number, or a bus pair.
_INDEX = re.compile(r"\d+(?:-\d+)?")
# A value that varies along one index is listed per index up to this many.
_MAX_LISTED = 6

# Sections in print order; a parameter goes to the first whose prefix matches.
_SECTIONS = (
    ("Input channels", ("/ch/", "/-stat/solosw/")),
    ("Mix buses", ("/bus/", "/ls/bus/")),
    ("Mono bus and matrices", ("/main/m/", "/ls/main/m/", "/mtx/", "/ls/mtx/")),
    ("Main L/R", ("/main/", "/ls/main/")),
    ("DCAs and mute groups", ("/dca/", "/config/mute/")),
    ("Oscillator", ("/config/osc/", "/ls/osc/")),
    ("Routing and solo", ("/config/",)),
    ("Other", ("/",)),
)

_COLUMNS = (
    "address",
    "type",
    "range and unit",
    "OSC encoding",
    "default",
    "scene key",
    "notes",
)


def value_range(param: Param) -> str:
    """The range a parameter takes in engineering units, e.g. ``20..400 Hz``."""
    if param.kind == "str":
        return "0..32 printable characters"
    if param.kind == "enum":
        return f"{len(param.choices)} choices"
    if param.kind == "int":
        return f"{int(param.lo)}..{int(param.hi)}"
    lo, hi = sorted((param.lo, param.hi))
    text = f"{lo:g}..{hi:g} {param.unit}".rstrip()
    return f"off, {text}" if param.taper == "fader" else text


def osc_encoding(param: Param) -> str:
    """How a parameter travels in the X32 dialect, e.g. ``float 0..1, log 20..20000 Hz``."""
    if param.kind == "str":
        return "string"
    if param.kind == "enum":
        return f"int 0..{len(param.choices) - 1} (index)"
    if param.kind == "int":
        return f"int {int(param.lo)}..{int(param.hi)}"
    if param.taper == "fader":
        return "float 0..1, X32 fader law (0.75 = 0 dB, 0 = off)"
    # Log tapers may run high to low (EQ Q): print the ends in wire order.
    return f"float 0..1, {param.taper} {param.lo:g}..{param.hi:g} {param.unit}".rstrip()


def format_value(param: Param, value: Any) -> str:
    """A value in engineering units as an engineer reads it (``-6 dB``, ``PEQ``)."""
    if param.kind == "enum":
        return param.choices[value]
    if param.kind in ("int", "str"):
        return str(value)
    if param.accepts_off(value):
        return "off"
    return f"{value:g} {param.unit}".rstrip()


def notes(param: Param) -> str:
    """Enum choices by index, then the parameter's own documentation."""
    parts = []
    if param.kind == "enum":
        named = [f"{i} = {c}" for i, c in enumerate(param.choices)]
        # Long lists (the X32's 72 strips) by their ends.
        parts.append(", ".join(named if len(named) <= 24 else [*named[:3], "…",
                                                               named[-1]]))  # fmt: skip
    if param.doc:
        parts.append(param.doc)
    return "; ".join(parts)


def osc_map_markdown(registry: Registry) -> str:
    """The whole OSC address space of ``registry`` as a Markdown reference,
    then the X32 addresses livesound answers without a parameter of its own."""
    rows = _rows(registry)
    out = [_intro(registry)]
    for title, _ in _SECTIONS:
        section = [r for r in rows if _section(r[0][1].address) == title]
        if not section:
            continue
        out += [f"## {title}", "", _table_head()]
        out += [_table_row(members) for members in section]
        out.append("")
    tree = _rows(tree_for(registry).params.values())
    for title, text in _X32_SECTIONS:
        section = [r for r in tree if _x32_section(r[0][1].doc) == title]
        out += [f"## {title}", "", text, "", _table_head()]
        out += [_table_row(members) for members in section]
        out.append("")
    return "\n".join(out)


_X32_SECTIONS = (
    ("X32 addresses holding livesound's state",
     "X32 status and show addresses that answer from livesound: solo, the "
     "selected strip, the console's name and address, and the scene list."),
    ("X32 compatibility, no effect",
     f"X32 concepts livesound does not have (FX returns, aux inputs, inserts, "
     f"bus, main and matrix dynamics, buses feeding the main or the mono bus "
     f"(livesound's buses are monitor mixes), pan, tap and pan-follow of the "
     f"sends into the matrices (always post-fader, mono), matrix links, head "
     f"amps, tape, preferences, ...). Reads answer "
     f"the X32's default; writes are taken and have no effect (notes: "
     f"\"{COMPAT}\")."),
)  # fmt: skip


def _x32_section(doc: str) -> str:
    return _X32_SECTIONS[1][0] if doc == COMPAT else _X32_SECTIONS[0][0]


# -- grouping -----------------------------------------------------------------


def _split(address: str) -> tuple[tuple[str | None, ...], tuple[str, ...]]:
    """Address -> (template with ``None`` for each number, the numbers)."""
    segments = address.strip("/").split("/")
    template = tuple(None if _INDEX.fullmatch(s) else s for s in segments)
    return template, tuple(s for s in segments if _INDEX.fullmatch(s))


def _rows(params: Iterable[Param]) -> list[list[tuple[tuple[str, ...], Param]]]:
    """Parameters grouped by address template, in the order given."""
    groups: dict[tuple, list[tuple[tuple[str, ...], Param]]] = {}
    for p in params:
        template, numbers = _split(p.address)
        groups.setdefault(template, []).append((numbers, p))
    return list(groups.values())


def _section(address: str) -> str:
    return next(t for t, prefixes in _SECTIONS if address.startswith(prefixes))


def _span(values: list[str]) -> str:
    """The numbers one position takes: ``[01..32]``, ``[01,03..15]`` or ``01``."""
    ordered = sorted(set(values), key=lambda v: [int(n) for n in v.split("-")])
    if len(ordered) == 1:
        return ordered[0]
    nums = [[int(n) for n in v.split("-")] for v in ordered]
    steps = {tuple(b - a for a, b in zip(u, v, strict=True)) for u, v in pairwise(nums)}
    if len(ordered) >= 3 and len(steps) == 1:
        if steps == {(1,)}:
            return f"[{ordered[0]}..{ordered[-1]}]"
        return f"[{ordered[0]},{ordered[1]}..{ordered[-1]}]"
    return "[" + ",".join(ordered) + "]"


def _template_key(key: str, numbers: tuple[str, ...], spans: list[str]) -> str:
    """``send.05.level_db`` -> ``send.[01..16].level_db``.

    Scene keys repeat the innermost numbers of the address, so each number
    is matched from the right, and each key part is replaced once.
    """
    parts = key.split(".")
    done: set[int] = set()
    for k in reversed(range(len(numbers))):
        for j in reversed(range(len(parts))):
            if j not in done and parts[j] == numbers[k]:
                parts[j] = spans[k]
                done.add(j)
                break
    return ".".join(parts)


def _collapse(cells: list[str], numbers: list[tuple[str, ...]]) -> str:
    """One table cell for a group: the common text, or how it varies."""
    if len(set(cells)) == 1:
        return cells[0]
    for k in range(len(numbers[0])):
        by_number: dict[str, str] = {}
        pairs = zip(numbers, cells, strict=True)
        # The cell depends on number k alone, and there are few enough to list.
        if all(by_number.setdefault(n[k], c) == c for n, c in pairs) and (
            len(by_number) <= _MAX_LISTED
        ):
            return ", ".join(f"{n}: {c}" for n, c in by_number.items())
    return f"{cells[0]} … {cells[-1]}"


# -- rendering ----------------------------------------------------------------


def _cell(text: str) -> str:
    # A pipe would end the table cell.
    return text.replace("|", "\\|")


def _table_head() -> str:
    return "| " + " | ".join(_COLUMNS) + " |\n|" + "---|" * len(_COLUMNS)


def _table_row(members: list[tuple[tuple[str, ...], Param]]) -> str:
    numbers = [n for n, _ in members]
    params = [p for _, p in members]
    spans = [_span([n[k] for n in numbers]) for k in range(len(numbers[0]))]
    template, _ = _split(params[0].address)
    it = iter(spans)
    address = "/" + "/".join(s if s is not None else next(it) for s in template)
    first = params[0]
    cells = [
        f"`{address}`",
        first.kind,
        _collapse([value_range(p) for p in params], numbers),
        _collapse([osc_encoding(p) for p in params], numbers),
        _collapse([format_value(p, p.default) for p in params], numbers),
        _collapse([_template_key(p.key, n, spans) for n, p in members], numbers),
        _collapse([notes(p) for p in params], numbers),
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _fader_law_table() -> str:
    rows = ["| fader float | level |", "|---|---|", "| 0 | off (-inf) |"]
    for f in (0.0625, 0.25, 0.5, 0.75, 1.0):
        db = taper.fader_to_db(f)
        rows.append(f"| {f:g} | {db:+g} dB |" if db else f"| {f:g} | 0 dB |")
    return "\n".join(rows)


def _intro(registry: Registry) -> str:
    return f"""# livesound OSC reference

Generated by `livesound osc-map` from the parameter registry: {len(registry)}
parameters for a show with {registry.n_in} inputs, {registry.n_bus} mix buses
and {registry.n_notch} notches per output. Do not edit by hand.

## Dialect

livesound speaks the Behringer X32 OSC dialect wherever the X32 has the same
concept, so X32 tablet apps, templates and client libraries work unchanged.

- **Transport**: OSC 1.0 over UDP, port 10023 by default (the X32's).
  Replies and pushes go to the address and port the request came from.
- **Floats travel as 0..1.** Faders and send levels follow the X32 fader law,
  four straight segments with 0.75 = 0 dB (table below); every other float
  maps 0..1 linearly or logarithmically onto its range (column "OSC
  encoding"). A float outside 0..1 is refused, never clamped.
- **Ints** for switches (0 off, 1 on; `mix/on` 1 means *not muted*, as on
  the X32) and for enums (the index of a choice, listed under "notes"; the
  choice's name as a string is accepted too, e.g. `fbs/mode ,s off`). A
  whole float such as `1.0` is accepted where an int is expected.
- **Strings** for names.
- **Queries**: an address sent with no arguments is a query; the reply is
  the same address with the current value.
- `/xinfo` and `/status` identify the console (address, name), as on the X32.
- `/xremote` subscribes the sender to pushes of every change made by anyone
  else. A subscription lasts 10 s: send `/xremote` again about every 9 s.
  At least 32 clients can subscribe at once.
- `/meters ,s <bank> [args] [factor]` asks for periodic meter blobs (the
  X32 layout: an int32 count, then little-endian float32 values) for 10 s,
  one every 50 ms × factor (1..99); renew with `/renew ,s <bank>`. X32 banks
  `/meters/0`, `/1`, `/2`, `/5`, `/6` and `/13` with the X32's slot counts,
  `/ls/meters` every livesound meter in dB. `/subscribe`, `/formatsubscribe`
  and `/batchsubscribe` work as on the X32; `/unsubscribe` stops them.
- `/node ,s ch/01/mix` answers with a node's (or one leaf's) values as one
  line of text in the X32's format and field order.
- **The X32's whole tree answers**: the sections after livesound's own list
  the X32 addresses it answers without a parameter of its own: some hold
  livesound's state; the others answer the X32's default and take writes
  without effect ("X32 compatibility, no effect").
- **The mono bus and the matrices** are real: `/ch/NN/mix/mono|mlevel`
  feed `/main/m` post-fader (the X32's LR+M mode); `/bus/NN/mix/MM`,
  `/main/st/mix/MM` and `/main/m/mix/MM` (`on`, `level`) feed matrix MM
  after the source's EQ and fader, before its limiter and delay (a stereo
  source, the main or a linked bus pair, as (L+R)/√2). `/main/st/mix/pan`
  and a linked bus pair's odd-bus `/bus/NN/mix/pan` are a balance (0 dB at
  centre, constant-power on the side turned down); an unlinked bus's pan
  has no effect (livesound's buses feed no main).
- **`/ls/...`** holds what the X32 has no address for: output limiters,
  alignment delays, the feedback suppressor's notches, the oscillator
  switch, and livesound's own commands (`/ls/pair`, `/ls/stats`,
  `/ls/scene/...`, `/ls/state/restore ,i N`: load autosave generation N).
- `/ls/snapshot ,i ID` answers with the whole show a surface may read, in
  engineering units: `/ls/snapshot ,iiib ID PART COUNT BLOB` messages whose
  blobs, joined in order, are zlib-compressed JSON
  `{{"n_in", "n_bus", "values": {{address: value}}}}` (a 32x16 show: two
  parts). Only for clients the show lists or has paired (a large answer to
  a small request is not for unknown addresses).
- `/ls/pair ,s CODE` gives the sender's address the role of that pairing
  code (answered `/ls/pair ,s ROLE`). `/ls/pair/new ,si ROLE MINUTES`
  (engineer only; `livesound pair`) makes a random 6-digit code valid that
  long, answered `/ls/pair/new ,ssi CODE ROLE MINUTES`. 20 wrong codes
  within a minute, from all addresses together, close pairing for a
  minute: `/ls/status/pairing` answers `,s` `open` or why it is closed, is
  pushed to `/xremote` subscribers when it closes, and `/ls/stats` holds
  the same as `"pairing"`.
- `/ls/status/storage` answers `,s` the storage fault (for example
  `disk full: /var/state/autosave.toml`), empty when storage is fine; it is
  pushed to `/xremote` subscribers whenever it changes, like a parameter.
  `/ls/stats` holds the same fault as `"storage"` (fault, file, since).
- `/ls/status/audio` answers `,s` `AUDIO DEVICE LOST: <device>` (with
  `(playing on <fallback>)` while a fallback plays), empty while audio runs
  on its device; pushed the same way. `/ls/stats` holds it as `"audio"`
  (fault, device, since, fallback).
- **Errors**: a message that is refused (unknown address, wrong type tag,
  value out of range, or not allowed for the client's role) changes
  nothing. Like the X32, the server does not answer refusals of X32
  addresses; `/ls/...` requests, and every request of a client that sent
  `/ls/errors ,i 1`, are answered with `/ls/error ,ss <address> <reason>`.
  Malformed packets are dropped and counted.

What a client may change depends on the role the show gives it: the
engineer everything; the performer of mix N the sends into mix N, mix N's
master and EQ; a viewer nothing. With `/config/buslink/N-M` on, a write to
either half of the pair (sends on and level, bus fader, mute, EQ, limiter,
delay) lands on both, as on the X32, and the pair belongs to the performer
of its odd mix.

Limits per source host: 2000 messages/s with bursts of 500 (ten times that
for hosts the show lists as engineers). A host the show neither lists nor
paired is sent at most 4 bytes per byte it sends plus 2 KiB/s, and holds at
most 2 `/meters` streams and 2 `/xremote` subscriptions (unknown hosts
together at most half of the 64 slots).

### X32 fader law

{_fader_law_table()}

### Reading the tables

`[01..32]` stands for every number in the range, `[01,03..15]` for every
other one. "range and unit" is in engineering units, as the console shows
them and scene files hold them; "OSC encoding" is what travels on the wire;
"scene key" is the parameter's name in scene files. Where a default differs
along one number it is listed per number (`1: 100 Hz, 2: 250 Hz`).
"""

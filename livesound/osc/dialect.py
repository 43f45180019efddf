"""The X32 OSC dialect: how registry values travel as OSC arguments.

Floats travel as 0..1 on the parameter's taper (the X32 fader law for
faders and sends), switches and enums as ints, names as strings; an enum
also takes its value's name (``/ls/bus/01/fbs/mode ,s off``). Decoding
refuses anything else with a ``ParamError`` naming what was expected; it
never clamps a bad value into range. Whether a value is one the parameter
takes (range, length of a name) is the Mixer's to judge, once, for every
surface alike.
"""

import math
from typing import Any

from livesound.control.registry import Param, ParamError


def encode(param: Param, value: Any) -> tuple[str, Any]:
    """OSC type tag and argument for ``value`` of ``param``."""
    if param.kind == "float":
        return "f", float(param.to_norm(value))
    if param.kind == "str":
        return "s", str(value)
    return "i", int(value)


def decode(param: Param, args: list[Any]) -> Any:
    """The value one OSC argument asks ``param`` to take (engineering units),
    not yet validated: ``Mixer.set`` does that."""
    if len(args) != 1:
        raise ParamError(f"{param.address} takes one argument, got {len(args)}")
    arg = args[0]
    if param.kind == "str":
        if not isinstance(arg, str):
            raise ParamError(f"{param.address} takes a string")
        return arg
    if param.kind == "enum" and isinstance(arg, str):
        return arg  # the name of a choice ("off", "music", "PFL"): the Mixer checks it
    if isinstance(arg, bool) or not isinstance(arg, int | float):
        raise ParamError(f"{param.address} takes a number, got {type(arg).__name__}")
    if param.kind == "float":
        f = float(arg)
        if not (math.isfinite(f) and 0.0 <= f <= 1.0):
            raise ParamError(f"{param.address} takes a float 0..1, got {f}")
        return param.from_norm(f)
    # Switches and enums: ints; tablet apps often send 0.0/1.0 floats.
    if isinstance(arg, float) and not (math.isfinite(arg) and arg.is_integer()):
        raise ParamError(f"{param.address} takes a whole number, got {arg}")
    return int(arg)


def format_field(fmt: str, param: Param, value: Any) -> str:
    """One value as the X32's ``/node`` text prints it; ``fmt`` names the
    X32's format for that field (see ``x32tree``)."""
    if fmt == "str":
        return f'"{value}"'
    if fmt == "enum":
        return param.choices[value]
    if fmt == "onoff":
        return "ON" if value else "OFF"
    if fmt in ("bits8", "bits6"):
        return "%" + format(int(value), f"0{fmt[-1]}b")
    if fmt == "int":
        return str(int(value))
    return _NUMBER[fmt](float(value))


def _level(db: float) -> str:
    # Right-aligned in 5 characters, as the X32 prints faders and sends.
    if db == -math.inf or db <= -90.0:
        return "  -oo"
    return f"{db:+5.1f}" if round(db, 1) else "  0.0"


def _ms(ms: float) -> str:
    # Gate and compressor hold and release: precision by size, 4 wide.
    text = f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"
    return f"{text:>4}"


def _freq(hz: float) -> str:
    # Kilohertz with the k as the decimal point: 1k97, 10k02, 20k00.
    return f"{hz:.1f}" if hz < 1000 else f"{hz / 1000:.2f}".replace(".", "k")


_NUMBER = {
    "level": _level,
    "ms": _ms,
    "freq": _freq,
    "pan": lambda v: f"{round(v):+d}",
    "sdb1": lambda v: f"{v:+.1f}",
    "sdb2": lambda v: f"{v:+.2f}",
    "db1": lambda v: f"{v:.1f}",
    "db2": lambda v: f"{v:.2f}",
    "q": lambda v: f"{v:.1f}",
    "lin0": lambda v: f"{v:.0f}",
    "time": lambda v: f"{v:5.1f}",
    "hpf": lambda v: f"{v:3.0f}",
    "g": lambda v: f"{v:g}",
}

"""The X32 OSC dialect: how registry values travel as OSC arguments.

Floats travel as 0..1 on the parameter's taper (the X32 fader law for
faders and sends), switches and enums as ints, names as strings. Decoding
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


def format_node_value(param: Param, value: Any) -> str:
    """One value as the X32 ``/node`` text shows it."""
    if param.kind == "str":
        return f'"{value}"'
    if param.kind == "enum":
        return param.choices[value]
    if param.kind == "int":
        return ("ON" if value else "OFF") if param.hi == 1 else str(value)
    if param.taper == "fader":
        return "-oo" if value == -math.inf or value <= -90.0 else f"{value:+.1f}"
    return f"{value:g}"

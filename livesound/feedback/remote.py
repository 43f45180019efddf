"""The feedback suppressor over OSC (the console and tablets use the same).

Notches are ordinary parameters (``/ls/bus/NN/notch/KK/on|f|depth|width|fixed``
and the mode under ``.../fbs/``): read, push and set them like a fader;
pinning a notch is setting its ``fixed`` to 1, deleting it is ``on`` 0.

| address | arguments | does |
|---|---|---|
| `/ls/bus/NN/fbs/clear`, `/ls/main/st/fbs/clear` | | removes the output's live notches (replies `.../fbs/cleared ,i count`) |
| `/ls/bus/NN/fbs/spectrum`, `/ls/main/st/fbs/spectrum` | | replies with one blob: 96 float32 little-endian dB bands, 20 Hz-20 kHz log-spaced |
| `/ls/bus/NN/fbs/notches`, `/ls/main/st/fbs/notches` | | replies `,s` JSON: every occupied slot with frequency, depth, width, fixed |
| `/ls/bus/NN/afc/learn`, `/ls/main/st/afc/learn` (an output with `--afc` paths) | `,f seconds` (optional, 3) | its cancellers learn the path from white noise it plays at -20 dBFS for that long (replies `.../afc/learning ,i paths ,f seconds`); refused if its suppressor is not in mode `afc` |
"""

import json

from livesound.control.afcpaths import LEARN_S, AfcPaths
from livesound.control.registry import out_prefixes
from livesound.feedback.suppressor import Suppressor
from livesound.osc.server import OscServer


def _no_args(args: list) -> None:
    if args:
        raise ValueError("takes no arguments")


def register(server: OscServer, suppressor: Suppressor) -> None:
    """Serve the suppressor's commands for every output on ``server``."""
    for out in suppressor.outputs:
        prefix = out.prefix

        def clear(args: list, prefix: str = prefix) -> list[tuple]:
            _no_args(args)
            return [(f"{prefix}/fbs/cleared", suppressor.clear(prefix))]

        def spectrum(args: list, prefix: str = prefix) -> list[tuple]:
            _no_args(args)
            blob = suppressor.spectrum(prefix).astype("<f4").tobytes()
            return [(f"{prefix}/fbs/spectrum", blob)]

        def notches(args: list, prefix: str = prefix) -> list[tuple]:
            _no_args(args)
            return [(f"{prefix}/fbs/notches", json.dumps(suppressor.notches(prefix)))]

        server.add_command(f"{prefix}/fbs/clear", clear)
        server.add_command(f"{prefix}/fbs/spectrum", spectrum, write=False)
        server.add_command(f"{prefix}/fbs/notches", notches, write=False)


def register_afc(server: OscServer, paths: AfcPaths) -> None:
    """Serve ``.../afc/learn`` for every output a canceller feeds."""
    n_bus = paths.mixer.registry.n_bus
    by_prefix: dict[str, list[int]] = {}  # the main's two sides share one
    for output in sorted({o for _, o in paths.paths}):
        by_prefix.setdefault(out_prefixes(output, n_bus)[1], []).append(output)
    for prefix, outputs in by_prefix.items():

        def learn(args: list, outputs=tuple(outputs), prefix=prefix) -> list[tuple]:
            if len(args) > 1 or (args and not isinstance(args[0], int | float)):
                raise ValueError("takes one number: the seconds to learn for")
            seconds = float(args[0]) if args else LEARN_S
            count = sum(paths.learn(o, seconds) for o in outputs)
            return [(f"{prefix}/afc/learning", count, seconds)]

        server.add_command(f"{prefix}/afc/learn", learn)

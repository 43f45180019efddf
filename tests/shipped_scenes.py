"""Generate the shipped scenes in ``scenes/``:  python tests/shipped_scenes.py

Each show below is a dict of parameter values on top of the registry's
defaults for the reference console (32 inputs, 16 buses); the file is written
by ``files.save``, so it is in the exact, sorted format the engine writes.
Every scene covers every strip and every group but solo (a solo is the
engineer's listening, not the show): recalling one resets the whole console,
including channels the show does not use, and switches the oscillator off.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from livesound.control.registry import Registry
from livesound.scenes import files
from livesound.scenes.files import GROUPS, Scope

N_IN, N_BUS = 32, 16
OFF = -math.inf
SCENES = Path(__file__).resolve().parent.parent / "scenes"
SCOPE = Scope(None, tuple(g for g in GROUPS if g != "solo"))
CUES = ("speech-conference", "band-4piece", "singer-songwriter-iem")

Show = dict[str, Any]


def _ch(n: int) -> str:
    return f"/ch/{n:02d}"


def channel(
    show: Show,
    n: int,
    name: str,
    *,
    fader: float,
    pan: float = 0.0,
    trim: float = 0.0,
    hpf: float | None = None,
    hpf_slope: str = "12",
    eq: dict[int, tuple[str, float, float, float]] | None = None,
    gate: dict[str, float] | None = None,
    comp: dict[str, Any] | None = None,
    to_main: bool = True,
    on: bool = True,
    sends: dict[int, float] | None = None,
    send_pans: dict[int, float] | None = None,
    pre: tuple[int, ...] = (),
) -> None:
    """One input strip; ``eq`` maps band -> (type, Hz, dB, Q), ``sends`` bus ->
    dB, ``pre`` the odd buses whose pair this channel feeds before its fader."""
    p = _ch(n)
    show[f"{p}/config/name"] = name
    show[f"{p}/preamp/trim"] = trim
    show[f"{p}/mix/fader"] = fader
    show[f"{p}/mix/pan"] = pan
    show[f"{p}/mix/on"] = int(on)
    show[f"{p}/mix/st"] = int(to_main)
    if hpf is not None:
        show[f"{p}/preamp/hpon"] = 1
        show[f"{p}/preamp/hpf"] = hpf
        show[f"{p}/preamp/hpslope"] = hpf_slope
    for band, (kind, f, g, q) in (eq or {}).items():
        e = f"{p}/eq/{band}"
        show[f"{e}/type"], show[f"{e}/f"], show[f"{e}/g"], show[f"{e}/q"] = (
            kind,
            f,
            g,
            q,
        )
    if gate:
        show[f"{p}/gate/on"] = 1
        for k, v in gate.items():
            show[f"{p}/gate/{k}"] = v
    if comp:
        show[f"{p}/dyn/on"] = 1
        for k, v in comp.items():
            show[f"{p}/dyn/{k}"] = v
    for bus, level in (sends or {}).items():
        show[f"{p}/mix/{bus:02d}/level"] = level
    for bus, pan_ in (send_pans or {}).items():
        show[f"{p}/mix/{bus:02d}/pan"] = pan_
    for bus in pre:
        show[f"{p}/mix/{bus:02d}/type"] = "PRE"


def bus(
    show: Show,
    n: int,
    name: str,
    *,
    ceiling: float = -3.0,
    fader: float = 0.0,
    eq: dict[int, tuple[str, float, float, float]] | None = None,
    notches: tuple[tuple[float, float, float], ...] = (),
    feedback: str = "music",
) -> None:
    """A mix bus; ``notches`` are fixed ones from a ring-out: (Hz, dB, octaves);
    ``feedback`` the suppressor's mode (``off`` where nothing can feed back)."""
    show[f"/bus/{n:02d}/config/name"] = name
    show[f"/ls/bus/{n:02d}/fbs/mode"] = feedback
    show[f"/bus/{n:02d}/mix/fader"] = fader
    show[f"/ls/bus/{n:02d}/limiter/ceiling"] = ceiling
    for band, (kind, f, g, q) in (eq or {}).items():
        e = f"/bus/{n:02d}/eq/{band}"
        show[f"{e}/type"], show[f"{e}/f"], show[f"{e}/g"], show[f"{e}/q"] = (
            kind,
            f,
            g,
            q,
        )
    for k, (f, depth, width) in enumerate(notches, start=1):
        x = f"/ls/bus/{n:02d}/notch/{k:02d}"
        show[f"{x}/on"], show[f"{x}/f"], show[f"{x}/depth"] = 1, f, depth
        show[f"{x}/width"], show[f"{x}/fixed"] = width, 1


def main_mix(show: Show, *, ceiling: float = -1.0, fader: float = 0.0,
             feedback: str = "music") -> None:  # fmt: skip
    show["/main/st/mix/fader"] = fader
    show["/ls/main/st/fbs/mode"] = feedback
    show["/ls/main/st/limiter/ceiling"] = ceiling


# -- a 4-piece band: drums, bass, two guitars, keys, three vocals, playback -----
# Inputs 1-8 are the virtual stage's band (kick, snare, hi-hat, bass, guitar,
# keys, lead vox, back vox), so the virtual stage plays through this scene.

VOX, GTR, BASS_KEYS, DRUMS = 1, 2, 3, 4  # wedge buses


def band_4piece() -> Show:
    s: Show = {}
    kick_comp = {"thr": -18.0, "ratio": "4.0", "attack": 10.0, "release": 80.0,
                 "mgain": 2.0}  # fmt: skip
    vox_comp = {"thr": -22.0, "ratio": "3.0", "knee": 3.0, "attack": 5.0,
                "release": 120.0, "mgain": 4.0}  # fmt: skip
    bv_comp = {"thr": -24.0, "ratio": "4.0", "knee": 3.0, "attack": 5.0,
               "release": 120.0, "mgain": 3.0}  # fmt: skip
    tom_gate = {"thr": -35.0, "range": 40.0, "attack": 0.5, "hold": 80.0,
                "release": 250.0}  # fmt: skip
    wedges = (VOX, BASS_KEYS)  # odd buses: their pairs (1-2, 3-4) tap pre-fader
    channel(s, 1, "Kick", fader=-4.0, trim=0.0,
            eq={1: ("LShv", 60.0, 3.0, 2.0), 2: ("PEQ", 350.0, -6.0, 2.0),
                3: ("PEQ", 4000.0, 4.0, 1.5)},
            gate={"thr": -30.0, "range": 30.0, "attack": 0.5, "hold": 40.0,
                  "release": 150.0},
            comp=kick_comp, sends={VOX: -15.0, GTR: -12.0, BASS_KEYS: -6.0, DRUMS: -4.0},
            pre=wedges)  # fmt: skip
    channel(s, 2, "Snare", fader=-6.0, trim=2.0, hpf=100.0,
            eq={2: ("PEQ", 400.0, -3.0, 2.0), 3: ("PEQ", 5000.0, 3.0, 1.4)},
            sends={GTR: -15.0, DRUMS: -8.0}, pre=wedges)  # fmt: skip
    channel(s, 3, "Hi-hat", fader=-12.0, pan=30.0, trim=-2.0, hpf=250.0,
            eq={2: ("PEQ", 500.0, -4.0, 2.0), 4: ("HShv", 8000.0, 1.0, 2.0)},
            sends={DRUMS: -14.0}, pre=wedges)  # fmt: skip
    channel(s, 4, "Bass DI", fader=-5.0,
            eq={1: ("LShv", 80.0, 2.0, 2.0), 2: ("PEQ", 250.0, -3.0, 1.5),
                3: ("PEQ", 800.0, 2.0, 1.5)},
            comp={"thr": -20.0, "ratio": "4.0", "attack": 15.0, "release": 150.0,
                  "mgain": 3.0},
            sends={VOX: -12.0, GTR: -12.0, BASS_KEYS: -3.0, DRUMS: -4.0},
            pre=wedges)  # fmt: skip
    channel(s, 5, "Gtr 1", fader=-8.0, pan=-40.0, hpf=100.0,
            eq={2: ("PEQ", 300.0, -3.0, 2.0), 3: ("PEQ", 2500.0, 2.0, 1.5),
                4: ("HShv", 8000.0, -2.0, 2.0)},
            sends={VOX: -12.0, GTR: -3.0, DRUMS: -12.0}, pre=wedges)  # fmt: skip
    channel(s, 6, "Keys L", fader=-10.0, pan=-60.0, trim=3.0, hpf=60.0,
            eq={2: ("PEQ", 300.0, -2.0, 1.5)},
            sends={VOX: -12.0, BASS_KEYS: -4.0, DRUMS: -12.0}, pre=wedges)  # fmt: skip
    channel(s, 7, "Lead vox", fader=-2.0, trim=2.0, hpf=100.0,
            eq={2: ("PEQ", 300.0, -3.0, 1.5), 3: ("PEQ", 3000.0, 2.5, 1.5),
                4: ("HShv", 10000.0, 2.0, 2.0)},
            comp=vox_comp,
            sends={VOX: 0.0, GTR: -6.0, BASS_KEYS: -6.0, DRUMS: -6.0},
            pre=wedges)  # fmt: skip
    channel(s, 8, "BV 1", fader=-8.0, pan=-20.0, trim=4.0, hpf=120.0,
            eq={2: ("PEQ", 250.0, -4.0, 1.5), 4: ("HShv", 10000.0, 1.0, 2.0)},
            comp=bv_comp, sends={VOX: -10.0, GTR: -12.0, BASS_KEYS: -8.0},
            pre=wedges)  # fmt: skip
    toms = ((9, "Rack tom 1", -30.0, 80.0), (10, "Rack tom 2", 10.0, 80.0),
            (11, "Floor tom", 40.0, 60.0))  # fmt: skip
    for n, name, pan, hpf in toms:
        channel(s, n, name, fader=-10.0, pan=pan, hpf=hpf,
                eq={2: ("PEQ", 400.0, -5.0, 1.5), 3: ("PEQ", 3500.0, 3.0, 1.5)},
                gate=tom_gate, sends={DRUMS: -10.0}, pre=wedges)  # fmt: skip
    for n, name, pan in ((12, "OH L", -70.0), (13, "OH R", 70.0)):
        channel(s, n, name, fader=-12.0, pan=pan, trim=2.0, hpf=150.0,
                eq={2: ("PEQ", 400.0, -3.0, 1.0), 4: ("HShv", 10000.0, 2.0, 2.0)},
                sends={DRUMS: -12.0}, pre=wedges)  # fmt: skip
    channel(s, 14, "Gtr 2", fader=-8.0, pan=40.0, hpf=100.0,
            eq={2: ("PEQ", 300.0, -3.0, 2.0), 3: ("PEQ", 2000.0, 2.0, 1.5)},
            sends={VOX: -15.0, GTR: -8.0, DRUMS: -12.0}, pre=wedges)  # fmt: skip
    channel(s, 15, "Keys R", fader=-10.0, pan=60.0, trim=3.0, hpf=60.0,
            eq={2: ("PEQ", 300.0, -2.0, 1.5)},
            sends={VOX: -12.0, BASS_KEYS: -4.0, DRUMS: -12.0}, pre=wedges)  # fmt: skip
    channel(s, 16, "BV 2", fader=-8.0, pan=20.0, trim=4.0, hpf=120.0,
            eq={2: ("PEQ", 250.0, -4.0, 1.5), 4: ("HShv", 10000.0, 1.0, 2.0)},
            comp=bv_comp, sends={VOX: -10.0, BASS_KEYS: -8.0},
            pre=wedges)  # fmt: skip
    for n, name, pan in ((17, "Playback L", -100.0), (18, "Playback R", 100.0)):
        channel(s, n, name, fader=-12.0, pan=pan,
                sends={DRUMS: -10.0, BASS_KEYS: -12.0}, pre=wedges)  # fmt: skip
    # Wedges: low end rolled off (the stage is loud enough down there), and the
    # vocal wedge rung out: two narrow fixed notches where it wanted to ring.
    bus(s, VOX, "Vox wedge",
        eq={1: ("LCut", 120.0, 0.0, 2.0), 4: ("PEQ", 2500.0, -2.0, 2.0)},
        notches=((2500.0, -9.0, 0.1), (630.0, -6.0, 0.05)))  # fmt: skip
    bus(s, GTR, "Gtr wedge", eq={1: ("LCut", 100.0, 0.0, 2.0)})
    bus(s, BASS_KEYS, "Bass-keys wedge", eq={1: ("LCut", 50.0, 0.0, 2.0)})
    bus(s, DRUMS, "Drum fill", eq={1: ("LCut", 40.0, 0.0, 2.0)})
    main_mix(s, ceiling=-1.0)
    return s


# -- a panel discussion with Q&A ----------------------------------------------

FOLDBACK, RECORD = 1, 15  # the record feed is the linked pair 15-16


def speech_conference() -> Show:
    s: Show = {}
    speech_eq = {2: ("PEQ", 250.0, -3.0, 1.0), 3: ("PEQ", 3000.0, 3.0, 1.2)}
    comp = {"thr": -24.0, "ratio": "3.0", "knee": 4.0, "attack": 10.0,
            "release": 150.0, "mgain": 4.0}  # fmt: skip
    mics = (
        (1, "Panel 1 lav", 120.0, -5.0, -30.0, True),
        (2, "Panel 2 lav", 120.0, -5.0, -10.0, True),
        (3, "Panel 3 lav", 120.0, -5.0, 10.0, True),
        (4, "Moderator HH", 100.0, -4.0, 30.0, True),
        (5, "Lectern", 110.0, -3.0, 0.0, True),
        # Audience handhelds: muted until the Q&A.
        (6, "Q&A RF 1", 110.0, -4.0, 0.0, False),
        (7, "Q&A RF 2", 110.0, -4.0, 0.0, False),
    )
    for n, name, hpf, fader, pan, on in mics:
        channel(s, n, name, fader=fader, pan=pan, trim=6.0 if "lav" in name else 0.0,
                hpf=hpf, hpf_slope="24", eq=speech_eq, comp=comp, on=on,
                # The panel hears the audience's questions and the laptop.
                sends={FOLDBACK: -3.0 if "Q&A" in name else -15.0, RECORD: 0.0},
                send_pans={RECORD: pan}, pre=(FOLDBACK,))  # fmt: skip
    for n, name, pan in ((8, "Laptop L", -100.0), (9, "Laptop R", 100.0)):
        channel(s, n, name, fader=-10.0, pan=pan,
                sends={FOLDBACK: -8.0, RECORD: -4.0}, send_pans={RECORD: pan},
                pre=(FOLDBACK,))  # fmt: skip
    bus(s, FOLDBACK, "Stage foldback", ceiling=-6.0,
        eq={1: ("LCut", 120.0, 0.0, 2.0)}, feedback="speech")  # fmt: skip
    bus(s, RECORD, "Record L", ceiling=-3.0, feedback="off")
    bus(s, RECORD + 1, "Record R", ceiling=-3.0, feedback="off")
    s[f"/config/buslink/{RECORD}-{RECORD + 1}"] = 1
    main_mix(s, ceiling=-6.0, feedback="speech")
    return s


# -- a singer-songwriter on in-ears --------------------------------------------

IEM = 1  # the linked pair 1-2


def singer_songwriter_iem() -> Show:
    s: Show = {}
    iem = (IEM,)
    channel(s, 1, "Vocal", fader=-3.0, trim=3.0, hpf=100.0,
            eq={2: ("PEQ", 300.0, -3.0, 1.5), 3: ("PEQ", 3500.0, 2.0, 1.5),
                4: ("HShv", 10000.0, 2.0, 2.0)},
            comp={"thr": -22.0, "ratio": "3.0", "knee": 3.0, "attack": 5.0,
                  "release": 120.0, "mgain": 4.0},
            sends={IEM: 0.0}, send_pans={IEM: 0.0}, pre=iem)  # fmt: skip
    channel(s, 2, "Ac gtr mic", fader=-6.0, pan=-15.0, trim=4.0, hpf=80.0,
            eq={2: ("PEQ", 200.0, -3.0, 1.5), 4: ("HShv", 8000.0, 2.0, 2.0)},
            sends={IEM: -4.0}, send_pans={IEM: -30.0}, pre=iem)  # fmt: skip
    channel(s, 3, "Ac gtr DI", fader=-8.0, pan=15.0, hpf=60.0,
            eq={2: ("PEQ", 250.0, -2.0, 1.5), 3: ("PEQ", 1200.0, -4.0, 2.5)},
            comp={"thr": -18.0, "ratio": "2.5", "attack": 10.0, "release": 150.0,
                  "mgain": 2.0},
            sends={IEM: -6.0}, send_pans={IEM: 30.0}, pre=iem)  # fmt: skip
    # The click is for the artist's ears only: never in the PA.
    channel(s, 4, "Click", fader=OFF, to_main=False,
            sends={IEM: -10.0}, send_pans={IEM: 0.0}, pre=iem)  # fmt: skip
    for n, name, pan in ((5, "Playback L", -100.0), (6, "Playback R", 100.0)):
        channel(s, n, name, fader=-12.0, pan=pan,
                sends={IEM: -10.0}, send_pans={IEM: pan}, pre=iem)  # fmt: skip
    # Audience mics: ambience in the ears, so the artist feels the room.
    for n, name, pan in ((7, "Aud mic L", -100.0), (8, "Aud mic R", 100.0)):
        channel(s, n, name, fader=OFF, to_main=False, hpf=150.0,
                sends={IEM: -14.0}, send_pans={IEM: pan}, pre=iem)  # fmt: skip
    # In-ears cannot feed back: no suppressor cutting into the singer's mix.
    bus(s, IEM, "IEM L", ceiling=-6.0, feedback="off")
    bus(s, IEM + 1, "IEM R", ceiling=-6.0, feedback="off")
    s[f"/config/buslink/{IEM}-{IEM + 1}"] = 1
    main_mix(s, ceiling=-1.0)
    return s


SHOWS = {
    "band-4piece": band_4piece,
    "speech-conference": speech_conference,
    "singer-songwriter-iem": singer_songwriter_iem,
}


def values(show: Show, registry: Registry) -> dict[str, Any]:
    """The whole console for ``show``: defaults plus the show, validated."""
    out = registry.defaults()
    for address, value in show.items():
        out[address] = registry[address].validate(value)
    return out


def write(folder: Path = SCENES) -> list[Path]:
    registry = Registry(N_IN, N_BUS)
    paths = []
    for name, build in SHOWS.items():
        scene = files.capture(registry, values(build(), registry), name, SCOPE)
        path = folder / f"{name}.toml"
        files.save(registry, scene, path)
        paths.append(path)
    cues = folder / "cuelist.toml"
    files.write_atomic(cues, "cues = [" + ", ".join(f'"{c}"' for c in CUES) + "]\n")
    return [*paths, cues]


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCENES):
        print(f"wrote {p}")

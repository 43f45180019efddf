"""The ``livesound`` command."""

import argparse
import os
import re
import signal
import sys
from pathlib import Path

from livesound.audio.settings import MAX_BLOCK, MIN_BLOCK, SAMPLE_RATES, DeviceError

EXIT_USAGE = 2  # bad arguments, or a value or request refused
EXIT_NO_ENGINE = 1  # no engine answered (or one would not stop)


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"livesound: error: {message}", file=sys.stderr)
    return code


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="audio device: index or part of its name "
                   "(default: the system's default output)")  # fmt: skip
    p.add_argument("--list-devices", action="store_true",
                   help="list audio devices and exit")  # fmt: skip
    p.add_argument("--virtual", action="store_true",
                   help="play the built-in virtual stage instead of a sound card "
                   "(the default when there is none)")  # fmt: skip
    p.add_argument("--rate", type=int, default=48000, metavar="HZ",
                   help=f"sample rate: {', '.join(map(str, SAMPLE_RATES))} "
                   "(default 48000)")  # fmt: skip
    p.add_argument(
        "--block",
        type=int,
        default=64,
        metavar="FRAMES",
        help=f"frames per audio block, {MIN_BLOCK}-{MAX_BLOCK} (default 64)",
    )
    p.add_argument("--inputs", type=int, default=32, help="input channels (default 32)")
    p.add_argument("--buses", type=int, default=16,
                   help="mix buses, even, 2-16 (default 16)")  # fmt: skip
    p.add_argument(
        "--in-map",
        metavar="LIST",
        help="engine input for each device input, e.g. 1,2,0,3 (0 = unused)",
    )
    p.add_argument("--out-map", metavar="LIST",
                   help="output for each device output: 1..16 (buses), L, R, CL, CR "
                   "(cue), M (mono), MTX1..MTX6 (matrices) or - ; e.g. L,R,1,2,3,4")  # fmt: skip
    p.add_argument(
        "--lookahead-ms",
        type=float,
        default=1.0,
        help="limiter lookahead (and latency), 0.2-5 ms (default 1)",
    )
    p.add_argument("--out-lookahead", action="append", metavar="OUTPUTS=MS",
                   help="a lookahead of their own for some outputs, e.g. 1-8=0.25 "
                   "for in-ear mixes on buses 1-8 (bus numbers and ranges, L, R, "
                   "CL, CR, M, MTX1..MTX6; stereo pairs keep one; repeatable)")  # fmt: skip
    p.add_argument("--afc", action="append", metavar="MIC=OUTPUT",
                   help="an adaptive feedback canceller on the path from a vocal "
                   "mic to an output, e.g. 1=1 (input 1 into bus 1's wedge; "
                   "outputs 1..16, L, R, M, MTX1..MTX6); needs a power-of-two "
                   "--block; repeatable (or [afc] paths in the show config); "
                   "the output's suppressor starts in mode afc; for speech, "
                   "not music")  # fmt: skip
    p.add_argument("--fallback", metavar="DEVICE",
                   help="device to play on while the first one is gone (index, "
                   "part of its name, or virtual)")  # fmt: skip
    p.add_argument("--jack", metavar="NAME",
                   help="play as a JACK client called NAME (ports NAME:in_01..., "
                   "NAME:main_L/R, NAME:bus_01...; the server's rate must match "
                   "--rate; its period may change while running)")  # fmt: skip
    p.add_argument("--name", metavar="NAME",
                   help="the engine's name on the network, for consoles choosing "
                   "between engines (default: the --jack name, else livesound)")  # fmt: skip
    p.add_argument("--connect", metavar="SRC=DST", action="append",
                   help="with --jack: connect ports, globs paired in order, e.g. "
                   "'system:capture_*=in_*' or 'main_*=system:playback_*'; "
                   "repeatable; 'none' for no connections (default: the show "
                   "config's [jack] connect table, else capture ports to the "
                   "inputs, main and buses to the playback ports)")  # fmt: skip
    p.add_argument("--supervise", action="store_true",
                   help="run the engine under a supervisor that restarts it after "
                   "a crash, from the autosave (the default for the engine plain "
                   "`livesound` starts)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no meter line")
    p.add_argument("--osc-port", type=int, default=10023,
                   help="UDP port of the OSC server (default 10023, as the X32)")  # fmt: skip
    p.add_argument("--osc-host", default="0.0.0.0",
                   help="address the OSC server listens on (default all)")  # fmt: skip
    p.add_argument("--scenes", type=Path, default=Path("scenes"),
                   help="scene folder (default ./scenes)")  # fmt: skip
    p.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the show is autosaved and restored from after a "
        "crash (default $LIVESOUND_STATE, else ~/.local/state/livesound)",
    )
    p.add_argument(
        "--no-discovery",
        action="store_true",
        help="no zeroconf advertisement and no OSCQuery (HTTP) server",
    )
    p.add_argument("--show-config", type=Path, metavar="FILE",
                   help="show configuration (TOML): OSC client roles and pairing "
                   "codes; without it this machine is the engineer and every "
                   "other client read-only")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livesound",
        description="Live sound reinforcement console: FOH and monitor mixes with "
        "limiters on every output. Without a command: the console, attached to "
        "the engine on this machine (started if none runs; headless without a "
        "terminal).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    eng = sub.add_parser("engine", help="run the headless audio engine",
                         description="Run the audio engine (headless) with a live "
                         "meter line. Stop with Ctrl-C.")  # fmt: skip
    _add_engine_options(eng)
    sub.add_parser("devices", help="list audio devices",
                   description="List the audio devices PortAudio sees.")  # fmt: skip
    sub.add_parser("engines", help="list the engines on the network",
                   description="List the livesound engines that answer on the local "
                   "network (zeroconf), with their names, addresses and OSC ports; "
                   "`livesound console --engine NAME` attaches to one.")  # fmt: skip
    ren = sub.add_parser("render", help="render a multichannel WAV through the mix",
                         description="Render a multichannel WAV (one channel per input) "
                         "through the engine; writes one WAV per output "
                         "(bus01..bus16, main_l, main_r, cue_l, cue_r, main_m, "
                         "mtx01..mtx06).")  # fmt: skip
    ren.add_argument("source", type=Path, help="multichannel WAV, 44.1/48/96 kHz")
    ren.add_argument("-o", "--output", type=Path, default=Path("render"),
                     help="folder for the output WAVs (default ./render)")  # fmt: skip
    ren.add_argument("--set", action="append", default=[], metavar="ADDR=VALUE",
                     help="set a parameter first, e.g. /ch/01/mix/fader=0 "
                     "(repeatable)")  # fmt: skip
    ren.add_argument("--block", type=int, default=64, help="frames per block")
    ren.add_argument("--inputs", type=int, default=32, help="engine inputs")
    ren.add_argument("--buses", type=int, default=16, help="mix buses")
    bench = sub.add_parser("bench", help="measure the audio engine's cost",
                           description="Time the reference show's audio callback at "
                           "several block sizes and input counts.")  # fmt: skip
    bench.add_argument("what", nargs="?", choices=("engine", "osc", "scenes",
                                                   "console", "feedback", "faults"),
                       default="engine",
                       help="engine (default): the audio callback; osc: the OSC "
                       "server against a running engine; scenes: recall to live; "
                       "console: the terminal console's cost per frame and CPU; "
                       "feedback: the suppressor in simulated closed loops "
                       "(ΔMSG, SD, HOP, TRI; several minutes); faults: each "
                       "fault against a real engine (audio kept, time to detect "
                       "and recover, values lost)")  # fmt: skip
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--quick", action="store_true", help="shorter measurements")
    bench.add_argument("--takes", type=int, default=1,
                       help="feedback: run speech and music on this many takes "
                       "of each (other seeds), summaries over all (default 1; "
                       "each take adds the ~8 minutes again)")  # fmt: skip
    sc = sub.add_parser("scene", help="list, save, recall, diff scenes",
                        description="Scenes are TOML files in the scene folder. "
                        "save, recall, go and back act on the running engine (over "
                        "OSC); list reads the files and flags the broken ones; diff "
                        "compares two files, or one with the running engine's live "
                        "show (read over OSC from --host/--port).")  # fmt: skip
    sc.add_argument("action", choices=("list", "save", "recall", "go", "back", "diff",
                                       "rename", "delete", "safe", "unsafe", "safes",
                                       "note"),
                    help="what to do (note NAME shows the scene's note, note NAME "
                    "TEXT sets it)")  # fmt: skip
    sc.add_argument("names", nargs="*", help="scene name(s); diff takes one or two "
                    "(one: against the running engine's live state); note a name "
                    "and the text")  # fmt: skip
    sc.add_argument("--scenes", type=Path, default=Path("scenes"), help="scene folder")
    sc.add_argument("--fade", type=float, default=0.0, help="fade time (s) when saving")
    sc.add_argument("--host", default="127.0.0.1", help="engine address")
    sc.add_argument("--port", type=int, default=10023, help="engine OSC port")
    sc.add_argument("--inputs", type=int, default=None,
                    help="engine inputs, to check files by (default: the running "
                    "engine's, else 32)")  # fmt: skip
    sc.add_argument("--buses", type=int, default=None,
                    help="mix buses (default: the running engine's, else 16)")  # fmt: skip
    _add_state_parser(sub)
    _add_remote_parsers(sub)
    _add_pair_parser(sub)
    omap = sub.add_parser("osc-map", help="write the OSC address reference (Markdown)",
                          description="Write every OSC address the engine serves, "
                          "with types, ranges, units and defaults, as Markdown.")  # fmt: skip
    omap.add_argument(
        "-o", "--output", type=Path, help="file to write (default stdout)"
    )
    omap.add_argument("--inputs", type=int, default=32, help="engine inputs")
    omap.add_argument("--buses", type=int, default=16, help="mix buses")
    lay = sub.add_parser("layout", help="write a tablet layout for a performer's mix",
                         description="Write an Open Stage Control session (JSON) for "
                         "performer N's monitor mix: a fader per input send, the mix "
                         "master, meters; channel names come from the running engine "
                         "when it answers.")  # fmt: skip
    lay.add_argument("--mix", type=int, required=True, help="the monitor mix, 1..16")
    lay.add_argument("-o", "--output", type=Path, help="file (default mix-N.json)")
    lay.add_argument("--host", help="engine address the tablet sends to "
                     "(default: this machine's network address)")  # fmt: skip
    lay.add_argument("--port", type=int, default=10023, help="engine OSC port")
    lay.add_argument("--inputs", type=int, default=32, help="engine inputs")
    lay.add_argument("--buses", type=int, default=16, help="mix buses")
    con = sub.add_parser("console", help="the show console (terminal UI)",
                         description="Attach the terminal console to a running "
                         "engine over OSC. Plain `livesound` also starts the engine "
                         "if none answers.")  # fmt: skip
    con.add_argument("--host", default="127.0.0.1",
                     help="engine address (default this machine)")  # fmt: skip
    con.add_argument("--port", type=int, default=10023,
                     help="engine OSC port (default 10023)")  # fmt: skip
    con.add_argument("--engine", metavar="NAME",
                     help="attach to the engine of this name found on the network "
                     "(see `livesound engines`) instead of --host/--port")  # fmt: skip
    con.add_argument("--fps", type=float, default=30.0,
                     help="console frames per second (default 30)")  # fmt: skip
    con.add_argument("--pair", metavar="CODE",
                     help="pairing code for a role from the show configuration")  # fmt: skip
    _add_engine_options(parser)
    return parser


def _add_pair_parser(sub) -> None:
    pr = sub.add_parser("pair", help="make a pairing code for a tablet",
                        description="Ask the running engine for a fresh random "
                        "6-digit pairing code; a tablet that sends it (/ls/pair ,s "
                        "CODE) gets the role. Only the engineer may ask.")  # fmt: skip
    pr.add_argument("--role", required=True,
                    help="performer:N, readonly, viewer or engineer")  # fmt: skip
    pr.add_argument("--valid", type=int, default=10, metavar="MINUTES",
                    help="how long the code works, 1-1440 minutes (default 10)")  # fmt: skip
    pr.add_argument("--host", default="127.0.0.1", help="engine address")
    pr.add_argument("--port", type=int, default=10023, help="engine OSC port")


def cmd_pair(args) -> int:
    """``livesound pair``: a fresh pairing code from the running engine."""
    from livesound.remote import NoEngine, Refused, Remote

    try:
        with Remote(args.host, args.port) as remote:
            code, role, minutes = remote.ask("/ls/pair/new", args.role, args.valid)
    except NoEngine as exc:
        return _fail(str(exc), EXIT_NO_ENGINE)
    except Refused as exc:
        return _fail(str(exc))
    print(f"pairing code {code} for {role}, valid {minutes} min "
          f"(the tablet sends /ls/pair ,s {code})")  # fmt: skip
    return 0


def _add_state_parser(sub) -> None:
    st = sub.add_parser("state", help="list or restore autosave generations",
                        description="The engine keeps the last 10 autosaves in the "
                        "state dir (autosave.toml newest, then autosave.1.toml ... "
                        "autosave.9.toml). restore N loads generation N into a "
                        "running engine (over OSC); with no engine running it makes "
                        "N the newest, so the next start restores it.")  # fmt: skip
    st.add_argument("action", choices=("list", "restore"), help="what to do")
    st.add_argument("generation", nargs="?", type=int, help="restore: generation N")
    st.add_argument("--state-dir", type=Path, default=None,
                    help="state dir (default $LIVESOUND_STATE, else "
                    "~/.local/state/livesound)")  # fmt: skip
    st.add_argument("--host", default="127.0.0.1", help="engine address")
    st.add_argument("--port", type=int, default=10023, help="engine OSC port")


def _add_remote_parsers(sub) -> None:
    def where(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1",
                       help="engine address (default this machine)")  # fmt: skip
        p.add_argument("--port", type=int, default=10023,
                       help="engine OSC port (default 10023)")  # fmt: skip

    get = sub.add_parser("get", help="show parameters of the running engine",
                         description="Show live values of the running engine in "
                         "engineering units (dB, Hz, ms, names). An address above "
                         "parameters shows all of them: livesound get /ch/01/eq",
                         epilog="exit codes: 0 shown, 1 no engine answered, "
                         "2 unknown address or refused")  # fmt: skip
    get.add_argument("addresses", nargs="+", metavar="ADDRESS",
                     help="e.g. /ch/01/mix/fader, /ls/bus/01/fbs/mode, /ch/01/eq")  # fmt: skip
    where(get)
    put = sub.add_parser("set", help="change a parameter of the running engine",
                         usage="%(prog)s [-h] [--host HOST] [--port PORT] ADDRESS VALUE",
                         description="Change one parameter of the running engine, "
                         "in engineering units, and show the value it holds now. "
                         "Values: -6, -6dB, -inf or off (a fader off), 2.5kHz, "
                         "150ms, on/off (switches), a choice's name (music) or a "
                         "name. The registry checks the value first: nothing "
                         "out of range is sent.",
                         epilog="exit codes: 0 changed, 1 no engine answered, "
                         "2 unknown address or value refused")  # fmt: skip
    put.add_argument("address", metavar="ADDRESS", help="e.g. /ch/01/mix/fader")
    # Optional here only so that a value like -6dB (which argparse takes
    # for an option) can be picked up from the unparsed arguments.
    put.add_argument("value", nargs="?", metavar="VALUE", help="e.g. -6dB")
    where(put)
    stop = sub.add_parser("stop", help="stop the engine running on this machine",
                          description="Stop the engine that uses the state dir "
                          "(as Ctrl-C does: it saves the show, closes the audio "
                          "device and exits) and wait until it has. Says so when "
                          "no engine runs.",
                          epilog="exit codes: 0 stopped or none running, 1 the "
                          "engine still runs, 2 the engine on --port uses another "
                          "state dir")  # fmt: skip
    stop.add_argument("--state-dir", type=Path, default=None,
                      help="the engine's state dir (default $LIVESOUND_STATE, else "
                      "~/.local/state/livesound, as the engine's own default)")  # fmt: skip
    where(stop)


def cmd_get(args) -> int:
    from livesound.remote import NoEngine, Refused, Remote, show_value

    try:
        with Remote(args.host, args.port) as remote:
            wanted = [a for address in args.addresses for a in remote.under(address)]
            values = remote.values(wanted)
            registry = remote.registry()
    except NoEngine as exc:
        return _fail(str(exc), EXIT_NO_ENGINE)
    except Refused as exc:
        return _fail(str(exc))
    for address in wanted:
        print(f"{address}  {show_value(registry[address], values[address])}")
    return 0


def cmd_set(args) -> int:
    from livesound.remote import NoEngine, Refused, Remote, parse_value, show_value

    if args.value is None:
        return _fail("set takes an address and a value, e.g. "
                     "livesound set /ch/01/mix/fader -6dB")  # fmt: skip
    try:
        with Remote(args.host, args.port) as remote:
            param = remote.param(args.address)
            now = remote.set(args.address, parse_value(param, args.value))
    except NoEngine as exc:
        return _fail(str(exc), EXIT_NO_ENGINE)
    except Refused as exc:
        return _fail(str(exc))
    print(f"{args.address}  {show_value(param, now)}")
    return 0


def cmd_stop(args) -> int:
    from livesound.console.launch import engine_answers
    from livesound.places import default_state_dir
    from livesound.remote import Refused, stop_engine

    state = args.state_dir or default_state_dir()
    try:
        pid = stop_engine(state)
    except Refused as exc:
        return _fail(str(exc), EXIT_NO_ENGINE)
    if pid is not None:
        print(f"stopped the engine (pid {pid})")
        return 0
    if engine_answers(args.port, args.host):
        return _fail(f"an engine answers on {args.host}:{args.port} but none uses "
                     f"the state dir {state}; give its --state-dir, or stop it "
                     "where it runs (Ctrl-C)")  # fmt: skip
    print(f"no engine running (none uses the state dir {state}, none answers on "
          f"{args.host}:{args.port})")  # fmt: skip
    return 0


def cmd_state(args) -> int:
    from livesound.places import default_state_dir
    from livesound.remote import NoEngine, Refused, Remote
    from livesound.scenes import autosave
    from livesound.scenes.files import SceneError
    from livesound.scenes.storage import state_dir_locked

    state = args.state_dir or default_state_dir()
    if args.action == "list":
        rows = autosave.listing(state)
        print("\n".join(rows) if rows else f"no autosaves in {state}")
        return 0
    if args.generation is None:
        return _fail(
            "state restore takes a generation number (see: livesound state list)"
        )
    try:
        if state_dir_locked(state):
            with Remote(args.host, args.port) as remote:
                _, refused = remote.ask("/ls/state/restore", args.generation)
            print(f"the running engine loaded generation {args.generation}"
                  + (f" ({refused} value(s) refused, see its log)" if refused else ""))  # fmt: skip
        else:
            autosave.make_newest(state, args.generation)
            print(f"no engine running: generation {args.generation} is now the "
                  f"newest autosave in {state}; the next start restores it")  # fmt: skip
    except NoEngine as exc:
        return _fail(str(exc), EXIT_NO_ENGINE)
    except (SceneError, Refused, OSError) as exc:
        return _fail(str(exc))
    return 0


def _parse_setting(text: str):
    if "=" not in text:
        raise ValueError(f"--set {text!r}: use ADDRESS=VALUE")
    address, raw = text.split("=", 1)
    raw = raw.strip()
    for cast in (int, float):
        try:
            return address.strip(), cast(raw)
        except ValueError:
            pass
    return address.strip(), raw


def cmd_devices() -> int:
    from livesound.audio.devices import list_devices

    found = list_devices()
    if not found:
        print("no audio devices (PortAudio missing or no sound card): "
              "the engine runs on the virtual stage")  # fmt: skip
    for d in found:
        print(
            f"{d['index']:>3}  {d['name']}  [{d['hostapi']}]  "
            f"in {d['inputs']}, out {d['outputs']}, {d['default_samplerate']:.0f} Hz"
        )
    return 0


def cmd_osc_map(args) -> int:
    from livesound.control.registry import Registry
    from livesound.osc.docs import osc_map_markdown

    text = osc_map_markdown(Registry(args.inputs, args.buses))
    if args.output:
        args.output.write_text(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _names_from_engine(host: str, port: int, addresses: list[str]) -> dict | None:
    """Ask a running engine for ``addresses`` (names); None if none answers."""
    from livesound.osc.client import Client, osc

    found = {}
    with Client(port, host, timeout=0.3) as client:
        for address in addresses:
            client.send(osc(address))
        try:
            while len(found) < len(addresses):
                reply = client.receive()
                if reply.address in addresses and reply.params:
                    found[reply.address] = reply.params[0]
        except OSError:
            pass
    return found or None


def cmd_layout(args) -> int:
    import contextlib
    import json

    from livesound.control.registry import Registry
    from livesound.osc.discovery import ipv4_addresses
    from livesound.osc.layout import performer_layout
    from livesound.virtual.show import virtual_stage_show

    registry = Registry(args.inputs, args.buses)
    if not 1 <= args.mix <= args.buses:
        return _fail(f"--mix {args.mix}: use 1 to {args.buses}")
    values = registry.defaults()
    names = [f"/ch/{c + 1:02d}/config/name" for c in range(args.inputs)]
    names.append(f"/bus/{args.mix:02d}/config/name")
    live = _names_from_engine("127.0.0.1", args.port, [*names, "/ls/stats"])
    engine = ""
    if live and "/ls/stats" in live:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            engine = str(json.loads(live.pop("/ls/stats")).get("name", ""))
    if live:
        values.update(live)
    else:
        print("no engine answered on this machine: names from the virtual stage",
              file=sys.stderr)  # fmt: skip
        values.update(virtual_stage_show(args.inputs, args.buses))
    host = args.host or next(iter(ipv4_addresses()), "127.0.0.1")
    session = performer_layout(registry, values, args.mix, host, args.port, engine)
    out = args.output or Path(f"mix-{args.mix}.json")
    out.write_text(json.dumps(session, indent=2))
    print(f"wrote {out}: Open Stage Control session for mix {args.mix}"
          + (f" on {engine}" if engine else "") + f", sending to {host}:{args.port}")  # fmt: skip
    return 0


def _scene_registry(args):
    """The registry scene files are judged by: --inputs/--buses, else the
    running engine's size, else the reference show's 32 x 16."""
    from livesound.control.registry import Registry
    from livesound.remote import NoEngine, Remote

    if args.inputs is None or args.buses is None:
        try:
            with Remote(args.host, args.port, timeout=0.5) as remote:
                live = remote.registry()
        except NoEngine:
            live = Registry()
        return Registry(args.inputs or live.n_in, args.buses or live.n_bus)
    return Registry(args.inputs, args.buses)


def _scene_list(folder: Path, registry) -> int:
    """Every scene file, the broken ones flagged with why."""
    from livesound.scenes import files
    from livesound.scenes.files import SceneError

    if not folder.is_dir():
        return _fail(f"no scene folder {folder} (give --scenes DIR; an engine "
                     "creates its folder on the first save)")  # fmt: skip
    paths = sorted(p for p in folder.glob("*.toml") if p.name != "cuelist.toml")
    if not paths:
        print(f"no scenes in {folder}", file=sys.stderr)
    for path in paths:
        try:
            _, refused = files.parse_partial(registry, files.read_text(path), str(path))
        except SceneError as exc:
            print(f"{path.stem}  BROKEN: {str(exc).removeprefix(f'{path}: ')}")
            continue
        if refused:
            first = re.sub(r"^(\d+):", r"line \1:", refused[0].removeprefix(f"{path}:"))
            print(f"{path.stem}  {len(refused)} value(s) an engine of "
                  f"{registry.n_in} inputs and {registry.n_bus} buses refuses; "
                  f"first, {first.strip()}")  # fmt: skip
        else:
            print(path.stem)
    cues = folder / "cuelist.toml"
    if cues.exists():
        try:
            files.check(cues)
        except SceneError as exc:
            print(f"(cue list)  BROKEN: {str(exc).removeprefix(f'{cues}: ')}")
    for kept in sorted(folder.glob("*.unreadable-*")):
        print(f"(kept aside)  {kept.name}: the engine could not read it; fix it "
              "and rename it back to .toml")  # fmt: skip
    return 0


def _scene_diff(args) -> int:
    """``scene diff A [B]``: two files, or A against the running engine."""
    from livesound.remote import NoEngine, Remote
    from livesound.scenes import files

    def load(registry, name: str):
        path = args.scenes / f"{name}.toml"
        if not path.exists():
            raise files.SceneError(f"no scene {name!r} in {args.scenes}")
        return files.load(registry, path)

    if len(args.names) == 2:
        registry = _scene_registry(args)
        a, b = (load(registry, name).values for name in args.names)
        label = args.names[1]
    else:
        try:
            with Remote(args.host, args.port) as remote:
                registry = remote.registry()
                a = load(registry, args.names[0]).values
                b = remote.values(list(a))
        except NoEngine as exc:
            return _fail(f"{exc}: a diff with one scene compares it with the "
                         "running engine's live show (start the engine, give "
                         "--host/--port, or name two scenes)", EXIT_NO_ENGINE)  # fmt: skip
        label = "live"
    rows = files.diff(registry, a, b)
    for address, left, right in rows:
        print(f"{address}  {args.names[0]}: {left}  {label}: {right}")
    print(f"{len(rows)} difference(s)")
    return 0


def cmd_scene(args) -> int:
    from livesound.remote import NoEngine, Refused, Remote
    from livesound.scenes.files import SceneError

    need = {"list": 0, "go": 0, "back": 0, "save": 1, "recall": 1, "delete": 1,
            "rename": 2, "diff": (1, 2), "safe": 1, "unsafe": 1,
            "safes": 0, "note": (1, 2)}[args.action]  # fmt: skip
    counts = need if isinstance(need, tuple) else (need,)
    if len(args.names) not in counts:
        return _fail(
            f"scene {args.action} takes {' or '.join(map(str, counts))} name(s)"
        )
    try:
        if args.action == "list":
            return _scene_list(args.scenes, _scene_registry(args))
        if args.action == "diff":
            return _scene_diff(args)
        address = {"save": "/ls/scene/save", "recall": "/ls/scene/recall",
                   "go": "/ls/scene/go", "back": "/ls/scene/back",
                   "delete": "/ls/scene/delete", "rename": "/ls/scene/rename",
                   "safe": "/ls/scene/safe", "unsafe": "/ls/scene/safe",
                   "safes": "/ls/scene/safes",
                   "note": "/ls/scene/note" if len(args.names) == 1
                   else "/ls/scene/note/set"}[args.action]  # fmt: skip
        extra = [float(args.fade)] if args.action == "save" else []
        if args.action in ("safe", "unsafe"):
            extra = [int(args.action == "safe")]
        with Remote(args.host, args.port) as remote:
            reply = remote.ask(address, *args.names, *extra)
    except NoEngine as exc:
        return _fail(str(exc), EXIT_NO_ENGINE)
    except (SceneError, Refused) as exc:
        return _fail(str(exc))
    if args.action == "note":
        print(f"{reply[0]}: {reply[1]}" if reply[1] else f"{reply[0]}: no note")
        return 0
    print(" ".join(str(r) for r in reply))
    return 0


def _show_compiling() -> None:
    """First start: say which of livesound's kernels numba compiles as it
    goes (the engine's log shows it; plain ``livesound`` shows it with the
    seconds elapsed while it waits)."""
    from numba.core import event

    print("compiling the audio engine (first start only, about a minute)...",
          file=sys.stderr, flush=True)  # fmt: skip

    class Shown(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            f = ev.data["dispatcher"].py_func
            if f.__module__.startswith("livesound."):  # not numba's own helpers
                name = f"{f.__module__.removeprefix('livesound.')}.{f.__qualname__}"
                print(f"compiling {name}", file=sys.stderr, flush=True)

        def on_end(self, ev: event.Event) -> None:
            pass

    event.register("numba:compile", Shown())


def _claim_state_dir(state_dir: Path | None) -> int:
    """Lock the state folder before the kernels load (a cold start compiles
    for half a minute), so ``livesound stop`` finds a starting engine and a
    second one is refused at once; until the engine takes over the stop
    signals, one of them ends the start cleanly (exit 0, nothing to save
    yet; a supervisor does not count it as a crash). The supervisor's spare
    engine locks only when it takes over. Returns an exit code, 0 to go on."""
    from livesound.places import default_state_dir
    from livesound.scenes.storage import StateDirLocked, hold_state_dir
    from livesound.supervisor import FORWARDED, STANDBY_ENV

    if os.environ.get(STANDBY_ENV) is not None:
        return 0
    try:
        hold_state_dir(state_dir or default_state_dir())
    except StateDirLocked as exc:
        return _fail(str(exc))
    for sig in FORWARDED:
        signal.signal(sig, lambda *_: os._exit(0))
    return 0


def cmd_engine(args, argv: list[str] | None = None) -> int:
    if args.supervise:
        from livesound.supervisor import supervise

        options = [a for a in (argv or sys.argv[1:]) if a != "--supervise"]
        return supervise(options[1:] if options[:1] == ["engine"] else options)
    if args.list_devices:
        return cmd_devices()
    code = _claim_state_dir(args.state_dir)
    if code:
        return code
    from livesound.places import kernels_cached

    if not kernels_cached():
        _show_compiling()  # importing the engine compiles the audio kernels
    from livesound import enginehost
    from livesound.audio.settings import ConfigError
    from livesound.osc.roles import load_permissions

    if not 0.2 <= args.lookahead_ms <= 5.0:
        return _fail(f"--lookahead-ms {args.lookahead_ms}: use 0.2 to 5 ms")
    try:
        permissions = load_permissions(args.show_config, args.buses)
    except ConfigError as exc:
        return _fail(str(exc))
    afc = args.afc
    if afc is None and args.show_config is not None:
        try:
            afc = enginehost.config_afc(args.show_config)
        except ConfigError as exc:
            return _fail(str(exc))
    connect = args.connect
    if args.jack and connect is None and args.show_config is not None:
        from livesound.audio.jackclient import config_connections

        try:
            connect = config_connections(args.show_config)
        except ConfigError as exc:
            return _fail(str(exc))
    cfg = enginehost.EngineConfig(
        inputs=args.inputs, buses=args.buses, sample_rate=args.rate, block=args.block,
        device=args.device, virtual=args.virtual, in_map=args.in_map,
        out_map=args.out_map, lookahead_ms=args.lookahead_ms,
        out_lookahead=args.out_lookahead, fallback=args.fallback,
        jack=args.jack, connect=connect, afc=afc,
    )  # fmt: skip
    host = enginehost.HostConfig(
        osc_host=args.osc_host, osc_port=args.osc_port, scenes=args.scenes,
        state_dir=args.state_dir, discovery=not args.no_discovery, quiet=args.quiet,
        permissions=permissions, name=args.name or args.jack or "livesound",
    )  # fmt: skip
    return enginehost.run(cfg, host)


def cmd_render(args) -> int:
    from livesound.audio.settings import ConfigError
    from livesound.control.registry import ParamError
    from livesound.render import print_progress, render_file

    try:
        settings = dict(_parse_setting(s) for s in args.set)
        paths = render_file(args.source, args.output, inputs=args.inputs,
                            buses=args.buses, block=args.block, settings=settings,
                            progress=print_progress if sys.stderr.isatty() else None)  # fmt: skip
    except (ConfigError, DeviceError, ParamError, ValueError) as exc:
        return _fail(str(exc))
    print(f"wrote {len(paths)} files to {args.output}")
    return 0


def cmd_engines() -> int:
    """``livesound engines``: the engines answering on the network."""
    from livesound.osc.discovery import find_engines

    found = find_engines()
    if not found:
        print("no engine answers on the network (is multicast allowed? "
              "an engine started with --no-discovery is not listed)")  # fmt: skip
        return EXIT_NO_ENGINE
    width = max(len(e.name) for e in found)
    for e in found:
        print(f"{e.name:<{width}}  {e.host}:{e.port}")
    return 0


def _engine_named(name: str):
    """The engine called ``name`` on the network, or why there is none."""
    from livesound.osc.discovery import find_engines

    found = find_engines()
    hits = [e for e in found if e.name.lower() == name.lower()]
    if len(hits) == 1:
        return hits[0]
    seen = ", ".join(f"{e.name} ({e.host}:{e.port})" for e in found) or "none"
    if hits:
        return f"{len(hits)} engines are called {name!r}: {seen}; use --host and --port"
    return f"no engine called {name!r} answers on the network; engines found: {seen}"


def cmd_console(
    host: str, port: int, fps: float = 30.0, pair: str | None = None
) -> int:
    """Run the terminal console attached to the engine at ``host``:``port``."""
    from livesound.console.app import ConsoleApp

    ConsoleApp(host, port, fps=fps, pair=pair).run()
    return 0


def cmd_default(args, argv: list[str]) -> int:
    """Plain ``livesound``: attach a console to the engine on this machine,
    starting one (in its own process group) if none answers. Without a
    terminal it is the headless engine, as a service manager expects."""
    if args.list_devices or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return cmd_engine(args, argv)
    from livesound.console.launch import EngineStartError, ensure_engine
    from livesound.places import default_state_dir

    try:
        started = ensure_engine(args.osc_port, argv, state_dir=args.state_dir or
                                default_state_dir())  # fmt: skip
    except EngineStartError as exc:
        return _fail(str(exc))
    if started:
        print(f"started the engine (pid {started}); it keeps running after the "
              "console quits", flush=True)  # fmt: skip
    return cmd_console("127.0.0.1", args.osc_port)


def cmd_bench(args) -> int:
    """``livesound bench SUBJECT``: each subject is a module of livesound.bench
    with ``run(emit, quick)``."""
    if args.takes != 1 and args.what != "feedback":
        return _fail("--takes is for livesound bench feedback")
    if args.takes < 1:
        return _fail(f"--takes must be 1 or more, not {args.takes}")
    from livesound.bench import common

    if args.what == "osc":
        from livesound.bench import osc as subject
    elif args.what == "scenes":
        from livesound.bench import scenes as subject
    elif args.what == "console":
        from livesound.bench import console as subject
    elif args.what == "feedback":
        from livesound.bench import feedback as subject
    elif args.what == "faults":
        from livesound.bench import faults as subject
    else:
        from livesound.bench import engine as subject
    options = {"takes": args.takes} if args.what == "feedback" else {}
    return common.report(
        lambda emit: subject.run(emit=emit, quick=args.quick, **options),
        as_json=args.json,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``livesound`` command."""
    raw = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args, unparsed = parser.parse_known_args(raw)
    if args.command == "set" and args.value is None and len(unparsed) == 1:
        args.value, unparsed = unparsed[0], []  # -6dB looks like an option
    if args.command == "set" and unparsed:
        return _fail('set takes one value; quote a name with spaces: '
                     'livesound set /ch/01/config/name "Lead vox"')  # fmt: skip
    if unparsed:
        parser.error(f"unrecognized arguments: {' '.join(unparsed)}")
    if args.command == "devices":
        return cmd_devices()
    if args.command == "engines":
        return cmd_engines()
    if args.command == "render":
        return cmd_render(args)
    if args.command == "osc-map":
        return cmd_osc_map(args)
    if args.command == "scene":
        return cmd_scene(args)
    if args.command == "state":
        return cmd_state(args)
    if args.command == "pair":
        return cmd_pair(args)
    if args.command == "layout":
        return cmd_layout(args)
    if args.command == "bench":
        return cmd_bench(args)
    if args.command == "console":
        if args.engine:
            found = _engine_named(args.engine)
            if isinstance(found, str):
                return _fail(found, EXIT_NO_ENGINE)
            args.host, args.port = found.host, found.port
        return cmd_console(args.host, args.port, args.fps, args.pair)
    if args.command == "engine":
        return cmd_engine(args, raw)
    if args.command == "get":
        return cmd_get(args)
    if args.command == "set":
        return cmd_set(args)
    if args.command == "stop":
        return cmd_stop(args)
    return cmd_default(args, raw)


if __name__ == "__main__":
    sys.exit(main())

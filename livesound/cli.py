"""The ``livesound`` command."""

import argparse
import sys
from pathlib import Path

from livesound.audio.settings import MAX_BLOCK, MIN_BLOCK, SAMPLE_RATES, DeviceError

EXIT_USAGE = 2


def _fail(message: str) -> int:
    print(f"livesound: error: {message}", file=sys.stderr)
    return EXIT_USAGE


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
                   "(cue) or - ; e.g. L,R,1,2,3,4")  # fmt: skip
    p.add_argument(
        "--lookahead-ms",
        type=float,
        default=1.0,
        help="limiter lookahead (and latency), 0.2-5 ms (default 1)",
    )
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
    ren = sub.add_parser("render", help="render a multichannel WAV through the mix",
                         description="Render a multichannel WAV (one channel per input) "
                         "through the engine; writes one WAV per output "
                         "(bus01..bus16, main_l, main_r, cue_l, cue_r).")  # fmt: skip
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
                                                   "console", "feedback"),
                       default="engine",
                       help="engine (default): the audio callback; osc: the OSC "
                       "server against a running engine; scenes: recall to live; "
                       "console: the terminal console's cost per frame and CPU; "
                       "feedback: the suppressor in simulated closed loops "
                       "(ΔMSG, SD, HOP, TRI; several minutes)")  # fmt: skip
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--quick", action="store_true", help="shorter measurements")
    sc = sub.add_parser("scene", help="list, save, recall, diff scenes",
                        description="Scenes are TOML files in the scene folder. "
                        "save, recall, go and back act on the running engine (over "
                        "OSC); list and diff read the files.")  # fmt: skip
    sc.add_argument("action", choices=("list", "save", "recall", "go", "back", "diff",
                                       "rename", "delete", "safe", "unsafe", "safes"),
                    help="what to do")  # fmt: skip
    sc.add_argument("names", nargs="*", help="scene name(s); diff takes one or two "
                    "(one: against the running engine's live state)")  # fmt: skip
    sc.add_argument("--scenes", type=Path, default=Path("scenes"), help="scene folder")
    sc.add_argument("--fade", type=float, default=0.0, help="fade time (s) when saving")
    sc.add_argument("--host", default="127.0.0.1", help="engine address")
    sc.add_argument("--port", type=int, default=10023, help="engine OSC port")
    sc.add_argument("--inputs", type=int, default=32, help="engine inputs")
    sc.add_argument("--buses", type=int, default=16, help="mix buses")
    _add_state_parser(sub)
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
    try:
        code, role, minutes = _ask_engine(
            args.host, args.port, "/ls/pair/new", args.role, args.valid
        )
    except DeviceError as exc:
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


def cmd_state(args) -> int:
    from livesound.places import default_state_dir
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
            _, refused = _ask_engine(args.host, args.port, "/ls/state/restore",
                                     args.generation)  # fmt: skip
            print(f"the running engine loaded generation {args.generation}"
                  + (f" ({refused} value(s) refused, see its log)" if refused else ""))  # fmt: skip
        else:
            autosave.make_newest(state, args.generation)
            print(f"no engine running: generation {args.generation} is now the "
                  f"newest autosave in {state}; the next start restores it")  # fmt: skip
    except (SceneError, DeviceError, OSError) as exc:
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
    live = _names_from_engine("127.0.0.1", args.port, names)
    if live:
        values.update(live)
    else:
        print("no engine answered on this machine: names from the virtual stage",
              file=sys.stderr)  # fmt: skip
        values.update(virtual_stage_show(args.inputs, args.buses))
    host = args.host or next(iter(ipv4_addresses()), "127.0.0.1")
    session = performer_layout(registry, values, args.mix, host, args.port)
    out = args.output or Path(f"mix-{args.mix}.json")
    out.write_text(json.dumps(session, indent=2))
    print(f"wrote {out}: Open Stage Control session for mix {args.mix}, "
          f"sending to {host}:{args.port}")  # fmt: skip
    return 0


def _ask_engine(host: str, port: int, address: str, *args) -> list:
    """Send one OSC command to the engine and return its reply's arguments."""
    from livesound.osc.client import Client, osc

    with Client(port, host) as client:
        try:
            reply = client.ask(osc(address, *args))
        except OSError:
            raise DeviceError(f"no engine answered on {host}:{port}") from None
    if reply.address == "/ls/error":
        raise DeviceError(f"the engine refused: {reply.params[-1]}")
    return list(reply.params)


def _live_values(host: str, port: int, registry) -> dict:
    """The running engine's whole show, read over OSCQuery (HTTP)."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as r:
            tree = json.load(r)
    except OSError:
        raise DeviceError(
            f"no OSCQuery answer from the engine at {host}:{port}"
        ) from None
    values = {}

    def walk(node: dict) -> None:
        for child in node.get("CONTENTS", {}).values():
            walk(child)
        path = node.get("FULL_PATH")
        if path in registry and "VALUE" in node:
            p, raw = registry[path], node["VALUE"][0]
            values[path] = p.from_norm(raw) if p.kind == "float" else raw

    walk(tree)
    return values


def cmd_scene(args) -> int:
    from livesound.control.registry import Registry
    from livesound.scenes import files
    from livesound.scenes.files import SceneError

    registry = Registry(args.inputs, args.buses)
    need = {"list": 0, "go": 0, "back": 0, "save": 1, "recall": 1, "delete": 1,
            "rename": 2, "diff": (1, 2), "safe": 1, "unsafe": 1,
            "safes": 0}[args.action]  # fmt: skip
    counts = need if isinstance(need, tuple) else (need,)
    if len(args.names) not in counts:
        return _fail(
            f"scene {args.action} takes {' or '.join(map(str, counts))} name(s)"
        )
    try:
        if args.action == "list":
            for p in sorted(args.scenes.glob("*.toml")):
                if p.name != "cuelist.toml":
                    print(p.stem)
            return 0
        if args.action == "diff":
            a = files.load(registry, args.scenes / f"{args.names[0]}.toml")
            if len(args.names) == 2:
                b = files.load(registry, args.scenes / f"{args.names[1]}.toml").values
                label = args.names[1]
            else:
                live = _live_values(args.host, args.port, registry)
                b = {k: v for k, v in live.items() if k in a.values}
                label = "live"
            rows = files.diff(registry, a.values, b)
            for address, left, right in rows:
                print(f"{address}  {args.names[0]}: {left}  {label}: {right}")
            print(f"{len(rows)} difference(s)")
            return 0
        address = {"save": "/ls/scene/save", "recall": "/ls/scene/recall",
                   "go": "/ls/scene/go", "back": "/ls/scene/back",
                   "delete": "/ls/scene/delete", "rename": "/ls/scene/rename",
                   "safe": "/ls/scene/safe", "unsafe": "/ls/scene/safe",
                   "safes": "/ls/scene/safes"}[args.action]  # fmt: skip
        extra = [float(args.fade)] if args.action == "save" else []
        if args.action in ("safe", "unsafe"):
            extra = [int(args.action == "safe")]
        reply = _ask_engine(args.host, args.port, address, *args.names, *extra)
    except (SceneError, DeviceError) as exc:
        return _fail(str(exc))
    print(" ".join(str(r) for r in reply))
    return 0


def cmd_engine(args) -> int:
    from livesound.places import kernels_cached

    if not kernels_cached():
        # Importing the engine compiles the audio kernels: say so first.
        print("compiling the audio engine (first start only, about 30 s)...",
              file=sys.stderr, flush=True)  # fmt: skip
    from livesound import enginehost
    from livesound.osc.roles import ConfigError as RolesError
    from livesound.osc.roles import load_permissions

    if args.list_devices:
        return cmd_devices()
    if not 0.2 <= args.lookahead_ms <= 5.0:
        return _fail(f"--lookahead-ms {args.lookahead_ms}: use 0.2 to 5 ms")
    try:
        permissions = load_permissions(args.show_config, args.buses)
    except RolesError as exc:
        return _fail(str(exc))
    cfg = enginehost.EngineConfig(
        inputs=args.inputs, buses=args.buses, sample_rate=args.rate, block=args.block,
        device=args.device, virtual=args.virtual, in_map=args.in_map,
        out_map=args.out_map, lookahead_ms=args.lookahead_ms,
    )  # fmt: skip
    host = enginehost.HostConfig(
        osc_host=args.osc_host, osc_port=args.osc_port, scenes=args.scenes,
        state_dir=args.state_dir, discovery=not args.no_discovery, quiet=args.quiet,
        permissions=permissions,
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
        return cmd_engine(args)
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
    from livesound.bench import common

    if args.what == "osc":
        from livesound.bench import osc as subject
    elif args.what == "scenes":
        from livesound.bench import scenes as subject
    elif args.what == "console":
        from livesound.bench import console as subject
    elif args.what == "feedback":
        from livesound.bench import feedback as subject
    else:
        from livesound.bench import engine as subject
    return common.report(
        lambda emit: subject.run(emit=emit, quick=args.quick), as_json=args.json
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``livesound`` command."""
    raw = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(raw)
    if args.command == "devices":
        return cmd_devices()
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
        return cmd_console(args.host, args.port, args.fps, args.pair)
    if args.command == "engine":
        return cmd_engine(args)
    return cmd_default(args, raw)


if __name__ == "__main__":
    sys.exit(main())

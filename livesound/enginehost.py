"""The engine process: the one module that wires the show together.

It opens the audio device (or the virtual stage), lays out the audio core,
puts the Mixer on it, and runs the control plane around them on one asyncio
loop: the OSC server, scenes and autosave, scene fades, the feedback
suppressor's thread, undo, OSCQuery and zeroconf discovery, and the meter
line. ``livesound engine`` is ``run(EngineConfig(...), HostConfig(...))``.
"""

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from livesound.audio import devices
from livesound.audio import layout as L
from livesound.audio.core import AudioCore
from livesound.audio.meters import MeterPoller, Meters
from livesound.audio.settings import MAX_BLOCK, ConfigError, DeviceError, check_settings
from livesound.control.mixer import Mixer
from livesound.control.undo import UndoJournal
from livesound.feedback import remote as feedback_remote
from livesound.feedback.suppressor import FeedbackThread, Suppressor
from livesound.osc.discovery import advertise
from livesound.osc.oscquery import OscQueryHttpServer
from livesound.osc.roles import Permissions
from livesound.osc.server import OscServer
from livesound.places import default_state_dir
from livesound.scenes import remote as scenes_remote
from livesound.scenes.manager import SceneManager
from livesound.scenes.storage import StateDirLocked, lock_state_dir
from livesound.virtual.device import VirtualDevice
from livesound.virtual.room import stage_room
from livesound.virtual.show import virtual_stage_show
from livesound.virtual.stage import STAGE_CHANNELS, render_stage

MAX_INPUTS = 128
MAX_BUSES = 16
FADE_TICK_S = 0.01  # scene fades move every 10 ms; the audio plane ramps between
METER_TICK_S = 1 / 30


@dataclass
class EngineConfig:
    """How to start the audio side (all sizes fixed until restart)."""

    inputs: int = 32
    buses: int = 16
    sample_rate: int = 48000
    block: int = 64
    device: str | None = None
    virtual: bool = False
    in_map: str | None = None
    out_map: str | None = None
    lookahead_ms: float = 1.0


@dataclass
class HostConfig:
    """How to run the control plane around the audio."""

    osc_host: str = "0.0.0.0"
    osc_port: int = 10023
    scenes: Path = Path("scenes")
    state_dir: Path | None = None
    discovery: bool = True
    quiet: bool = False
    permissions: Permissions | None = None


def parse_in_map(spec: str, n_in: int) -> list[int]:
    """``"1,2,0,3"``: engine input (1-based, 0 = unused) for each device input."""
    try:
        chans = [int(x) for x in spec.split(",")]
    except ValueError:
        raise ConfigError(
            f"--in-map {spec!r}: use input numbers like 1,2,0,3"
        ) from None
    bad = [c for c in chans if not 0 <= c <= n_in]
    if bad:
        raise ConfigError(f"--in-map: inputs are 1..{n_in} (0 = unused), got {bad[0]}")
    return [c - 1 for c in chans]


def parse_out_map(spec: str, n_bus: int) -> list[int]:
    """``"L,R,1,2"``: engine output for each device output (- = unused)."""
    names = L.output_names(n_bus)
    result = []
    for item in spec.split(","):
        item = item.strip().upper()
        if item in ("-", "0", ""):
            result.append(-1)
        elif item in names:
            result.append(names.index(item))
        else:
            raise ConfigError(
                f"--out-map: {item!r} is not an output; use 1..{n_bus}, L, R, CL, CR or -"
            )
    return result


class Engine:
    """The audio side of a running show: device, audio core, Mixer, and the
    feedback suppressor that listens to the outputs."""

    def __init__(self, cfg: EngineConfig) -> None:
        check_settings(cfg.sample_rate, cfg.block)
        if not 1 <= cfg.inputs <= MAX_INPUTS:
            raise ConfigError(f"--inputs {cfg.inputs}: use 1 to {MAX_INPUTS}")
        if not 2 <= cfg.buses <= MAX_BUSES or cfg.buses % 2:
            raise ConfigError(
                f"--buses {cfg.buses}: use an even number from 2 to {MAX_BUSES}"
            )
        self.cfg = cfg
        n_out = L.n_outputs(cfg.buses)
        device = None
        virtual = cfg.virtual
        if not virtual:
            if cfg.device is None and not any(
                d["outputs"] for d in devices.list_devices()
            ):
                virtual = True  # no sound card: the virtual stage
            else:
                device = devices.find_device(cfg.device)
        if virtual:
            phys_in, phys_out = len(STAGE_CHANNELS), n_out
        else:
            phys_in = min(device["inputs"], cfg.inputs)
            phys_out = min(device["outputs"], n_out)
        in_map = parse_in_map(cfg.in_map, cfg.inputs) if cfg.in_map else None
        out_map = parse_out_map(cfg.out_map, cfg.buses) if cfg.out_map else None
        if in_map is not None:
            phys_in = len(in_map)
        if out_map is not None:
            phys_out = len(out_map)
        dims = L.Dims(
            n_in=cfg.inputs, n_bus=cfg.buses, sample_rate=cfg.sample_rate,
            max_block=MAX_BLOCK, phys_in=phys_in, phys_out=phys_out,
            lookahead_ms=cfg.lookahead_ms,
        )  # fmt: skip
        self.core = AudioCore(dims)
        if in_map is not None:
            self.core.arrays["in_map"][:] = in_map
        if out_map is not None:
            self.core.arrays["out_map"][:] = out_map
        self.mixer = Mixer(self.core.memory)
        if virtual:
            self.mixer.set_many(virtual_stage_show(cfg.inputs, cfg.buses))
            stage = render_stage(cfg.sample_rate)
            room = stage_room(cfg.sample_rate, cfg.block, cfg.buses,
                              self.core.arrays["out_map"], phys_in)  # fmt: skip
            self.device = VirtualDevice(self.core, cfg.block, stage, room)
        else:
            self.device = devices.PortAudioDevice(self.core, device, cfg.block)
        self.virtual = virtual
        self.suppressor = Suppressor(self.mixer, self.core, cfg.sample_rate)
        self.feedback = FeedbackThread(self.suppressor)

    def start(self) -> None:
        """Start audio; from now on the Mixer publishes from its own thread."""
        self.device.start()
        self.mixer.start_publishing()
        self.feedback.start()

    def stop(self) -> None:
        self.feedback.stop()
        self.device.stop()
        self.mixer.stop_publishing()

    def clock(self) -> float:
        """The audio clock: seconds of audio processed since start."""
        return int(self.core.hdr[L.H_FRAMES]) / self.cfg.sample_rate

    def status(self) -> dict:
        """What the status bar shows."""
        s = self.core.stats()
        info = self.device.info
        period_us = 1e6 * info.block / info.sample_rate
        lookahead_ms = 1000 * self.core.memory.latency / info.sample_rate
        return {
            "device": info.name,
            "inputs": self.cfg.inputs,
            "buses": self.cfg.buses,
            "sample_rate": info.sample_rate,
            "block": info.block,
            "latency_ms": info.latency_ms + lookahead_ms,
            "dsp_load": s.mean_us / period_us if s.blocks else 0.0,
            "xruns": s.xruns,
            "stalled": self.mixer.stalled,
            "blocks": s.blocks,
            "callback_us": (s.min_us, s.mean_us, s.max_us),
            "notches": self.suppressor.counts(),
            "analysis_missed": self.suppressor.taps.missed,
        }


def meter_line(engine: Engine, meters: Meters, clients: int, storage: str = "") -> str:
    """The headless engine's one status line (a storage fault at its end)."""
    s = engine.status()
    nb = engine.cfg.buses
    main = " ".join(f"{db:6.1f}" for db in meters.out_peak_db[nb : nb + 2])
    gr = min(meters.limiter_gr_db[nb : nb + 2])
    return (f"{s['device']} {s['sample_rate'] / 1000:g} kHz/{s['block']} "
            f"lat {s['latency_ms']:.1f} ms  DSP {100 * s['dsp_load']:4.1f}%  "
            f"xruns {s['xruns']}  OSC {clients}  "
            f"main L/R {main} dBFS  lim {gr:5.1f} dB  "
            f"notches {s['notches']['live']} live {s['notches']['fixed']} fixed"
            + (f"  STORAGE: {storage}" if storage else ""))  # fmt: skip


def _scenes(engine: Engine, host: HostConfig, osc: OscServer) -> SceneManager:
    """Scenes for the running engine: restore the autosave, serve over OSC."""
    state = host.state_dir or default_state_dir()
    scenes = SceneManager(engine.mixer, host.scenes, state)
    scenes.check_files()
    restored = scenes.restore()
    if restored is not None:
        print(f"restored the show from the autosave in {state}"
              + (f" ({restored.path.name})" if restored.n else ""), flush=True)  # fmt: skip
    scenes_remote.register(osc, scenes, engine.clock)
    scenes.prepare_next()
    return scenes


async def _tick_fades(scenes: SceneManager, engine: Engine) -> None:
    while True:
        await asyncio.sleep(FADE_TICK_S)
        scenes.tick(engine.clock())


async def _discovery(engine: Engine, host: str, port: int):
    """OSCQuery over HTTP (TCP, same port number as OSC) and a zeroconf
    advertisement of both; a network that allows neither only loses them."""
    mixer = engine.mixer
    try:
        query = OscQueryHttpServer(
            mixer.registry, mixer.snapshot, port, host, port
        ).start()
    except OSError as exc:
        print(f"livesound: OSCQuery not served: {exc.strerror}", file=sys.stderr)
        query = None
    http_port = query.port if query is not None else None
    loop = asyncio.get_running_loop()
    advert = await loop.run_in_executor(None, advertise, "livesound", port, http_port)
    return query, advert


def _register_undo(osc: OscServer, journal: UndoJournal) -> None:
    def undo(args: list) -> list[tuple]:
        if len(args) > 1 or (args and not isinstance(args[0], str)):
            raise ValueError("takes nothing, or the address /ls/undo/peek named")
        return [("/ls/undo", *journal.undo(args[0] if args else None))]

    def peek(args: list) -> list[tuple]:
        step = journal.peek()
        return [("/ls/undo/peek", *step)] if step else [("/ls/undo/peek",)]

    osc.add_command("/ls/undo", undo)
    osc.add_command("/ls/undo/peek", peek, write=False)


async def serve(engine: Engine, host: HostConfig) -> None:
    """The engine's control plane, until SIGINT or SIGTERM."""
    poller = MeterPoller(engine.core)
    osc = OscServer(engine.mixer, host.permissions, meters=lambda: poller.latest,
                    status=engine.status)  # fmt: skip
    try:
        port = await osc.start(host.osc_host, host.osc_port)
    except OSError as exc:
        raise DeviceError(f"OSC port {host.osc_port}: {exc.strerror}") from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scenes = _scenes(engine, host, osc)
    feedback_remote.register(osc, engine.suppressor)
    journal = UndoJournal(engine.mixer)
    scenes.recalled.append(lambda name: journal.barrier())
    _register_undo(osc, journal)
    fades = loop.create_task(_tick_fades(scenes, engine))
    # Zeroconf registration takes a couple of seconds: never on the way of
    # the show starting (or of Ctrl-C).
    discovery = None
    if host.discovery:
        discovery = loop.create_task(_discovery(engine, host.osc_host, port))
    tty = sys.stdout.isatty()
    print(f"livesound engine running on {engine.device.info.name}, OSC on UDP "
          f"{port}; Ctrl-C stops", flush=True)  # fmt: skip
    shown = 0.0
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), METER_TICK_S)
            meters = poller.poll()
            scenes.autosave(engine.clock())
            now = loop.time()
            scenes.storage.retry(now)
            if not host.quiet and now - shown >= (0.25 if tty else 5.0):
                shown = now
                line = meter_line(engine, meters, len(osc.subscribers),
                                  scenes.storage.status())  # fmt: skip
                print(f"\r{line}\033[K" if tty else line, end="" if tty else "\n",
                      flush=True)  # fmt: skip
    finally:
        fades.cancel()
        scenes.storage.retry(float("inf"))
        scenes.autosave(float("inf"))
        await osc.aclose()
        if discovery is not None:
            query, advert = await discovery
            if query is not None:
                query.close()
            await loop.run_in_executor(None, advert.close)
        if tty and not host.quiet:
            print()


_state_lock: list[int] = []  # the lock file's descriptor, held until exit


def _lock_state(host: HostConfig) -> None:
    """One engine per state folder: take its lock before the audio device
    opens (``StateDirLocked`` if another engine has it)."""
    _state_lock.append(lock_state_dir(host.state_dir or default_state_dir()))


def run(cfg: EngineConfig, host: HostConfig) -> int:
    """Run the engine process until it is stopped; returns the exit code
    (2 with a one-line message for settings it cannot use)."""
    logging.basicConfig(
        level=logging.WARNING, format="\n%(asctime)s %(name)s: %(message)s"
    )
    try:
        _lock_state(host)
    except StateDirLocked as exc:
        print(f"livesound: error: {exc}", file=sys.stderr)
        return 2
    try:
        engine = Engine(cfg)
        engine.start()
    except (ConfigError, DeviceError) as exc:
        print(f"livesound: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(engine, host))
    except DeviceError as exc:
        print(f"livesound: error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.stop()
        print(f"stopped; {engine.core.stats().xruns} xruns", flush=True)
    return 0

"""The engine process: the one module that wires the show together.

It opens the audio device (or the virtual stage), lays out the audio core,
puts the Mixer on it, and runs the control plane around them on one asyncio
loop: the OSC server, scenes and autosave, scene fades, the feedback
suppressor's thread, undo, OSCQuery and zeroconf discovery, and the meter
line. ``livesound engine`` is ``run(EngineConfig(...), HostConfig(...))``.
"""

import asyncio
import contextlib
import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from livesound.audio import devices, jackclient
from livesound.audio import layout as L
from livesound.audio.core import AudioCore
from livesound.audio.meters import MeterPoller, Meters
from livesound.audio.settings import (
    MAX_BLOCK,
    ConfigError,
    DeviceError,
    check_settings,
    show_config_table,
)
from livesound.audio.watchdog import AudioWatchdog
from livesound.audio.watchdog import Device as Watched
from livesound.control.afcpaths import AfcPaths
from livesound.control.events import Change
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
from livesound.scenes.storage import StateDirLocked, hold_state_dir
from livesound.supervisor import STANDBY_ENV
from livesound.virtual.device import VirtualDevice
from livesound.virtual.room import stage_room
from livesound.virtual.show import virtual_stage_show
from livesound.virtual.stage import STAGE_CHANNELS, render_stage

MAX_INPUTS = 128
MAX_BUSES = 16
FADE_TICK_S = 0.01  # scene fades move every 10 ms; the audio plane ramps between
METER_TICK_S = 1 / 30
AUDIO_STATUS = "/ls/status/audio"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
EXIT_S = 1.8  # from a stop signal to the process gone (the promise is 2 s)
RESUME_ENV = "LIVESOUND_RESUME_DEVICE"  # set for a restart in place
WARM_S = 5.0


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
    out_lookahead: list[str] | None = None  # "1-8=0.25": shorter for these outputs
    fallback: str | None = None  # a device (or "virtual") while the first is gone
    jack: str | None = None  # a native JACK client of this name instead of PortAudio
    connect: list[str] | None = None  # its connections (None: the default ones)
    afc: list[str] | None = None  # "1=1": a feedback canceller, mic 1 -> bus 1


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
    name: str = "livesound"  # advertised on the network, in /ls/stats


# The virtual stage's band, rendered once per process (a spare engine has
# it ready before it takes over).
_stage = functools.cache(render_stage)


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
                f"--out-map: {item!r} is not an output; use 1..{n_bus}, L, R, CL, CR, "
                f"M, MTX1..MTX{L.N_MTX} or -"
            )
    return result


MIN_LOOKAHEAD_MS, MAX_LOOKAHEAD_MS = 0.2, 5.0


def parse_out_lookahead(specs: list[str], n_bus: int, default_ms: float
                        ) -> tuple[float, ...]:  # fmt: skip
    """``["1-8=0.25", "L,R=0.5"]``: each output's limiter lookahead (ms).

    Outputs are named as in ``--out-map`` (bus numbers, ranges of them, L,
    R, CL, CR, M, MTX1..MTX6). Stereo pairs keep one lookahead, so that
    both sides of an in-ear mix (a bus pair that may be linked), the main or the cue stay
    aligned: a spec that parts a pair is refused.
    """
    names = L.output_names(n_bus)
    ms = [default_ms] * len(names)
    for spec in specs:
        outputs, _, value = spec.partition("=")
        try:
            lookahead = float(value)
        except ValueError:
            raise ConfigError(f"--out-lookahead {spec!r}: write OUTPUTS=MS, "
                              "e.g. 1-8=0.25") from None  # fmt: skip
        if not MIN_LOOKAHEAD_MS <= lookahead <= MAX_LOOKAHEAD_MS:
            raise ConfigError(f"--out-lookahead {spec!r}: use {MIN_LOOKAHEAD_MS} to "
                              f"{MAX_LOOKAHEAD_MS} ms")  # fmt: skip
        for item in outputs.upper().split(","):
            first, _, last = item.strip().partition("-")
            span = [first] if not last else [str(b) for b in range(
                int(first) if first.isdigit() else 0,
                (int(last) if last.isdigit() else -1) + 1)]  # fmt: skip
            if not span or any(name not in names for name in span):
                raise ConfigError(f"--out-lookahead {spec!r}: {item!r} is not an "
                                  f"output; use 1..{n_bus}, L, R, CL, CR, M, "
                                  f"MTX1..MTX{L.N_MTX}")  # fmt: skip
            for name in span:
                ms[names.index(name)] = lookahead
    pairs = [(b, b + 1) for b in range(0, n_bus, 2)]
    pairs += [L.main_outputs(n_bus), L.cue_outputs(n_bus)]
    for a, b in pairs:
        if ms[a] != ms[b]:
            raise ConfigError(f"--out-lookahead: {names[a]} and {names[b]} are a "
                              "stereo pair and keep one lookahead")  # fmt: skip
    return tuple(ms)


def parse_afc(specs: list[str], n_in: int, n_bus: int, block: int
              ) -> tuple[tuple[int, int], ...]:  # fmt: skip
    """``["1=1", "2=L"]``: adaptive feedback canceller paths, each a mic's
    input number and an output named as in ``--out-map`` (any but the cue,
    which has no loudspeaker), as 0-based (input, output) pairs.
    The canceller works on partitions of ``block`` frames: a power of two."""
    names = L.output_names(n_bus)
    cue = [names[o] for o in L.cue_outputs(n_bus)]
    paths = []
    for spec in specs:
        mic, _, output = spec.upper().partition("=")
        if (not mic.isdigit() or not 1 <= int(mic) <= n_in or output not in names
                or output in cue):  # fmt: skip
            raise ConfigError(f"--afc {spec!r}: write MIC=OUTPUT, a mic input 1..{n_in} "
                              f"and an output 1..{n_bus}, L, R, M or MTX1..MTX{L.N_MTX}, "
                              "e.g. 1=1")  # fmt: skip
        path = (int(mic) - 1, names.index(output))
        if path in paths:
            raise ConfigError(f"--afc {spec!r}: that path is given twice")
        paths.append(path)
    if paths and block & (block - 1):
        raise ConfigError(f"--afc needs a --block that is a power of two "
                          f"(16 to 1024), not {block}")  # fmt: skip
    return tuple(paths)


def config_afc(path: Path) -> list[str] | None:
    """The ``paths`` of the show config's ``[afc]`` table, as ``--afc`` takes
    them (None when it has none)::

        [afc]
        paths = ["1=1", "2=L"]
    """
    paths = show_config_table(path, "afc").get("paths")
    if paths is None:
        return None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(
            f'{path}: [afc] paths is a list of "MIC=OUTPUT", e.g. ["1=1"]'
        )
    return paths


class Engine:
    """The audio side of a running show: device, audio core, Mixer, the
    feedback suppressor that listens to the outputs, and the watchdog that
    notices a lost device and brings it back.

    ``resume``: the device as it was before the process restarted in place
    after losing it; if it is still missing the engine starts without it
    and the watchdog goes on looking."""

    def __init__(self, cfg: EngineConfig, resume: dict | None = None) -> None:
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
        if cfg.jack and (cfg.in_map or cfg.out_map or cfg.device):
            raise ConfigError(
                "--jack: route with --connect, not --device/--in-map/--out-map"
            )
        if resume is not None:
            device = devices.find_again(resume) or resume
        elif not virtual and not cfg.jack:
            if cfg.device is None and not any(
                d["outputs"] for d in devices.list_devices()
            ):
                virtual = True  # no sound card: the virtual stage
            else:
                device = devices.find_device(cfg.device)
        if virtual:
            phys_in, phys_out = len(STAGE_CHANNELS), n_out
        elif cfg.jack:
            phys_in, phys_out = cfg.inputs, n_out  # a port for every channel
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
            out_lookahead_ms=parse_out_lookahead(cfg.out_lookahead, cfg.buses,
                                                 cfg.lookahead_ms)
            if cfg.out_lookahead else (),
            afc_paths=parse_afc(cfg.afc or [], cfg.inputs, cfg.buses, cfg.block),
            afc_block=cfg.block,
        )  # fmt: skip
        self.core = AudioCore(dims)
        if in_map is not None:
            self.core.arrays["in_map"][:] = in_map
        if out_map is not None:
            self.core.arrays["out_map"][:] = out_map
        self.mixer = Mixer(self.core.memory)
        self.afc = AfcPaths(self.mixer)
        reopen = fallback = None
        if virtual:
            self.mixer.set_many(virtual_stage_show(cfg.inputs, cfg.buses))
            primary = self._virtual_card()()
        elif cfg.jack:
            connect = None
            if cfg.connect is not None:
                connect = [
                    jackclient.parse_connect(c) for c in cfg.connect if c != "none"
                ]
            primary = jackclient.JackDevice(self.core, cfg.jack, cfg.buses, connect,
                                            self._port_names())  # fmt: skip
            reopen = functools.partial(jackclient.reopen, self.core, cfg.jack,
                                       cfg.buses, connect, self._port_names)  # fmt: skip
            self.mixer.subscribe(self._renamed)
        else:
            try:
                primary = devices.PortAudioDevice(self.core, device, cfg.block)
            except DeviceError:
                if resume is None:
                    raise
                primary = None  # still gone: the watchdog looks for it
            reopen = self._reopen(device)
        if cfg.fallback and not virtual:
            fallback = self._fallback(cfg.fallback)
        self.spec = device  # the PortAudio device (None: virtual stage, JACK client)
        self.info = primary.info if primary else devices.DeviceInfo(
            device["name"], cfg.sample_rate, cfg.block, 0.0)  # fmt: skip
        self.virtual = virtual
        self.watchdog = AudioWatchdog(self.core, primary, self.info.name, reopen,
                                      fallback)  # fmt: skip
        self.suppressor = Suppressor(self.mixer, self.core, cfg.sample_rate)
        self.feedback = FeedbackThread(self.suppressor)

    def _port_names(self) -> dict[str, str]:
        """The show's channel, bus and main names by JACK port."""
        names = {}
        for address, value in self.mixer.snapshot().items():
            for port in jackclient.port_of(address):
                names[port] = str(value)
        return names

    def _renamed(self, change: Change) -> None:
        ports = jackclient.port_of(change.address)
        device = self.watchdog.device
        if ports and isinstance(device, jackclient.JackDevice):
            device.rename(dict.fromkeys(ports, str(change.new)))

    def _virtual_card(self) -> Callable[[], VirtualDevice]:
        """A maker of virtual sound cards playing the stage (rendered once)."""
        cfg, core = self.cfg, self.core
        stage = _stage(cfg.sample_rate)
        room = stage_room(cfg.sample_rate, cfg.block, cfg.buses,
                          core.arrays["out_map"], core.dims.phys_in)  # fmt: skip
        return lambda: VirtualDevice(core, cfg.block, stage, room)

    def _reopen(self, device: dict) -> Callable:
        def reopen(old: devices.PortAudioDevice | None):
            playing = self.watchdog.device
            busy = isinstance(playing, devices.PortAudioDevice) and playing is not old
            return devices.reopen(self.core, device, self.cfg.block, old, busy)

        return reopen

    def _fallback(self, spec: str) -> Callable:
        if spec == "virtual":
            return self._virtual_card()
        return lambda: devices.PortAudioDevice(
            self.core, devices.find_device(spec), self.cfg.block
        )

    @property
    def device(self) -> Watched | None:
        """The device playing now (the fallback while the first is gone)."""
        return self.watchdog.device

    def start(self) -> None:
        """Start audio; from now on the Mixer publishes from its own thread."""
        if self.device is not None:
            self.device.start()
        self.watchdog.start()
        self.mixer.start_publishing()
        self.feedback.start()

    def stop(self) -> None:
        """Stop audio, each device within a time limit; a lost device is not
        even asked (PortAudio may hang on it for good)."""
        self.feedback.stop()
        self.watchdog.stop()
        w = self.watchdog
        for device in {id(d): d for d in (w.device, w.primary) if d}.values():
            if w.fault is None or device is not w.primary:
                device.stop()
        self.mixer.stop_publishing()

    def status(self) -> dict:
        """What the status bar shows."""
        s = self.core.stats()
        w = self.watchdog
        # A JACK client's period can change under it: ask the playing device.
        info = (
            w.device.info
            if w.device is not None and w.device is w.primary
            else self.info
        )
        period_us = 1e6 * info.block / info.sample_rate
        lookahead_ms = 1000 * self.core.memory.latency / info.sample_rate
        return {
            "device": info.name,
            "inputs": self.cfg.inputs,
            "buses": self.cfg.buses,
            "sample_rate": info.sample_rate,
            "block": info.block,
            "latency_ms": info.latency_ms + lookahead_ms,
            # Outputs with a lookahead of their own (in-ear mixes) are
            # earlier by the difference.
            "lookahead_ms": [
                1000 * n / info.sample_rate for n in self.core.dims.lookaheads
            ],
            "dsp_load": s.mean_us / period_us if s.blocks else 0.0,
            "xruns": s.xruns,
            "stalled": self.mixer.stalled,
            "blocks": s.blocks,
            "callback_us": (s.min_us, s.mean_us, s.max_us),
            "notches": self.suppressor.counts(),
            "margins_db": self.suppressor.margins(),
            "analysis_missed": self.suppressor.taps.missed,
            "playing": self.device.info.name if self.device else None,
            "pid": os.getpid(),
            "first_block_at": self.watchdog.first_block_at,
            "go": dict(zip(("count", "blocks"), self.mixer.last_go(), strict=True)),
        }


def meter_line(engine: Engine, meters: Meters, clients: int, storage: str = "") -> str:
    """The headless engine's one status line (a lost device and a storage
    fault at its end)."""
    s = engine.status()
    nb = engine.cfg.buses
    main = " ".join(f"{db:6.1f}" for db in meters.out_peak_db[nb : nb + 2])
    gr = min(meters.limiter_gr_db[nb : nb + 2])
    audio = engine.watchdog.status()
    return (f"{s['device']} {s['sample_rate'] / 1000:g} kHz/{s['block']} "
            f"lat {s['latency_ms']:.1f} ms  DSP {100 * s['dsp_load']:4.1f}%  "
            f"xruns {s['xruns']}  OSC {clients}  "
            f"main L/R {main} dBFS  lim {gr:5.1f} dB  "
            f"notches {s['notches']['live']} live {s['notches']['fixed']} fixed"
            + (f"  {audio}" if audio else "")
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
    scenes_remote.register(osc, scenes, time.monotonic)
    scenes.refresh()  # every scene read and derived ahead of its recall
    return scenes


async def _tick_fades(scenes: SceneManager) -> None:
    # The wall clock, not the audio's: fades go on while the device is gone.
    while True:
        await asyncio.sleep(FADE_TICK_S)
        scenes.tick(time.monotonic())


async def _discovery(engine: Engine, host: HostConfig, port: int):
    """OSCQuery over HTTP (TCP, same port number as OSC) and a zeroconf
    advertisement of both; a network that allows neither only loses them."""
    mixer = engine.mixer
    try:
        query = OscQueryHttpServer(
            mixer.registry, mixer.snapshot, port, host.osc_host, port
        ).start()
    except OSError as exc:
        print(f"livesound: OSCQuery not served: {exc.strerror}", file=sys.stderr)
        query = None
    http_port = query.port if query is not None else None
    loop = asyncio.get_running_loop()
    advert = await loop.run_in_executor(None, advertise, host.name, port, http_port,
                                        host.osc_host)  # fmt: skip
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


def _register_audio(osc: OscServer, engine: Engine) -> None:
    """The lost device over OSC: ``/ls/status/audio`` answered and pushed to
    ``/xremote`` subscribers when it changes, ``audio`` in ``/ls/stats``."""
    watchdog = engine.watchdog

    def status(args: list) -> list[tuple]:
        return [(AUDIO_STATUS, watchdog.status())]

    osc.add_command(AUDIO_STATUS, status, write=False)
    watchdog.listeners.append(lambda text: osc.push(AUDIO_STATUS, text))
    osc.add_stats("audio", lambda: watchdog.fault and watchdog.fault.report())


class _Stop:
    """Why the control plane ends: a signal, or a restart in place."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.at = 0.0  # time.monotonic() of the request
        self.restart = ""  # the reason, when the process restarts in place

    def request(self, restart: str = "") -> None:
        if not self.event.is_set():
            self.at, self.restart = time.monotonic(), restart
            self.event.set()


async def serve(engine: Engine, host: HostConfig) -> str:
    """The engine's control plane, until SIGINT, SIGTERM, SIGHUP or SIGQUIT
    (or until the lost device needs a fresh process: then its reason is
    returned). The show is saved on the way out."""
    poller = MeterPoller(engine.core)
    osc = OscServer(engine.mixer, host.permissions, meters=lambda: poller.latest,
                    status=engine.status)  # fmt: skip
    try:
        port = await osc.start(host.osc_host, host.osc_port)
    except OSError as exc:
        raise DeviceError(f"OSC port {host.osc_port}: {exc.strerror}") from None
    loop = asyncio.get_running_loop()
    stop = _Stop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.request)
    engine.watchdog.restart = lambda reason: loop.call_soon_threadsafe(
        stop.request, reason
    )
    scenes = _scenes(engine, host, osc)
    feedback_remote.register(osc, engine.suppressor)
    feedback_remote.register_afc(osc, engine.afc)
    journal = UndoJournal(engine.mixer)
    scenes.recalled.append(lambda name: journal.barrier())
    scenes.recalled.append(engine.afc.scene_recalled)
    _register_undo(osc, journal)
    _register_audio(osc, engine)
    osc.add_stats("name", lambda: host.name)
    osc.add_stats("afc", engine.afc.stats)
    fades = loop.create_task(_tick_fades(scenes))
    # Zeroconf registration takes a couple of seconds: never on the way of
    # the show starting (or of Ctrl-C).
    discovery = None
    if host.discovery:
        discovery = loop.create_task(_discovery(engine, host, port))
    tty = sys.stdout.isatty()
    print(f"livesound engine running on {engine.info.name}, OSC on UDP "
          f"{port}; Ctrl-C stops", flush=True)  # fmt: skip
    if engine.spec is not None and "JACK" in engine.spec["hostapi"]:
        print("on JACK through PortAudio: `--jack NAME` gives named ports and "
              "comes back in place within a second if the server restarts", flush=True)  # fmt: skip
    shown = 0.0
    try:
        while not stop.event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.event.wait(), METER_TICK_S)
            meters = poller.poll()
            now = time.monotonic()  # autosave runs on the wall clock too
            scenes.autosave(now)
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
        if not stop.restart:
            # Saved: from here nothing may hold the process past its
            # deadline (zeroconf's goodbye, a device that does not let go).
            _exit_after(
                max(0.2, EXIT_S - (time.monotonic() - (stop.at or time.monotonic()))),
                engine,
            )
        await osc.aclose()
        if discovery is not None and not stop.restart:
            query, advert = await discovery
            if query is not None:
                query.close()
            await loop.run_in_executor(None, advert.close)
        if tty and not host.quiet:
            print()
    return stop.restart


def _stopped(engine: Engine) -> None:
    print(f"stopped; {engine.core.stats().xruns} xruns", flush=True)


def _exit_after(seconds: float, engine: Engine) -> None:
    """End the process in ``seconds`` whatever still runs (called once the
    show is saved)."""

    def end() -> None:
        _stopped(engine)
        _flush()
        os._exit(0)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _restart_in_place(engine: Engine, reason: str) -> None:
    """Run this engine again in this process (same pid, same command line):
    PortAudio only reaches a JACK server that came back from a fresh
    process. The show comes back from the autosave just written."""
    print(f"restarting in place: {reason}", flush=True)
    os.environ[RESUME_ENV] = json.dumps(engine.spec)
    _flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _stand_by(cfg: EngineConfig) -> None:
    """The supervisor's spare engine (``LIVESOUND_STANDBY`` set): run a
    virtual engine of the same size for a moment, so that every kernel is
    loaded and the stage rendered, then wait on stdin for the word to take
    over from an engine that crashed (end of input: not needed, end)."""
    if os.environ.pop(STANDBY_ENV, None) is None:
        return
    warm = Engine(replace(cfg, virtual=True, device=None, fallback=None,
                          in_map=None, out_map=None))  # fmt: skip
    warm.start()
    deadline = time.monotonic() + WARM_S
    while warm.core.stats().blocks < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    warm.stop()
    print(f"spare engine ready (pid {os.getpid()})", flush=True)
    if not sys.stdin.readline():
        _flush()
        os._exit(0)


def _resumed() -> dict | None:
    """The lost device this process was restarted in place for, if any."""
    text = os.environ.pop(RESUME_ENV, None)
    if text is None:
        return None
    with contextlib.suppress(ValueError):
        device = json.loads(text)
        if isinstance(device, dict) and {"name", "hostapi"} <= device.keys():
            print(f"restarted in place for {device['name']}", flush=True)
            return device
    return None


GIL_SWITCH_S = 0.0005


def run(cfg: EngineConfig, host: HostConfig) -> int:
    """Run the engine process until it is stopped; returns the exit code
    (2 with a one-line message for settings it cannot use). A stopped
    engine ends the process itself once the show is saved and audio has
    stopped: PortAudio's own shutdown at exit can hang, or abort, once a
    JACK server went away, so it is only done when none did."""
    logging.basicConfig(
        level=logging.WARNING, format="\n%(asctime)s %(name)s: %(message)s"
    )
    # Background Python work (scenes derived ahead, the suppressor's
    # analysis) hands the interpreter to a waiting request within a
    # millisecond, not Python's default 5: a GO lands in the next block.
    sys.setswitchinterval(GIL_SWITCH_S)
    _stand_by(cfg)
    resume = _resumed()
    try:  # one engine per state folder, before the audio device opens
        hold_state_dir(host.state_dir or default_state_dir())
    except StateDirLocked as exc:
        print(f"livesound: error: {exc}", file=sys.stderr)
        return 2
    try:
        engine = Engine(cfg, resume)
        engine.start()
    except (ConfigError, DeviceError) as exc:
        print(f"livesound: error: {exc}", file=sys.stderr)
        return 2
    restart = ""
    try:
        restart = asyncio.run(serve(engine, host))
    except DeviceError as exc:
        print(f"livesound: error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.stop()
        if restart:
            _restart_in_place(engine, restart)
        _stopped(engine)
    if not (engine.watchdog.lost_once or resume):
        devices.shut_down()  # a device that went away would hang it
    _flush()
    os._exit(0)

"""The engine process: device, audio core and Mixer, wired together."""

from dataclasses import dataclass

from livesound.control.mixer import Mixer
from livesound.control.stageshow import virtual_stage_show
from livesound.engine import devices
from livesound.engine.core import AudioCore
from livesound.engine.layout import Dims
from livesound.engine.stage import STAGE_CHANNELS, render_stage
from livesound.engine.stageroom import stage_room
from livesound.feedback.suppressor import FeedbackThread, Suppressor

OUTPUT_NAMES_EXTRA = ("L", "R", "CL", "CR")  # main L/R and cue L/R after the buses


class ConfigError(ValueError):
    """A command-line setting the engine cannot use; the message says why."""


@dataclass
class EngineConfig:
    """How to start the engine (all sizes fixed until restart)."""

    inputs: int = 32
    buses: int = 16
    sample_rate: int = 48000
    block: int = 64
    device: str | None = None
    virtual: bool = False
    in_map: str | None = None
    out_map: str | None = None
    lookahead_ms: float = 1.0


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


def output_names(n_bus: int) -> list[str]:
    """Names of the outputs in engine order: 1..n_bus, L, R, CL, CR."""
    return [str(b + 1) for b in range(n_bus)] + list(OUTPUT_NAMES_EXTRA)


def parse_out_map(spec: str, n_bus: int) -> list[int]:
    """``"L,R,1,2"``: engine output for each device output (- = unused)."""
    names = output_names(n_bus)
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
    """A running show: owns the device, the audio core and the Mixer."""

    def __init__(self, cfg: EngineConfig) -> None:
        devices.check_settings(cfg.sample_rate, cfg.block)
        if not 1 <= cfg.inputs <= 128:
            raise ConfigError(f"--inputs {cfg.inputs}: use 1 to 128")
        if not 2 <= cfg.buses <= 16 or cfg.buses % 2:
            raise ConfigError(f"--buses {cfg.buses}: use an even number from 2 to 16")
        self.cfg = cfg
        n_out = cfg.buses + 4
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
        dims = Dims(
            n_in=cfg.inputs, n_bus=cfg.buses, sample_rate=cfg.sample_rate,
            max_block=devices.MAX_BLOCK, phys_in=phys_in, phys_out=phys_out,
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
            self.device = devices.VirtualDevice(self.core, cfg.block, stage, room)
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

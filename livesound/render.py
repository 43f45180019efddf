"""Offline render: a multichannel WAV in, one WAV per output, same kernels."""

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from livesound.audio.layout import N_MTX, Dims, n_outputs, output_names
from livesound.audio.settings import SAMPLE_RATES, ConfigError, check_settings
from livesound.control.offline import BlockEngine

CHUNK = 1 << 16  # frames read from disk at a time


def output_file_names(n_bus: int) -> list[str]:
    """File stem of every output: bus01.., main_l, main_r, cue_l, cue_r,
    main_m (the mono bus), mtx01..mtx06."""
    extra = {"L": "main_l", "R": "main_r", "CL": "cue_l", "CR": "cue_r",
             "M": "main_m"}  # fmt: skip
    extra |= {f"MTX{m + 1}": f"mtx{m + 1:02d}" for m in range(N_MTX)}
    return [
        f"bus{int(name):02d}" if name.isdigit() else extra[name]
        for name in output_names(n_bus)
    ]


def render_file(
    source: Path,
    out_dir: Path,
    *,
    inputs: int = 32,
    buses: int = 16,
    block: int = 64,
    settings: Mapping[str, Any] = (),
    progress: Callable[[float], None] | None = None,
) -> list[Path]:
    """Render ``source`` through the engine; returns the files written.

    Output files are aligned with the input: the limiter's lookahead is
    trimmed from their start and flushed at their end.
    """
    try:
        info = sf.info(str(source))
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise ConfigError(f"{source}: cannot read audio ({exc})") from None
    if info.samplerate not in SAMPLE_RATES:
        rates = ", ".join(str(r) for r in SAMPLE_RATES)
        raise ConfigError(f"{source}: sample rate {info.samplerate} Hz; use {rates}")
    if not 1 <= info.channels <= inputs:
        raise ConfigError(
            f"{source}: {info.channels} channels, but the engine has {inputs} inputs; "
            f"give a WAV with 1 to {inputs} channels (or raise --inputs)"
        )
    check_settings(info.samplerate, block)
    dims = Dims(
        n_in=inputs, n_bus=buses, sample_rate=info.samplerate, max_block=max(block, 16),
        phys_in=info.channels, phys_out=n_outputs(buses),
    )  # fmt: skip
    engine = BlockEngine(dims)
    if settings:
        engine.mixer.set_many(dict(settings))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.wav" for name in output_file_names(buses)]
    writers = [
        sf.SoundFile(str(p), "w", info.samplerate, 1, subtype="FLOAT") for p in paths
    ]
    skip = engine.latency
    done = 0
    try:
        with sf.SoundFile(str(source)) as f:
            tail = np.zeros((engine.latency, info.channels), np.float32)
            for chunk in [*f.blocks(CHUNK, dtype="float32", always_2d=True), tail]:
                y = engine.render(chunk, block)
                cut = min(skip, y.shape[0])
                skip -= cut
                for k, w in enumerate(writers):
                    w.write(y[cut:, k])
                done += chunk.shape[0]
                if progress:
                    progress(min(1.0, done / max(1, info.frames)))
    finally:
        for w in writers:
            w.close()
    return paths


def print_progress(fraction: float) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = int(width * fraction)
    sys.stderr.write(
        f"\rrendering [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}"
    )
    if fraction >= 1.0:
        sys.stderr.write("\n")
    sys.stderr.flush()

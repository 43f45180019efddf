"""The settings the engine runs at, and the errors for those it cannot use.

Light on purpose (no numpy, no numba): the command line reads it to write
its help and to check arguments before anything compiles.
"""

import tomllib
from pathlib import Path

SAMPLE_RATES = (44100, 48000, 96000)
MIN_BLOCK, MAX_BLOCK = 16, 1024


class DeviceError(RuntimeError):
    """A device that cannot be opened as asked; the message says why."""


class ConfigError(ValueError):
    """A setting or show configuration the engine cannot use (size, map, file,
    roles); the message says why and where."""


def show_config_table(path: Path, name: str) -> dict:
    """Table ``[name]`` of the show configuration at ``path`` (TOML), empty
    when it has none; a file that cannot be read or parsed, or a ``name``
    that is not a table, is a ``ConfigError`` naming the file."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name} must be a table ([{name}])")
    return table


def check_settings(sample_rate: int, block: int) -> None:
    """Refuse sample rates and block sizes the engine does not run at."""
    if sample_rate not in SAMPLE_RATES:
        rates = ", ".join(str(r) for r in SAMPLE_RATES)
        raise DeviceError(f"sample rate {sample_rate} Hz is not supported; use {rates}")
    if not MIN_BLOCK <= block <= MAX_BLOCK:
        raise DeviceError(
            f"block size {block} is not supported; use {MIN_BLOCK} to {MAX_BLOCK} frames"
        )

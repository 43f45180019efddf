"""The settings the engine runs at, and the errors for those it cannot use.

Light on purpose (no numpy, no numba): the command line reads it to write
its help and to check arguments before anything compiles.
"""

SAMPLE_RATES = (44100, 48000, 96000)
MIN_BLOCK, MAX_BLOCK = 16, 1024


class DeviceError(RuntimeError):
    """A device that cannot be opened as asked; the message says why."""


class ConfigError(ValueError):
    """A setting or show configuration the engine cannot use (size, map, file,
    roles); the message says why and where."""


def check_settings(sample_rate: int, block: int) -> None:
    """Refuse sample rates and block sizes the engine does not run at."""
    if sample_rate not in SAMPLE_RATES:
        rates = ", ".join(str(r) for r in SAMPLE_RATES)
        raise DeviceError(f"sample rate {sample_rate} Hz is not supported; use {rates}")
    if not MIN_BLOCK <= block <= MAX_BLOCK:
        raise DeviceError(
            f"block size {block} is not supported; use {MIN_BLOCK} to {MAX_BLOCK} frames"
        )

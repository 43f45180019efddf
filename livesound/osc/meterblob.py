"""The ``/ls/meters`` blob: every meter of an engine in one OSC blob.

An X32 meter blob (int32 count, then little-endian float32 values) holding,
in dB, one value per input of each of ``INPUT_FIELDS`` (peak, RMS, gate
gain, compressor gain), then one per output (buses, main L/R, cue L/R) of
each of ``OUTPUT_FIELDS`` (peak, RMS, limiter gain). The engine encodes it,
the console decodes it: this module is the layout's one statement.
"""

import struct
from dataclasses import dataclass

import numpy as np

from livesound.audio.layout import n_outputs

INPUT_FIELDS = ("in_peak_db", "in_rms_db", "gate_gr_db", "comp_gr_db")
OUTPUT_FIELDS = ("out_peak_db", "out_rms_db", "limiter_gr_db")


@dataclass
class Reading:
    """One ``/ls/meters`` reading, in dB (gains are <= 0)."""

    in_peak_db: np.ndarray
    in_rms_db: np.ndarray
    gate_gr_db: np.ndarray
    comp_gr_db: np.ndarray
    out_peak_db: np.ndarray
    out_rms_db: np.ndarray
    limiter_gr_db: np.ndarray


def blob(values: np.ndarray) -> bytes:
    """An X32 meter blob: int32 count, then little-endian float32 values."""
    v = np.ascontiguousarray(values, dtype="<f4")
    return struct.pack("<i", v.size) + v.tobytes()


def unblob(data: bytes) -> np.ndarray | None:
    """The values of an X32 meter blob, or None if it is not one."""
    if len(data) < 4:
        return None
    (count,) = struct.unpack_from("<i", data, 0)
    if not 0 <= count <= (len(data) - 4) // 4:
        return None
    return np.frombuffer(data, "<f4", count, 4).astype(float)


def values(meters) -> np.ndarray:
    """The blob's values, in order, from a ``Reading`` or the engine's
    ``Meters`` (anything with the fields)."""
    return np.concatenate(
        [getattr(meters, name) for name in INPUT_FIELDS + OUTPUT_FIELDS]
    )


def encode(meters) -> bytes:
    """The ``/ls/meters`` blob of a reading."""
    return blob(values(meters))


def decode(data: bytes, n_in: int, n_bus: int) -> Reading | None:
    """The reading in a blob from an engine of ``n_in`` inputs and ``n_bus``
    buses; None if the blob is not one (another engine's size, garbled)."""
    v = unblob(data)
    n, m = n_in, n_outputs(n_bus)
    if v is None or v.size != len(INPUT_FIELDS) * n + len(OUTPUT_FIELDS) * m:
        return None
    sizes = [n] * len(INPUT_FIELDS) + [m] * len(OUTPUT_FIELDS)
    parts = np.split(v, np.cumsum(sizes)[:-1])
    return Reading(**dict(zip(INPUT_FIELDS + OUTPUT_FIELDS, parts, strict=True)))

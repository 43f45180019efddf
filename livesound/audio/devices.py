"""Where the blocks come from: a PortAudio device.

PortAudio calls the compiled C callback from its own audio thread on the
engine memory. (The virtual stage's sound card, which calls the same
callback from a clocked thread, is ``livesound.virtual.device``.)
"""

import os
from dataclasses import dataclass

from livesound.audio import layout as L
from livesound.audio.core import AudioCore
from livesound.audio.settings import DeviceError, check_settings

REALTIME_PRIORITY = 70  # below JACK's own (typically 80+), above everything else


def make_realtime(tid: int = 0) -> bool | None:
    """Give a thread of this process (0 = the caller) SCHED_FIFO priority.

    The audio thread must not be preempted by the UI, the network or other
    processes. Returns False where the system does not allow it, None if
    the thread has already ended.
    """
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except ProcessLookupError:
        return None
    except (AttributeError, OSError):
        return False
    return True


def portaudio():
    """The sounddevice module, or None when PortAudio is not installed."""
    try:
        import sounddevice
    except OSError:
        return None
    return sounddevice


def list_devices() -> list[dict]:
    """PortAudio's devices (empty without PortAudio)."""
    sd = portaudio()
    if sd is None:
        return []
    apis = sd.query_hostapis()
    return [
        {
            "index": d["index"],
            "name": d["name"],
            "hostapi": apis[d["hostapi"]]["name"],
            "inputs": d["max_input_channels"],
            "outputs": d["max_output_channels"],
            "default_samplerate": d["default_samplerate"],
        }
        for d in sd.query_devices()
    ]


def find_device(spec: str | int | None) -> dict:
    """Resolve a device by index or (part of) its name; None = default output."""
    devices = list_devices()
    if not devices:
        asked = "" if spec is None else f"no audio device {spec!r}: "
        raise DeviceError(f"{asked}PortAudio sees no audio devices; use --virtual")
    if spec is None:
        sd = portaudio()
        index = sd.default.device[1]
        if index is None or index < 0:
            raise DeviceError("no default audio output; pick one with --device")
        spec = index
    if isinstance(spec, int) or str(spec).isdigit():
        for d in devices:
            if d["index"] == int(spec):
                return d
    else:
        hits = [d for d in devices if str(spec).lower() in d["name"].lower()]
        if len(hits) == 1:
            return hits[0]
        hits = [d for d in hits if d["outputs"] > 0]
        if len(hits) >= 1:
            return hits[0]
    names = "; ".join(f"{d['index']}: {d['name']}" for d in devices)
    raise DeviceError(f"no audio device {spec!r}; devices are {names}")


@dataclass
class DeviceInfo:
    """What the status line shows about the running device."""

    name: str
    sample_rate: int
    block: int
    latency_ms: float


class PortAudioDevice:
    """A duplex PortAudio stream whose callback is the engine's C callback."""

    def __init__(self, core: AudioCore, device: dict, block: int) -> None:
        sd = portaudio()
        d = core.dims
        check_settings(d.sample_rate, block)
        self.core = core
        self.device = device
        self.realtime = False
        self._ffi = sd._ffi
        try:
            if d.phys_in:
                sd.check_input_settings(device["index"], d.phys_in, "float32",
                                        samplerate=d.sample_rate)  # fmt: skip
            sd.check_output_settings(device["index"], d.phys_out, "float32",
                                     samplerate=d.sample_rate)  # fmt: skip
        except sd.PortAudioError as exc:
            raise DeviceError(f"{device['name']}: {exc}") from None
        kind = "duplex" if d.phys_in else "output"
        channels = (d.phys_in, d.phys_out) if d.phys_in else d.phys_out
        dev = (device["index"], device["index"]) if d.phys_in else device["index"]
        # PortAudio calls the numba @cfunc (kernels.audio_callback) directly
        # through this C function pointer: no Python, no GIL in the audio
        # thread (wrap_callback=None). Pointer and user data must outlive
        # the stream: keep them.
        self._cfunc = self._ffi.cast("PaStreamCallback *", core.callback_address)
        self._user_data = self._ffi.cast("void *", core.user_data)
        try:
            self.stream = sd._StreamBase(
                kind, samplerate=d.sample_rate, blocksize=block, device=dev,
                channels=channels, dtype="float32", callback=self._cfunc,
                userdata=self._user_data, wrap_callback=None, latency="low",
            )  # fmt: skip
        except sd.PortAudioError as exc:
            raise DeviceError(f"{device['name']}: {exc}") from None
        latency = self.stream.latency
        out_latency = latency[1] if isinstance(latency, tuple) else latency
        self.info = DeviceInfo(device["name"], d.sample_rate, block, out_latency * 1000)

    def start(self) -> None:
        """Start the stream and raise its audio thread to real-time priority.

        PortAudio's thread runs at whatever priority the host API gives it
        (on a JACK server without -R, normal priority); the callback reports
        its thread id and we raise it.
        """
        self.core.hdr[L.H_AUDIO_TID] = 0
        self.stream.start()
        tid = self.core.audio_thread()
        self.realtime = bool(tid) and bool(make_realtime(tid))

    def stop(self) -> None:
        self.stream.stop()
        self.stream.close()

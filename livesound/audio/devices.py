"""Where the blocks come from: a PortAudio device.

PortAudio calls the compiled C callback from its own audio thread on the
engine memory. (The virtual stage's sound card, which calls the same
callback from a clocked thread, is ``livesound.virtual.device``.)
"""

import contextlib
import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from livesound.audio import layout as L
from livesound.audio.core import AudioCore
from livesound.audio.settings import DeviceError, check_settings

REALTIME_PRIORITY = 70  # below JACK's own (typically 80+), above everything else
JACK_NO_START_SERVER = 0x01  # jack_options_t: only look, never start a server


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


def find_again(device: dict) -> dict | None:
    """The same device (name and host API) as PortAudio lists it now; None
    while it is missing. Its index may have changed."""
    for d in list_devices():
        if d["name"] == device["name"] and d["hostapi"] == device["hostapi"]:
            return d
    return None


@dataclass
class DeviceInfo:
    """What the status line shows about the running device."""

    name: str
    sample_rate: int
    block: int
    latency_ms: float  # the device's own buffering, from input to output


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
        # Input plus output buffering as PortAudio reports it (one figure
        # for a stream that only plays).
        latency = self.stream.latency
        total = sum(latency) if isinstance(latency, tuple) else latency
        self.info = DeviceInfo(device["name"], d.sample_rate, block, total * 1000)

    @property
    def on_jack(self) -> bool:
        """Whether the stream plays through a JACK server."""
        return "JACK" in self.device.get("hostapi", "")

    def running(self) -> bool:
        """Whether PortAudio still runs the stream (False once the device or
        the JACK server has gone; never blocks)."""
        return self.stream.active

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

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop and close the stream; False if PortAudio did not return within
        ``timeout`` s (a stream on a JACK server that died hangs in there for
        good, so it is left to its helper thread and never waited for)."""
        return bounded(lambda: (self.stream.abort(), self.stream.close()), timeout)


class DeviceWedged(RuntimeError):
    """PortAudio cannot reach the device again in this process (its JACK
    client died with the server); a fresh process can."""


def reopen(core: AudioCore, device: dict, block: int, old: "PortAudioDevice | None",
           busy: bool = False) -> "PortAudioDevice | None":  # fmt: skip
    """Open ``device`` again after it was lost (``old``: its last stream);
    None while it is still missing. ``busy``: another PortAudio stream (a
    fallback) plays and must not be cut by a restart of PortAudio.

    On JACK the server is asked first, through a client of our own; once it
    answers, a stream that died with the old server means PortAudio itself
    is stuck with that server (stopping the stream or PortAudio hangs for
    good): ``DeviceWedged``. Elsewhere the old stream is closed, PortAudio
    restarted so that it lists the devices present now, and the device
    looked up again by name (not while ``busy``: PortAudio cannot look
    without a restart).
    """
    if "JACK" in device["hostapi"]:
        if not jack_server_up():
            return None
        if old is not None or busy:
            raise DeviceWedged(f"the JACK server is back; {device['name']} needs "
                               "a fresh PortAudio")  # fmt: skip
    elif busy:
        return None
    if old is not None and not old.stop():
        raise DeviceWedged(f"{device['name']}: PortAudio does not close the stream")
    if not reinitialise():
        raise DeviceWedged("PortAudio does not restart")
    found = find_again(device)
    if found is None:
        return None
    try:
        return PortAudioDevice(core, found, block)
    except DeviceError:
        return None


def bounded(call: Callable[[], object], timeout: float) -> bool:
    """Run ``call`` in a helper thread; True if it returned within
    ``timeout`` s (its errors count as returned). A call that hangs keeps
    its daemon thread; the caller goes on."""
    done = threading.Event()

    def run() -> None:
        # A call that failed still returned: the caller goes on.
        with contextlib.suppress(Exception):
            call()
        done.set()

    threading.Thread(target=run, name="portaudio-call", daemon=True).start()
    return done.wait(timeout)


def reinitialise(timeout: float = 2.0) -> bool:
    """Restart PortAudio so that it lists the devices present now (a JACK
    server that came back, a card plugged in again); False if it hung."""
    sd = portaudio()
    if sd is None:
        return False

    def again() -> None:
        if sd._initialized > 0:
            sd._terminate()
        sd._initialize()

    return bounded(again, timeout)


def shut_down(timeout: float = 0.5) -> bool:
    """End PortAudio (its JACK client leaves the server tidily); False if
    it hung or there is none."""
    sd = portaudio()
    return sd is not None and sd._initialized > 0 and bounded(sd._terminate, timeout)


@functools.cache
def _libjack() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("jack") or "libjack.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.jack_client_open.restype = ctypes.c_void_p
    lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int,
                                     ctypes.POINTER(ctypes.c_int)]  # fmt: skip
    lib.jack_client_close.argtypes = [ctypes.c_void_p]
    return lib


def jack_server_up() -> bool:
    """Whether the JACK server (``$JACK_DEFAULT_SERVER``) answers, asked
    through libjack with a client of our own: PortAudio's JACK client, dead
    with the server it was made for, is left alone."""
    lib = _libjack()
    if lib is None:
        return False
    status = ctypes.c_int(0)
    client = lib.jack_client_open(b"livesound-probe", JACK_NO_START_SERVER,
                                  ctypes.byref(status))  # fmt: skip
    if not client:
        return False
    lib.jack_client_close(client)
    return True

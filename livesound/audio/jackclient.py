"""Where the blocks come from: a native JACK client.

``livesound engine --jack NAME`` opens a JACK client called NAME with the
JACK-Client package (client, ports, connections, server events); JACK
calls the compiled ``jackprocess.jack_process`` directly through its C
address, never Python. Ports are named by role (``NAME:in_01``,
``NAME:bus_01``, ``NAME:main_L``, ``NAME:cue_L`` ...). The period may
change under the running client (``jack_bufsize``): the callback takes any
frame count. When the server shuts down the client says so at once
(``running()`` turns False) and the watchdog opens a new client once the
server answers again, in this process, with the show intact.
"""

import contextlib
import ctypes
import ctypes.util
import fnmatch
import functools
import logging
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from livesound.audio import jackprocess as J
from livesound.audio import layout as L
from livesound.audio.core import AudioCore
from livesound.audio.devices import DeviceInfo, bounded, jack_server_up, make_realtime
from livesound.audio.settings import ConfigError, DeviceError, show_config_table

log = logging.getLogger("livesound.audio")


def jack_module():
    """The JACK-Client module, or None where libjack is not installed."""
    try:
        import jack
    except (ImportError, OSError):
        return None
    return jack


@functools.cache
def _libjack() -> ctypes.CDLL:
    """libjack (the library JACK-Client loaded: the same handle)."""
    return ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")


def _get_buffer_address() -> int:
    """Address of libjack's ``jack_port_get_buffer``."""
    return ctypes.cast(_libjack().jack_port_get_buffer, ctypes.c_void_p).value or 0


class _LatencyRange(ctypes.Structure):
    _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]


CAPTURE_LATENCY, PLAYBACK_LATENCY = 0, 1  # jack_latency_callback_mode_t


def latency_frames(ports, mode: int) -> int:
    """The largest latency JACK reports for ``ports`` (frames): with
    ``CAPTURE_LATENCY`` from the sound card's input to an input port, with
    ``PLAYBACK_LATENCY`` from an output port to the card's output; 0 for
    ports connected to nothing. JACK-Client does not wrap this call."""
    get = _libjack().jack_port_get_latency_range
    get.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(_LatencyRange)]
    get.restype = None
    ffi = jack_module()._ffi
    worst = 0
    for port in ports:
        found = _LatencyRange()
        address = int(ffi.cast("uintptr_t", port._ptr))
        get(address, mode, ctypes.byref(found))
        worst = max(worst, found.max)
    return worst


def port_names(n_in: int, n_bus: int) -> tuple[list[str], list[str]]:
    """Input and output port names (without the client's name), in engine
    order: ``in_01``..., ``bus_01``..., ``main_L``, ``main_R``, ``cue_L``,
    ``cue_R``, ``main_M`` (the mono bus), ``mtx_01``...``mtx_06``."""
    extra = {"L": "main_L", "R": "main_R", "CL": "cue_L", "CR": "cue_R",
             "M": "main_M"}  # fmt: skip
    extra |= {f"MTX{m + 1}": f"mtx_{m + 1:02d}" for m in range(L.N_MTX)}
    outs = [
        extra.get(name, f"bus_{int(name):02d}" if name.isdigit() else name)
        for name in L.output_names(n_bus)
    ]
    return [f"in_{c + 1:02d}" for c in range(n_in)], outs


def port_of(address: str) -> list[str]:
    """The port(s) whose pretty name is the name at ``address``:
    ``/ch/03/config/name`` is ``in_03``, ``/bus/02/config/name`` ``bus_02``,
    ``/main/st/config/name`` both main ports, ``/main/m/config/name``
    ``main_M``, ``/mtx/01/config/name`` ``mtx_01``; [] for any other
    address."""
    parts = address.strip("/").split("/")
    if len(parts) != 4 or parts[2:] != ["config", "name"]:
        return []
    if parts[0] == "ch" and parts[1].isdigit():
        return [f"in_{int(parts[1]):02d}"]
    if parts[0] in ("bus", "mtx") and parts[1].isdigit():
        return [f"{parts[0]}_{int(parts[1]):02d}"]
    if parts[:2] == ["main", "st"]:
        return ["main_L", "main_R"]
    if parts[:2] == ["main", "m"]:
        return ["main_M"]
    return []


def default_connections(n_bus: int) -> list[tuple[str, str]]:
    """What a new client connects when the command line says nothing: the
    server's capture ports to the inputs in order, main L/R to its first two
    playback ports and the buses after them (a stage box and wedges)."""
    main = ["main_L", "main_R"]
    buses = [f"bus_{b + 1:02d}" for b in range(n_bus)]
    return [("@capture", "in_*"), (" ".join(main + buses), "@playback")]


def config_connections(path: Path) -> list[str] | None:
    """The ``connect`` table of the show config's ``[jack]`` table, as
    ``SRC=DST`` specs (None when it has none)::

        [jack]
        connect = { "system:capture_*" = "in_*", "main_*" = "system:playback_*" }
    """
    table = show_config_table(path, "jack").get("connect")
    if table is None:
        return None
    if not isinstance(table, dict) or not all(
        isinstance(v, str) for v in table.values()
    ):
        raise ConfigError(
            f'{path}: [jack] connect is a table of "SOURCE" = "DEST" globs'
        )
    return [f"{src}={dst}" for src, dst in table.items()]


def parse_connect(spec: str) -> tuple[str, str]:
    """``"system:capture_*=in_*"``: a source and a destination glob."""
    src, sep, dst = spec.partition("=")
    if not sep or not src.strip() or not dst.strip():
        raise DeviceError(f"--connect {spec!r}: use SOURCE=DEST, e.g. "
                          "'system:capture_*=in_*' or 'main_*=system:playback_*'")  # fmt: skip
    return src.strip(), dst.strip()


class JackDevice:
    """A client of the running JACK server whose process callback is the
    engine's C callback. Opening it fails with ``DeviceError`` when no server
    answers, the name is taken, or the server runs at another sample rate."""

    def __init__(self, core: AudioCore, name: str, n_bus: int,
                 connect: list[tuple[str, str]] | None = None,
                 names: dict[str, str] | None = None) -> None:  # fmt: skip
        jack = jack_module()
        if jack is None:
            raise DeviceError(
                "--jack: libjack is not installed (apt install libjack-jackd2-0)"
            )
        d = core.dims
        self.core, self.name = core, name
        self.realtime = False
        self._alive = True
        self._closed = False
        self._block = 0
        self._latency = 0  # device frames from capture to playback
        # Pretty names go to the server over IPC: from a thread of their own,
        # never from the thread that renamed the channel.
        self._names: queue.SimpleQueue[dict[str, str] | None] = queue.SimpleQueue()
        self._namer = threading.Thread(target=self._name_ports, name="jack-names",
                                       daemon=True)  # fmt: skip
        if names:
            self._names.put(dict(names))
        try:
            self.client = jack.Client(name, use_exact_name=True, no_start_server=True)
        except jack.JackOpenError as exc:
            raise DeviceError(
                f"JACK client {name!r}: {_open_reason(jack, name, exc)}"
            ) from None
        if self.client.samplerate != d.sample_rate:
            rate = self.client.samplerate
            self._close()
            raise DeviceError(f"the JACK server runs at {rate} Hz, the show at "
                              f"{d.sample_rate} Hz: use --rate {rate}")  # fmt: skip
        ins, outs = port_names(d.phys_in, n_bus)
        if len(outs) != d.phys_out:
            raise DeviceError(f"JACK client {name!r}: {d.phys_out} outputs, "
                              f"{len(outs)} port names")  # fmt: skip
        self.inports = [self.client.inports.register(p) for p in ins]
        self.outports = [self.client.outports.register(p) for p in outs]
        self._connect = connect if connect is not None else default_connections(n_bus)
        # The port table and scratch buffers JACK's thread reads: they must
        # outlive the client, so they are kept on it.
        self.table = np.zeros(J.table_size(d.phys_in, d.phys_out), np.int64)
        self._scratch_in = np.zeros((J.MAX_FRAMES, d.phys_in), np.float32)
        self._scratch_out = np.zeros((J.MAX_FRAMES, d.phys_out), np.float32)
        t = self.table
        t[J.J_HDR] = core.user_data
        t[J.J_GET_BUFFER] = _get_buffer_address()
        t[J.J_N_IN], t[J.J_N_OUT] = d.phys_in, d.phys_out
        t[J.J_SCRATCH_IN] = self._scratch_in.ctypes.data
        t[J.J_SCRATCH_OUT] = self._scratch_out.ctypes.data
        t[J.J_MAX] = J.MAX_FRAMES
        ffi, lib = jack._ffi, jack._lib
        for k, port in enumerate(self.inports + self.outports):
            t[J.J_PORTS + k] = int(ffi.cast("uintptr_t", port._ptr))
        self._cb = ffi.cast("JackProcessCallback", J.process_callback().address)
        self._arg = ffi.cast("void *", t.ctypes.data)
        if lib.jack_set_process_callback(self.client._ptr, self._cb, self._arg):
            self._close()
            raise DeviceError(f"JACK client {name!r}: the server refused the callback")
        self.client.set_shutdown_callback(self._server_gone)
        self.client.set_xrun_callback(self._xrun)

    # Both run on JACK's notification thread (never the process thread),
    # and touch nothing but a flag and a counter only they write.
    def _server_gone(self, status, reason: str) -> None:
        self._alive = False

    def _xrun(self, delayed_usecs: float) -> None:
        self.core.hdr[L.H_XRUNS] += 1

    @property
    def info(self) -> DeviceInfo:
        """The client as the status line shows it; the period is asked of the
        server each time (it can change under a running client)."""
        rate = self.core.dims.sample_rate
        if self._alive:
            self._block = self.client.blocksize
            # Capture and playback buffers as the server reports them for
            # the connected ports; unconnected, JACK's least: a period each.
            frames = max(latency_frames(self.inports, CAPTURE_LATENCY), self._block)
            frames += max(latency_frames(self.outports, PLAYBACK_LATENCY), self._block)
            self._latency = frames
        return DeviceInfo(
            f"JACK {self.name}", rate, self._block, 1000 * self._latency / rate
        )

    def running(self) -> bool:
        """False once the server shut the client down (never blocks)."""
        return self._alive

    def start(self) -> None:
        """Activate the client, make its connections, raise its thread."""
        self.core.hdr[L.H_AUDIO_TID] = 0
        self.client.activate()
        for src, dst in self._connect:
            self.connect(src, dst)
        self._namer.start()
        tid = self.core.audio_thread()
        self.realtime = bool(tid) and bool(make_realtime(tid))

    def rename(self, names: dict[str, str]) -> None:
        """Show ``names`` (port short name: the show's name, "" for none) as the
        ports' JACK pretty names; returns at once."""
        self._names.put(dict(names))

    def _name_ports(self) -> None:
        jack = jack_module()
        ports = {p.shortname: p for p in self.inports + self.outports}
        while (names := self._names.get()) is not None:
            for short, pretty in names.items():
                port = ports.get(short)
                if port is None or not self._alive:
                    continue
                try:
                    if pretty:
                        self.client.set_property(
                            port, jack.METADATA_PRETTY_NAME, pretty
                        )
                    else:
                        self.client.remove_property(
                            port.uuid, jack.METADATA_PRETTY_NAME
                        )
                except jack.JackError as exc:
                    log.warning("JACK: cannot name %s %r: %s", short, pretty, exc)

    def connect(self, src: str, dst: str) -> int:
        """Connect the ports ``src`` matches to those ``dst`` matches, pairwise
        in order; globs without a client name are this client's ports,
        ``@capture``/``@playback`` the server's physical ones. Returns how many
        connections were made; a pair that fails is logged, not raised (a
        missing wedge must not stop the show)."""
        sources, dests = self._ports(src, output=True), self._ports(dst, output=False)
        made = 0
        for a, b in zip(sources, dests, strict=False):
            try:
                self.client.connect(a, b)
                made += 1
            except jack_module().JackError as exc:
                log.warning("JACK: cannot connect %s to %s: %s", a, b, exc)
        return made

    def _ports(self, spec: str, output: bool) -> list[str]:
        if spec in ("@capture", "@playback"):
            return [p.name for p in self.client.get_ports(
                is_audio=True, is_physical=True, is_output=output, is_input=not output)]  # fmt: skip
        names = []
        for glob in spec.split():
            full = glob if ":" in glob else f"{self.client.name}:{glob}"
            names += sorted(
                (p.name for p in self.client.get_ports(is_audio=True, is_output=output,
                                                       is_input=not output)
                 if fnmatch.fnmatchcase(p.name, full)),
                key=_natural,
            )  # fmt: skip
        return names

    def stop(self, timeout: float = 1.0) -> bool:
        """Deactivate and close the client within ``timeout`` s (a client
        whose server died is only closed)."""
        return bounded(self._close, timeout)

    def _close(self) -> None:
        if self._closed:
            return
        if self._alive:
            with contextlib.suppress(Exception):
                self.client.deactivate()
        self._alive = False
        self._closed = True
        self._names.put(None)
        self.client.close()


def _natural(name: str) -> tuple:
    """``capture_2`` before ``capture_10``."""
    head = name.rstrip("0123456789")
    tail = name[len(head) :]
    return head, int(tail) if tail else -1


def _open_reason(jack, name: str, exc: Exception) -> str:
    """Why the server refused the client, in words (JACK 2 says only
    "server error" for a taken name: a client of our own looks)."""
    if not jack_server_up():
        return "no JACK server answers (start one, e.g. with qjackctl or jackd)"
    with contextlib.suppress(jack.JackError):
        probe = jack.Client("livesound-probe", no_start_server=True)
        try:
            if probe.get_ports(f"^{re.escape(name)}:"):
                return "a client with that name is already on the server"
        finally:
            probe.close()
    return str(exc)


def reopen(core: AudioCore, name: str, n_bus: int,
           connect: list[tuple[str, str]] | None, names: Callable[[], dict[str, str]],
           old: JackDevice | None) -> JackDevice | None:  # fmt: skip
    """A new client once the server answers again (None while it does not).
    The old one, dead with its server, is closed at the first attempt, while
    the server is still gone: libjack crashes closing it once a new server
    runs."""
    if old is not None:
        old.stop()
    if not jack_server_up():
        return None
    try:
        return JackDevice(core, name, n_bus, connect, names())
    except DeviceError as exc:
        log.warning("JACK is back but: %s", exc)
        return None

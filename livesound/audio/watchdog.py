"""The audio device's watchdog: notices that the callback stopped, says so,
plays on a fallback device meanwhile, and brings the device back.

A device is *lost* when the callback's block counter stood still for
``STALL_S`` while the stream should run, or when PortAudio says the stream
is no longer active (a JACK server that went away, a card unplugged). The
watchdog thread only reads the counter and asks the device; it never
touches the audio plane's memory, and every PortAudio call it makes runs
in a helper thread with a time limit, because PortAudio may never return
from a stream whose device vanished.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from livesound.audio import layout as L
from livesound.audio.core import AudioCore
from livesound.audio.devices import DeviceInfo, DeviceWedged, bounded

log = logging.getLogger("livesound.audio")

STALL_S = 0.3  # no block for this long while the stream should run: lost
START_S = 5.0  # the first block may wait for the device thread's kernels to load
POLL_S = 0.05
RETRY_S = 0.5  # how often the lost device is tried again
CALL_TIMEOUT_S = 2.0  # a PortAudio call that takes longer has hung


class Device(Protocol):
    """What the watchdog needs of a device (PortAudio or the virtual card)."""

    info: DeviceInfo

    def start(self) -> None: ...

    def stop(self, timeout: float = 1.0) -> bool: ...

    def running(self) -> bool: ...


@dataclass
class AudioFault:
    """The lost device: its name, since when, what plays meanwhile."""

    device: str
    since: float  # time.time() when it was noticed
    fallback: str = ""

    def text(self) -> str:
        return f"AUDIO DEVICE LOST: {self.device}" + (
            f" (playing on {self.fallback})" if self.fallback else ""
        )

    def report(self) -> dict:
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.since))
        return {"fault": "device lost", "device": self.device, "since": since,
                "fallback": self.fallback or None}  # fmt: skip


class AudioWatchdog:
    """Watches ``device`` on ``core`` from its own thread.

    ``reopen(old)`` opens the primary device again, ``old`` being its last
    stream (None while it is missing; ``DeviceWedged`` when only a fresh
    process can reach it, then ``restart(reason)`` is asked for);
    ``fallback()`` opens a second device
    to play on while the first is gone. Listeners hear the fault's text
    ("" when clear) from the watchdog's thread.
    """

    def __init__(
        self,
        core: AudioCore,
        device: Device | None,
        name: str,
        reopen: Callable[[Device | None], Device | None] | None = None,
        fallback: Callable[[], Device] | None = None,
        restart: Callable[[str], None] | None = None,
    ) -> None:
        self.core = core
        self.device = device  # what plays now (the fallback while on it)
        self.primary = device  # the primary's newest stream, dead or alive
        self.name = name
        self.reopen, self.fallback, self.restart = reopen, fallback, restart
        self.fault: AudioFault | None = None
        self.lost_once = False  # PortAudio may be stuck with a vanished device
        self.first_block_at = 0.0  # time.time() the first block was seen (±POLL_S)
        self.listeners: list[Callable[[str], None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audio-watchdog",
                                        daemon=True)  # fmt: skip
        self._restarting = False
        if device is None:  # started without its device (restarted in place)
            self._lost("not there at start")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(CALL_TIMEOUT_S + 1)

    def status(self) -> str:
        """The fault in one line; empty while audio runs on its device."""
        return self.fault.text() if self.fault else ""

    # -- the watching thread --------------------------------------------------------

    def _run(self) -> None:
        blocks, moved = 0, time.monotonic()
        next_try = 0.0
        while not self._stop.wait(POLL_S):
            now = time.monotonic()
            seen = int(self.core.hdr[L.H_BLOCKS])
            if seen != blocks:
                if not blocks:
                    self.first_block_at = time.time()
                blocks, moved = seen, now
            if self.fault is None:
                waited = STALL_S if blocks else START_S
                if now - moved >= waited or not self._running():
                    self._lost(f"no audio block for {now - moved:.2f} s")
                    next_try = now + RETRY_S
            elif self._on_primary and now - moved < STALL_S and self._running():
                self._back()  # it only stalled, and runs again
            elif not self._restarting and now >= next_try:
                next_try = now + RETRY_S
                self._try_again()

    @property
    def _on_primary(self) -> bool:
        return self.device is not None and self.device is self.primary

    def _running(self) -> bool:
        # PortAudio answers this from a flag, without waiting on anything.
        return self.device is not None and self.device.running()

    def _lost(self, why: str) -> None:
        self.fault = AudioFault(self.name, time.time())
        self.lost_once = True
        log.warning("%s (%s)", self.fault.text(), why)
        self._tell()

    def _back(self) -> None:
        since = self.fault.since if self.fault else time.time()
        self.fault = None
        log.warning("audio device %s back after %.1f s", self.name, time.time() - since)
        self._tell()

    def _tell(self) -> None:
        text = self.status()
        for listener in self.listeners:
            listener(text)

    def _try_again(self) -> None:
        """One attempt to get the primary device back (and, until then, to
        play on the fallback)."""
        if self.reopen is None:
            return
        found: list[Device | None] = []
        wedged: list[DeviceWedged] = []

        def attempt() -> None:
            try:
                found.append(self.reopen(self.primary))
            except DeviceWedged as exc:
                wedged.append(exc)

        if not bounded(attempt, CALL_TIMEOUT_S) or wedged:
            reason = str(wedged[0]) if wedged else "PortAudio did not answer"
            if self.restart is not None:
                self._restarting = True
                log.warning("audio device %s: %s; restarting in place", self.name,
                            reason)  # fmt: skip
                self.restart(reason)
            return
        device = found[0] if found else None
        if device is None:
            self._play_fallback()
            return
        if not self._on_primary and self.device is not None:
            self.device.stop(CALL_TIMEOUT_S)  # the fallback makes way
        self.device = self.primary = device
        if bounded(device.start, CALL_TIMEOUT_S):
            self._back()

    def _play_fallback(self) -> None:
        """Start the fallback device once the primary cannot call back any
        more (two devices never run the callback at the same time)."""
        if self.fallback is None or self._running():
            return
        if self.device is not None and not self._on_primary:
            return  # on the fallback already
        opened: list[Device] = []
        if not bounded(lambda: opened.append(self.fallback()), CALL_TIMEOUT_S):
            return
        if not opened or not bounded(opened[0].start, CALL_TIMEOUT_S):
            return
        self.device = opened[0]
        if self.fault is not None:
            self.fault.fallback = opened[0].info.name
            log.warning("playing on %s while %s is gone", opened[0].info.name,
                        self.name)  # fmt: skip
            self._tell()

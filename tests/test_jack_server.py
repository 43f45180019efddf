"""The jack_server fixture gives a real, running audio server.

Smoke tests of the server only (plain Python callbacks, not the engine).
The load they assume: a 2-core machine on which another process may keep one
core busy; jackd's dummy driver then still runs within 10 % of the wall clock
over a 2 s stretch (the stretch measured is wall clock; the waits are not).
"""

from __future__ import annotations

import threading
import time

import pytest
from osc_helpers import wait_until

pytestmark = pytest.mark.realtime

CHANNELS = 8
SAMPLERATE = 48000
BLOCKSIZE = 64


def test_portaudio_lists_jack_device(jack_server):
    import sounddevice as sd

    info = sd.query_devices(jack_server.device)
    hostapi = sd.query_hostapis(info["hostapi"])
    assert "JACK" in hostapi["name"]
    assert info["name"] == jack_server.name
    assert info["max_input_channels"] >= CHANNELS
    assert info["max_output_channels"] >= CHANNELS
    assert info["default_samplerate"] == SAMPLERATE
    assert jack_server.samplerate == SAMPLERATE
    assert jack_server.blocksize == BLOCKSIZE
    # Raises if PortAudio would refuse this configuration.
    sd.check_input_settings(
        jack_server.device, channels=CHANNELS, samplerate=SAMPLERATE
    )
    sd.check_output_settings(
        jack_server.device, channels=CHANNELS, samplerate=SAMPLERATE
    )


def test_duplex_stream_runs_in_real_time(jack_server):
    import sounddevice as sd

    lock = threading.Lock()
    frames_total = 0
    block_sizes = set()
    shapes = set()
    statuses = []

    def callback(indata, outdata, frames, time_info, status):
        nonlocal frames_total
        with lock:
            frames_total += frames
        block_sizes.add(frames)
        shapes.add((indata.shape, outdata.shape))
        if status:
            statuses.append(str(status))
        outdata.fill(0.0)

    def snapshot():
        with lock:
            return time.monotonic(), frames_total

    with sd.Stream(
        device=jack_server.device,
        samplerate=SAMPLERATE,
        channels=CHANNELS,
        blocksize=0,  # let JACK's period through unchanged
        dtype="float32",
        callback=callback,
    ) as stream:
        # the client has joined the graph: its callback runs
        wait_until(lambda: snapshot()[1] >= 10 * BLOCKSIZE, what="the callback")
        t0, f0 = snapshot()
        time.sleep(2.0)  # the stretch measured
        t1, f1 = snapshot()
        assert stream.active
        assert stream.samplerate == SAMPLERATE

    elapsed = t1 - t0
    expected = elapsed * SAMPLERATE
    ratio = (f1 - f0) / expected
    assert 0.9 <= ratio <= 1.1, (
        f"{f1 - f0} frames in {elapsed:.3f} s, expected ~{expected:.0f} "
        f"(ratio {ratio:.3f}); status flags: {statuses[:5]}"
    )
    assert block_sizes == {BLOCKSIZE}
    assert shapes == {((BLOCKSIZE, CHANNELS), (BLOCKSIZE, CHANNELS))}


def test_server_is_alive_and_xruns_are_readable(jack_server):
    assert jack_server.is_running()
    if jack_server.owns_server:
        assert isinstance(jack_server.xruns(), int)
        assert jack_server.xruns() >= jack_server.client_xruns() >= 0

"""The jack_server fixture gives a real, running audio server.

Smoke tests of the server only (plain Python callbacks, not the engine).
The load they assume: a 2-core machine on which another process may keep one
core busy. A plain Python client is not a real-time thread there: it may be
called late, which JACK reports; every other cycle the server clocks reaches
it (counted against JACK's own frame clock, not the wall clock).
"""

from __future__ import annotations

import shutil
import threading
import time

import pytest
from audio_helpers import Jackd
from jackserver import JackClock, server_answers
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

    def called() -> int:
        with lock:
            return frames_total

    with sd.Stream(
        device=jack_server.device,
        samplerate=SAMPLERATE,
        channels=CHANNELS,
        blocksize=0,  # let JACK's period through unchanged
        dtype="float32",
        callback=callback,
    ) as stream:
        # the client has joined the graph: its callback runs
        wait_until(lambda: called() >= 10 * BLOCKSIZE, what="the callback")
        clock = JackClock()
        try:
            late0 = jack_server.client_xruns("PortAudio")
            f0, c0, apart0 = clock.against(called)
            time.sleep(2.0)  # the stretch measured
            f1, c1, apart1 = clock.against(called)
            late = jack_server.client_xruns("PortAudio") - late0
        finally:
            clock.close()
        assert stream.active
        assert stream.samplerate == SAMPLERATE

    frames, clocked = f1 - f0, c1 - c0
    # the two clocks are read one after the other: this far apart at most
    slack = (apart0 + apart1) * SAMPLERATE + 2 * BLOCKSIZE
    assert frames > 0 and clocked > 0
    assert clocked - frames <= BLOCKSIZE * late + slack, (
        f"{frames} frames called, {clocked} clocked by the server, {late} cycles "
        f"reported late; status flags: {statuses[:5]}"
    )
    assert block_sizes == {BLOCKSIZE}
    assert shapes == {((BLOCKSIZE, CHANNELS), (BLOCKSIZE, CHANNELS))}


def test_server_is_alive_and_xruns_are_readable(jack_server):
    assert jack_server.is_running()
    if jack_server.owns_server:
        assert isinstance(jack_server.xruns(), int)
        assert jack_server.xruns() >= jack_server.client_xruns() >= 0


def test_killed_servers_do_not_use_up_jacks_registry(tmp_path):
    """JACK's registry holds eight servers, and a jackd killed without a clean
    stop keeps its slot until a server of its name starts again: the suite's
    servers take the first free name of a few, so ten killed ones later a
    server still starts."""
    if shutil.which("jack_lsp") is None:
        pytest.skip("jack_lsp not installed (tests/run.sh installs jackd2)")
    for i in range(10):
        killed = Jackd(tmp_path / f"killed-{i}").start()
        killed.proc.kill()
        killed.proc.wait()
        killed.close()
    server = Jackd(tmp_path / "after").start()
    try:
        assert server_answers(server.name)
    finally:
        server.close()

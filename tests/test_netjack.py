"""Audio between machines with netjack2, end to end on one machine: the
README's recipe. A master JACK server stands for the stage box (with the
``netmanager`` loaded), a slave server on the net backend for the FOH
machine, the engine a JACK client of the slave. Noise played into the
master's port towards the slave comes back from the slave's main mix."""

from __future__ import annotations

from pathlib import Path

import pytest
from audio_helpers import Jackd, LoudEngine, ToneClient, blocks_advance
from jackserver import jack_tool
from osc_helpers import DEADLINE, Client, fader_norm, free_udp_port, wait_until

NETJACK = Path("/usr/lib/x86_64-linux-gnu/jack/jack_net.so")
PERIOD = 256  # netjack2's own default; 64 frames over a busy loopback drops cycles


def net_backend_available() -> bool:
    return any(
        p.exists() for p in (NETJACK, *Path("/usr/lib").glob("*/jack/jack_net.so"))
    )


pytestmark = pytest.mark.skipif(not net_backend_available(),
                                reason="jackd's net backend (jack_net.so) is not installed")  # fmt: skip


def test_the_engine_mixes_the_stage_box_over_netjack2(tmp_path):
    port = free_udp_port()
    stage = Jackd(tmp_path / "stage", period=PERIOD).start()
    foh_machine = None
    engine = None
    try:
        loaded = jack_tool(stage.name, "jack_load", "netmanager", "-i", f"-p {port} -c")
        assert loaded is not None, "netmanager did not load"
        foh_machine = Jackd(tmp_path / "foh", driver=["-d", "net", "-a", "127.0.0.1",
                                                      "-p", str(port), "-C", "2", "-P",
                                                      "2", "-n", "fohbox"]).start()  # fmt: skip
        wait_until(lambda: "fohbox:to_slave_1" in (jack_tool(stage.name, "jack_lsp") or ""),
                   DEADLINE, "the FOH machine on the stage's server")  # fmt: skip
        engine = LoudEngine("--scenes", str(tmp_path / "scenes"), "--state-dir",
                            str(tmp_path / "state"), audio=("--jack", "foh"),
                            env=foh_machine.env, inputs=8, buses=4)  # fmt: skip
        engine.start()
        with Client(engine.port) as c:
            assert blocks_advance(c)
            for address, value in [("/ch/01/mix/fader", fader_norm(0.0)),
                                   ("/main/st/mix/fader", fader_norm(0.0)),
                                   ("/ch/01/mix/on", 1), ("/ch/01/mix/st", 1),
                                   ("/main/st/mix/on", 1), ("/ch/01/mix/pan", 0.5)]:  # fmt: skip
                c.send(address, value)
            # Stage box input 1 travels to the FOH machine's capture_1 (the
            # engine's in_01); its main L comes back as from_slave_1.
            tone = ToneClient(stage, "fohbox:to_slave_1", "fohbox:from_slave_1")
            try:
                wait_until(lambda: abs(tone.level_db() + 29.0) < 1.0, DEADLINE,
                           "the noise back from the FOH machine's main L")  # fmt: skip
            finally:
                tone.close()
        assert engine.stop() == 0
    finally:
        if engine is not None:
            engine.stop()
        if foh_machine is not None:
            foh_machine.close()
        stage.close()

"""The native JACK client (``livesound engine --jack NAME``) against a real
JACK dummy server: ports named by role and connected, sound through them
(a second JACK client of the test's own plays a tone in and records the
main out), the server's period changed under the running engine, the server
stopped and started again (the same process plays on, the show intact),
and plain errors for a taken name and a server at another sample rate.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from audio_helpers import Jackd, LoudEngine, ToneClient, blocks_advance, stats
from jackserver import _jack_env, jack_tool
from osc_helpers import DEADLINE, Client, fader_norm, wait_until

N_IN, N_BUS = 8, 4
NAME = "foh"


def engine(tmp_path, server: Jackd, *extra: str, name: str = NAME) -> LoudEngine:
    return LoudEngine("--scenes", str(tmp_path / "scenes"), "--state-dir",
                      str(tmp_path / f"state-{name}"), *extra, audio=("--jack", name),
                      env=server.env, inputs=N_IN, buses=N_BUS)  # fmt: skip


def ports(server: Jackd) -> list[str]:
    return (jack_tool(server.name, "jack_lsp") or "").split()


def connections(server: Jackd) -> dict[str, list[str]]:
    """``jack_lsp -c``: each port and what it is connected to."""
    out: dict[str, list[str]] = {}
    port = ""
    for line in (jack_tool(server.name, "jack_lsp", "-c") or "").splitlines():
        if line.startswith(" "):
            out[port].append(line.strip())
        else:
            port = line.strip()
            out[port] = []
    return out


def pretty(server: Jackd, port: str) -> str | None:
    """The port's JACK pretty name, as ``jack_property`` reads it."""
    out = jack_tool(server.name, "jack_property", "--port", "-l", port) or ""
    key = "key: http://jackaudio.org/metadata/pretty-name value: "
    found = [
        line.removeprefix(key) for line in out.splitlines() if line.startswith(key)
    ]
    return found[0] if found else None


def input_to_output_ms(server: Jackd) -> float:
    """What ``jack_lsp -l`` says of the engine's connected ports (the most
    capture latency at an input, the most playback latency at an output),
    plus the limiter's default 1 ms lookahead: the engine's own latency."""
    worst = {"capture": 0, "playback": 0}
    port = ""
    for line in (jack_tool(server.name, "jack_lsp", "-l") or "").splitlines():
        if not line.startswith((" ", "\t")):
            port = line.strip()
        elif port.startswith(f"{NAME}:"):
            found = re.match(
                r"\s*port (capture|playback) latency = \[ \d+ (\d+) \]", line
            )
            if found:
                kind, frames = found[1], int(found[2])
                if (kind == "capture") == (":in_" in port):
                    worst[kind] = max(worst[kind], frames)
    assert worst["capture"] and worst["playback"], worst
    return 1000 * (worst["capture"] + worst["playback"]) / server.rate + 1.0


@pytest.fixture
def server(tmp_path):
    s = Jackd(tmp_path / "jackd").start()
    yield s
    s.close()


def test_ports_are_named_by_role_connected_and_carry_the_mix(tmp_path, server):
    proc = engine(tmp_path, server)
    try:
        proc.start()
        with Client(proc.port) as c:
            assert blocks_advance(c)
            assert stats(c)["engine"]["device"] == f"JACK {NAME}"
            ours = [p for p in ports(server) if p.startswith(f"{NAME}:")]
            assert ours == (
                [f"{NAME}:in_{k:02d}" for k in range(1, N_IN + 1)]
                + [f"{NAME}:bus_{b:02d}" for b in range(1, N_BUS + 1)]
                + [f"{NAME}:main_L", f"{NAME}:main_R", f"{NAME}:cue_L", f"{NAME}:cue_R"]
                + [f"{NAME}:main_M"]
                + [f"{NAME}:mtx_{m:02d}" for m in range(1, 7)]
            ), ours
            links = connections(server)
            assert links["system:capture_1"] == [f"{NAME}:in_01"]
            assert links[f"{NAME}:main_L"] == ["system:playback_1"]
            assert links[f"{NAME}:main_R"] == ["system:playback_2"]
            assert links[f"{NAME}:bus_01"] == ["system:playback_3"]
            assert links[f"{NAME}:cue_L"] == []

            # The show's names are the ports' JACK pretty names, renamed live.
            c.send("/ch/02/config/name", "Lead vox")
            c.send("/bus/01/config/name", "Wedge DSR")
            wait_until(lambda: pretty(server, f"{NAME}:in_02") == "Lead vox", DEADLINE,
                       "in_02's pretty name")  # fmt: skip
            wait_until(lambda: pretty(server, f"{NAME}:bus_01") == "Wedge DSR", DEADLINE,
                       "bus_01's pretty name")  # fmt: skip

            # Input 1 at unity to main, centre-panned: -3 dB in each side.
            for address, value in [("/ch/01/mix/fader", fader_norm(0.0)),
                                   ("/main/st/mix/fader", fader_norm(0.0)),
                                   ("/ch/01/mix/on", 1), ("/ch/01/mix/st", 1),
                                   ("/main/st/mix/on", 1), ("/ch/01/mix/pan", 0.5)]:  # fmt: skip
                c.send(address, value)
            tone = ToneClient(server, f"{NAME}:in_01", f"{NAME}:main_L")
            try:
                # -26 dBFS in, centre pan -3 dB: -29 dBFS out (within 1 dB).
                wait_until(lambda: abs(tone.level_db() + 29.0) < 1.0, DEADLINE,
                           "the noise through the engine's main L")  # fmt: skip
                c.send("/ch/01/mix/on", 0)
                wait_until(lambda: tone.level_db() < -90.0, DEADLINE,
                           "silence once the channel is muted")  # fmt: skip
            finally:
                tone.close()
        assert proc.stop() == 0
    finally:
        proc.stop()


def test_the_server_changing_its_period_is_followed_without_a_restart(tmp_path, server):
    """...with connections of the command line's, not the default ones."""
    proc = engine(tmp_path, server, "--connect", "system:capture_[23]=in_0[56]",
                  "--connect", "main_L=@playback")  # fmt: skip
    try:
        proc.start()
        with Client(proc.port) as c:
            assert blocks_advance(c)
            links = connections(server)
            assert links[f"{NAME}:in_05"] == ["system:capture_2"]
            assert links[f"{NAME}:in_06"] == ["system:capture_3"]
            assert links[f"{NAME}:in_01"] == []
            assert links[f"{NAME}:main_L"] == ["system:playback_1"]
            assert links[f"{NAME}:main_R"] == []
            pid = stats(c)["engine"]["pid"]
            assert stats(c)["engine"]["latency_ms"] == pytest.approx(
                input_to_output_ms(server), abs=0.01
            )
            assert jack_tool(server.name, "jack_bufsize", "256") is not None
            wait_until(lambda: stats(c)["engine"]["block"] == 256, DEADLINE,
                       "the new period in /ls/stats")  # fmt: skip
            assert blocks_advance(c)
            assert stats(c)["engine"]["latency_ms"] == pytest.approx(
                input_to_output_ms(server), abs=0.01
            )
            assert stats(c)["engine"]["pid"] == pid and stats(c).get("audio") is None
        assert proc.stop() == 0
    finally:
        proc.stop()


def test_server_stopped_and_started_again_resumes_in_the_same_process(tmp_path, server):
    proc = engine(tmp_path, server)
    try:
        proc.start()
        with Client(proc.port) as c, Client(proc.port) as watcher:
            assert blocks_advance(c)
            pid = stats(c)["engine"]["pid"]
            c.send("/ch/01/mix/fader", fader_norm(-7.0))
            watcher.send("/xremote")
            watcher.recv_all(0.3)

            server.stop()
            lost = wait_until(lambda: (s := stats(c)) and s.get("audio"), DEADLINE,
                              "the lost client in /ls/stats")  # fmt: skip
            assert lost["fault"] == "device lost" and lost["device"] == f"JACK {NAME}"
            pushed = [m.arg for m in watcher.recv_all(1.0)
                      if m.address == "/ls/status/audio"]  # fmt: skip
            assert pushed and pushed[0].startswith(f"AUDIO DEVICE LOST: JACK {NAME}")
            c.send("/ch/01/mix/fader", fader_norm(-12.0))  # the show goes on

            server.start()
            back = wait_until(lambda: (s := stats(c)) and s.get("audio") is None and s,
                              DEADLINE, "the engine back on the server")  # fmt: skip
            assert back["engine"]["pid"] == pid  # no restart, in place or otherwise
            assert blocks_advance(c)
            assert c.query("/ch/01/mix/fader") == pytest.approx(fader_norm(-12.0),
                                                                abs=1e-4)  # fmt: skip
            links = connections(server)
            assert links["system:capture_1"] == [f"{NAME}:in_01"]
            assert links[f"{NAME}:main_L"] == ["system:playback_1"]
        assert proc.stop() == 0
    finally:
        proc.stop()


def run_engine(tmp_path, server: Jackd, *extra: str) -> subprocess.CompletedProcess:
    """An engine that is expected to refuse to start."""
    cmd = [sys.executable, "-m", "livesound", "engine", "--jack", NAME,
           "--inputs", str(N_IN), "--buses", str(N_BUS), "--osc-port", "0",
           "--no-discovery", "--quiet", "--state-dir", str(tmp_path / "refused"),
           "--scenes", str(tmp_path / "scenes"), *extra]  # fmt: skip
    return subprocess.run(cmd, env=_jack_env(server.name), capture_output=True,
                          text=True, timeout=DEADLINE, stdin=subprocess.DEVNULL)  # fmt: skip


def test_a_taken_client_name_is_refused_plainly(tmp_path, server):
    proc = engine(tmp_path, server)
    try:
        proc.start()
        done = run_engine(tmp_path, server)
        assert done.returncode == 2, done.stderr
        assert "already on the server" in done.stderr and "Traceback" not in done.stderr
    finally:
        proc.stop()


def test_a_server_at_another_rate_is_refused_with_the_option_to_use(tmp_path):
    server = Jackd(tmp_path / "jackd", rate=44100).start()
    try:
        done = run_engine(tmp_path, server)
        assert done.returncode == 2, done.stderr
        assert "44100 Hz" in done.stderr and "--rate 44100" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        server.close()


def test_no_server_is_a_plain_error(tmp_path):
    gone = Jackd(tmp_path / "jackd")  # never started
    done = run_engine(tmp_path, gone)
    assert done.returncode == 2, done.stderr
    assert "no JACK server answers" in done.stderr and "Traceback" not in done.stderr


def test_two_engines_share_the_stage_inputs_under_their_own_names(tmp_path, server):
    """A FOH and a monitor engine on one server, split at the stage box: both
    fed from the same capture ports, each with its ports under its name."""
    config = tmp_path / "mon.toml"  # the monitor engine's routing in its show config
    config.write_text(
        '[jack]\nconnect = { "@capture" = "in_*", "bus_*" = "@playback" }\n'
    )
    foh = engine(tmp_path, server, name="foh")
    mon = engine(tmp_path, server, "--show-config", str(config), name="mon")
    try:
        foh.start()
        mon.start()
        with Client(foh.port) as a, Client(mon.port) as b:
            assert blocks_advance(a) and blocks_advance(b)
            assert stats(a)["name"] == "foh" and stats(b)["name"] == "mon"
        names = ports(server)
        for who in ("foh", "mon"):
            assert f"{who}:in_{N_IN:02d}" in names and f"{who}:main_L" in names
        links = connections(server)
        assert sorted(links["system:capture_1"]) == ["foh:in_01", "mon:in_01"]
        assert links["mon:bus_01"] == ["system:playback_1"]
        assert links["mon:main_L"] == []
        assert foh.stop() == 0 and mon.stop() == 0
    finally:
        foh.stop()
        mon.stop()

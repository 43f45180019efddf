"""``livesound bench osc``: the OSC server measured from the outside.

Round trips and sustained rates are measured against a real ``livesound
engine`` process on the virtual stage (32 inputs, 16 buses, audio running),
with clients on loopback sockets in this process. The fader-to-audio
latency needs to see the audio plane's acknowledgement, so it runs the
engine and the server in this process.
"""

import asyncio
import contextlib
import json
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np

from livesound.audio import layout as L
from livesound.bench.common import free_port
from livesound.control.registry import Registry
from livesound.enginehost import Engine, EngineConfig
from livesound.osc.client import Client, osc
from livesound.osc.server import SUBSCRIPTION_S, OscServer
from livesound.osc.x32tree import tree_for

RATES = (1000, 2500, 5000, 10000, 20000)
CLIENTS = 10
# Requests an unpaired host might send to make the engine talk a lot.
AMPLIFIERS = (
    ("/meters", "/meters/1"), ("/meters", "/meters/2"), ("/meters", "/ls/meters"),
    ("/meters", "/ls/meters/mix/01"), ("/xremote",), ("/ls/stats",),
    ("/node", "ch/01/mix"), ("/ls/scene/list",), ("/ls/bus/01/fbs/spectrum",),
    ("/ls/bus/01/fbs/notches",), ("/nowhere",),
)  # fmt: skip


def stats(client: Client) -> dict:
    """The engine's counters (``/ls/stats``)."""
    return json.loads(client.ask(osc("/ls/stats")).params[0])


@contextlib.contextmanager
def engine_process(port: int) -> Iterator[subprocess.Popen]:
    """A real ``livesound engine`` on the virtual stage, answering OSC."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "livesound", "engine", "--virtual", "--quiet",
         "--osc-host", "127.0.0.1", "--osc-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        probe = Client(port)
        probe.sock.settimeout(0.2)
        deadline = time.monotonic() + 120
        while True:
            try:
                probe.ask(osc("/xinfo"))
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace")
                    raise RuntimeError(f"engine did not start: {err}") from None
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def round_trip(port: int, n: int = 2000) -> dict:
    """Set a fader, then query it: time until the reply arrives."""
    c = Client(port)
    times = np.empty(n)
    for k in range(n):
        value = (k % 100) / 100.0
        time.sleep(0.001)  # a fast fader, well inside the per-client rate limit
        t0 = time.perf_counter()
        c.send(osc("/ch/01/mix/fader", value))
        reply = c.ask(osc("/ch/01/mix/fader"))
        times[k] = time.perf_counter() - t0
        assert reply.address == "/ch/01/mix/fader"
    ms = times * 1000
    return {"n": n, "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}  # fmt: skip


def sustained(port: int, rate: int, seconds: float = 3.0) -> dict:
    """``CLIENTS`` clients sending sets at ``rate`` messages/s in total."""
    clients = [Client(port) for _ in range(CLIENTS)]
    probe = Client(port)
    before = stats(probe)
    messages = [osc(f"/ch/{k % 32 + 1:02d}/mix/{k % 16 + 1:02d}/level", (k % 90) / 100)
                for k in range(997)]  # fmt: skip
    total = int(rate * seconds)
    t0 = time.perf_counter()
    for k in range(total):
        due = t0 + k / rate
        while time.perf_counter() < due:
            pass
        clients[k % CLIENTS].send(messages[k % len(messages)])
    elapsed = time.perf_counter() - t0
    time.sleep(0.5)  # let the server drain
    after = stats(probe)
    sets = after["osc"].get("sets", 0) - before["osc"].get("sets", 0)
    limited = after["osc"].get("rate_limited", 0) - before["osc"].get("rate_limited", 0)
    xruns = after["engine"]["xruns"] - before["engine"]["xruns"]
    return {"rate": rate, "sent": total, "applied": sets, "rate_limited": limited,
            "applied_per_s": sets / elapsed, "lost": total - sets - limited,
            "xruns": xruns}  # fmt: skip


def amplification(port: int) -> dict:
    """Each request of ``AMPLIFIERS`` sent once, each from its own unpaired
    loopback address (127.0.0.N, not in the show), while the engineer moves
    faders (so ``/xremote`` has changes to push): the bytes that come back
    over a subscription's life, divided by the request's bytes."""
    sel = selectors.DefaultSelector()
    got: dict[str, int] = {}
    sent: dict[str, int] = {}
    socks = []
    for k, request in enumerate(AMPLIFIERS):
        name = " ".join(request)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.0.{20 + k}", 0))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, name)
        socks.append(s)
        data = osc(*request)
        s.sendto(data, ("127.0.0.1", port))
        got[name], sent[name] = 0, len(data)
    engineer = Client(port)
    start = time.monotonic()
    end = start + SUBSCRIPTION_S + 1.0
    moves = 0
    while (left := end - time.monotonic()) > 0:
        if time.monotonic() >= start + moves * 0.02:  # a fader move each 20 ms
            engineer.send(osc("/ch/01/mix/fader", (moves % 100) / 100))
            moves += 1
        for key, _ in sel.select(min(left, 0.01)):
            with contextlib.suppress(BlockingIOError):
                while True:
                    got[key.data] += len(key.fileobj.recv(65536))
    for s in socks:
        s.close()
    engineer.close()
    ratios = {name: got[name] / sent[name] for name in got}
    worst = max(ratios, key=ratios.get)
    return {"window_s": SUBSCRIPTION_S + 1.0, "reply_bytes": got, "request_bytes": sent,
            "ratios": ratios, "max_ratio": ratios[worst], "worst": worst}  # fmt: skip


def tree_read(port: int, window: int = 64) -> dict:
    """A client reading the X32's whole tree at connect, as X32 apps and
    libraries do: ``window`` queries in flight, and whatever went unanswered
    (UDP loss, the per-client rate limit) asked again, up to 5 rounds."""
    addresses = tree_for(Registry()).leaves()
    probe = Client(port)
    before = stats(probe)["osc"].get("rate_limited", 0)
    c = Client(port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    c.sock.settimeout(0.3)
    got: set[str] = set()
    asked = 0
    t0 = time.perf_counter()
    missing = addresses
    for _ in range(5):
        for start in range(0, len(missing), window):
            batch = missing[start : start + window]
            for address in batch:
                c.send(osc(address))
            asked += len(batch)
            for _ in batch:
                try:
                    got.add(c.receive().address)
                except OSError:
                    break
        missing = [a for a in addresses if a not in got]
        if not missing:
            break
    elapsed = time.perf_counter() - t0
    c.close()
    limited = stats(probe)["osc"].get("rate_limited", 0) - before
    return {"addresses": len(addresses), "answered": len(got & set(addresses)),
            "asked": asked, "rate_limited": limited, "seconds": elapsed}  # fmt: skip


def fader_to_audio(n: int = 300) -> dict:
    """From sending a fader message to the audio plane taking the change."""
    engine = Engine(EngineConfig(virtual=True))
    engine.start()
    server = OscServer(engine.mixer)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        port.append(loop.run_until_complete(server.start("127.0.0.1", 0)))
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait()
    c = Client(port[0])
    hdr = engine.core.hdr
    times = []
    try:
        for k in range(n):
            acked = int(hdr[L.H_ACK])
            t0 = time.perf_counter()
            c.send(osc("/ch/02/mix/fader", 0.5 + (k % 2) * 0.1))
            while int(hdr[L.H_ACK]) == acked:
                time.sleep(2e-5)
            times.append(time.perf_counter() - t0)
            time.sleep(0.003)
    finally:
        asyncio.run_coroutine_threadsafe(server.aclose(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        engine.stop()
    ms = np.array(times) * 1000
    period = 1000 * engine.cfg.block / engine.cfg.sample_rate
    return {"n": n, "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "block_ms": period}  # fmt: skip


def run(emit=print, quick: bool = False) -> dict:
    port = free_port()
    report: dict = {}
    with engine_process(port):
        tr = tree_read(port)
        report["tree_read"] = tr
        emit(f"a client reads the whole X32 tree at connect: {tr['answered']} of "
             f"{tr['addresses']} addresses in {tr['seconds']:.2f} s "
             f"({tr['asked']} queries, 64 in flight; {tr['rate_limited']} dropped "
             f"by the per-client rate limit and asked again)")  # fmt: skip
        rt = round_trip(port)
        report["round_trip"] = rt
        emit(f"set+query round trip on loopback: median {rt['median_ms']:.3f} ms, "
             f"p99 {rt['p99_ms']:.3f} ms, max {rt['max_ms']:.2f} ms ({rt['n']} pairs)")  # fmt: skip
        amp = amplification(port)
        report["amplification"] = amp
        emit(f"largest reply-to-request byte ratio for an unpaired host: "
             f"{amp['max_ratio']:.0f}x ({amp['worst']}: {amp['request_bytes'][amp['worst']]} "
             f"B in, {amp['reply_bytes'][amp['worst']]} B back over "
             f"{amp['window_s']:.0f} s)")  # fmt: skip
        report["sustained"] = []
        emit(f"{CLIENTS} clients, 3 s per rate, engine on the virtual stage:")
        for rate in RATES:
            r = sustained(port, rate)
            report["sustained"].append(r)
            emit(f"  {rate:>6} msg/s offered: {r['applied_per_s']:>8.0f} applied/s, "
                 f"{r['rate_limited']} rate-limited, {r['lost']} lost, "
                 f"{r['xruns']} xruns")  # fmt: skip
    fa = fader_to_audio()
    report["fader_to_audio"] = fa
    emit(f"fader message to audio plane: median {fa['median_ms']:.2f} ms, p99 "
         f"{fa['p99_ms']:.2f} ms (one block is {fa['block_ms']:.2f} ms)")  # fmt: skip
    return report

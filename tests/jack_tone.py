"""A JACK client for the tests, run as its own process (a libjack client in
the pytest process can take it down when a server dies under it).

    python tests/jack_tone.py INTO LISTEN

plays white noise at -26 dBFS RMS into the port INTO and prints, ten times
a second, the RMS in dBFS of the newest 200 periods the port LISTEN sent it
("-999" until it has heard that many). The server is $JACK_DEFAULT_SERVER.
Ends when its standard input closes.
"""

import math
import sys
import threading
import time

import jack
import numpy as np

PERIODS = 200


def main(into: str, listen: str) -> None:
    client = jack.Client("tone", no_start_server=True)
    out = client.outports.register("out")
    inp = client.inports.register("in")
    noise = np.random.default_rng(1)
    heard: list[float] = []
    lock = threading.Lock()

    @client.set_process_callback
    def process(frames: int) -> None:
        # The test's instrument, not the engine: Python in the callback is fine.
        out.get_array()[:] = noise.normal(0.0, 0.05, frames)
        power = float(np.mean(inp.get_array() ** 2))
        with lock:
            heard.append(power)
            del heard[:-PERIODS]

    client.activate()
    client.connect(out, into)
    client.connect(listen, inp)
    reader = threading.Thread(target=sys.stdin.read, daemon=True)
    reader.start()
    while reader.is_alive():
        with lock:
            level = (10 * math.log10(max(1e-24, sum(heard) / len(heard)))
                     if len(heard) == PERIODS else -999.0)  # fmt: skip
        print(f"{level:.2f}", flush=True)
        time.sleep(0.1)
    client.deactivate()
    client.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""What every benchmark shares: the machine, a free port, a free JACK server
name, the report."""

import itertools
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import uuid
from typing import Any


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                line.split(":", 1)[1].strip() for line in f if "model name" in line
            )
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def free_port() -> int:
    """A UDP port nobody on this machine listens on (for an engine to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_jack_name(prefix: str) -> str:
    """The first of ``prefix-0``, ``prefix-1``, ... that no live JACK server
    answers to (for a jackd of our own).

    JACK's shared-memory registry holds eight servers, and a jackd killed
    without a clean stop (a run cut off) keeps its slot until a server of the
    same name starts and reclaims it. A new name for every server would leak
    a slot per killed one, and after eight every new server on the machine
    fails with "Too many servers already active". Without jack_lsp nothing
    can be asked: a unique name then.
    """
    if shutil.which("jack_lsp") is None:
        return f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return next(
        name
        for name in (f"{prefix}-{i}" for i in itertools.count())
        if not jack_answers(name)
    )


def jack_answers(name: str) -> bool:
    """Whether a JACK server called ``name`` is up (``jack_lsp`` reaches it)."""
    env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
    try:
        done = subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return True  # something holds the name and does not answer: not free
    return done.returncode == 0


def report(measure, as_json: bool = False) -> int:
    """Run ``measure(emit)``: lines on stdout, or lines on stderr and JSON on stdout."""
    if as_json:
        result = measure(emit=lambda line: print(line, file=sys.stderr, flush=True))
        print(json.dumps(result, indent=2))
    else:
        measure(emit=lambda line: print(line, flush=True))
    return 0

"""What every benchmark shares: the machine, a free port, the report."""

import json
import os
import platform
import socket
import sys
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


def report(measure, as_json: bool = False) -> int:
    """Run ``measure(emit)``: lines on stdout, or lines on stderr and JSON on stdout."""
    if as_json:
        result = measure(emit=lambda line: print(line, file=sys.stderr, flush=True))
        print(json.dumps(result, indent=2))
    else:
        measure(emit=lambda line: print(line, flush=True))
    return 0

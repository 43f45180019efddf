"""A warm start loads the compiled audio plane from numba's cache."""

import os
import re
import subprocess
import sys

import pytest

PROBE = """
import numpy as np
from livesound.control.offline import BlockEngine
e = BlockEngine(n_in=4, n_bus=2, phys_in=4, phys_out=8)
e.process(np.zeros((64, 4), np.float32))
"""


def start_engine_logging_cache() -> str:
    env = dict(os.environ, NUMBA_DEBUG_CACHE="1")
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=600, check=True)  # fmt: skip
    return done.stdout + done.stderr


@pytest.mark.slow
def test_second_start_loads_every_kernel_from_cache():
    start_engine_logging_cache()  # compiles and saves whatever is missing
    log = start_engine_logging_cache()
    saved = re.findall(r"data saved to '([^']+)'", log)
    loaded = re.findall(r"data loaded from '([^']+)'", log)
    assert not saved, f"warm start compiled again: {saved}"
    assert any("audio_callback" in path for path in loaded), loaded

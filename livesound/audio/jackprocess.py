"""The native JACK client's process callback, a numba C function.

JACK calls ``jack_process(nframes, arg)`` from its real-time thread with
one buffer per port. ``arg`` points at an int64 *port table* (``J_*``
below) that the control plane fills before the client is activated: the
engine header, the address of ``jack_port_get_buffer``, the ports, and two
interleaved float32 scratch buffers. The callback gathers the input ports
into the scratch buffer, runs the engine's one callback body
(``kernels.run_callback``) and scatters the outputs to their ports: no
Python, no GIL, no allocation, the same rule as the PortAudio path.

It lives apart from ``kernels``, and is compiled (or loaded from numba's
cache) on first use, so that an engine without JACK never spends start-up
time on it.
"""

import functools

import numpy as np
from numba import carray, cfunc, types

from livesound.audio import layout as L
from livesound.audio.kernels import run_callback
from livesound.audio.lowlevel import call_buffer_function, f32_pointer, i64_pointer

# The port table: fixed fields, then the input ports, then the output ports.
J_HDR = 0  # address of the engine header
J_GET_BUFFER = 1  # address of jack_port_get_buffer
J_N_IN = 2
J_N_OUT = 3
J_SCRATCH_IN = 4  # float32 [J_MAX_FRAMES, n_in]
J_SCRATCH_OUT = 5  # float32 [J_MAX_FRAMES, n_out]
J_MAX = 6  # frames the scratch buffers hold
J_PORTS = 8
MAX_FRAMES = 8192  # JACK's largest period; a larger one is done in pieces


def table_size(n_in: int, n_out: int) -> int:
    """Length of the port table for ``n_in`` and ``n_out`` ports."""
    return J_PORTS + n_in + n_out


PROCESS_SIG = types.int32(types.uint32, types.voidptr)


def jack_process(nframes, arg):
    """JACK's process callback: ``arg`` is the port table."""
    fixed = carray(arg, (J_PORTS,), np.int64)
    n_in, n_out, most = fixed[J_N_IN], fixed[J_N_OUT], fixed[J_MAX]
    table = carray(arg, (J_PORTS + n_in + n_out,), np.int64)
    hdr = carray(i64_pointer(table[J_HDR]), (L.N_HDR,))
    get_buffer = table[J_GET_BUFFER]
    off = 0
    while off < nframes:
        n = min(most, nframes - off)
        # Views of exactly n frames (not slices), so the callback body is
        # the same compiled specialisation the PortAudio path runs.
        scratch_in = carray(f32_pointer(table[J_SCRATCH_IN]), (n, n_in))
        scratch_out = carray(f32_pointer(table[J_SCRATCH_OUT]), (n, n_out))
        for c in range(n_in):
            port = table[J_PORTS + c]
            buf = carray(f32_pointer(call_buffer_function(get_buffer, port, nframes)),
                         (nframes,))  # fmt: skip
            for i in range(n):
                scratch_in[i, c] = buf[off + i]
        run_callback(hdr, scratch_in, scratch_out, 0)
        for c in range(n_out):
            port = table[J_PORTS + n_in + c]
            buf = carray(f32_pointer(call_buffer_function(get_buffer, port, nframes)),
                         (nframes,))  # fmt: skip
            for i in range(n):
                buf[off + i] = scratch_out[i, c]
        off += n
    return 0


@functools.cache
def process_callback():
    """``jack_process`` as a C function (its ``.address`` goes to JACK)."""
    return cfunc(PROCESS_SIG, cache=True, nopython=True, error_model="numpy")(
        jack_process
    )

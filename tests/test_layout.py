"""The memory layout has one statement of every shape, and the audio plane
finds each array where the control plane put it."""

import pytest

from livesound.audio import kernels
from livesound.audio import layout as L


@pytest.mark.parametrize(
    "dims",
    [
        L.Dims(n_in=1, n_bus=0, phys_in=1, phys_out=1, max_block=1),
        L.Dims(n_in=5, n_bus=3, phys_in=4, phys_out=9, max_block=64),
        L.Dims(),
        L.Dims(n_in=2, n_bus=2, phys_in=2, phys_out=6, afc_paths=((0, 0), (1, 2))),
    ],
    ids=["smallest", "odd", "default", "afc"],
)
def test_the_kernels_see_every_array_as_allocated(dims):
    memory = L.EngineMemory(dims)
    seen = kernels.state_from_header(memory.hdr) + kernels.afc_from_header(memory.hdr)
    assert len(seen) == len(L.ARRAYS)
    for name, got, want in zip(L.ARRAYS, seen, memory.state(), strict=True):
        assert (got.shape, got.dtype) == (want.shape, want.dtype), name
        assert got.ctypes.data == want.ctypes.data, name


def test_output_count_and_names_agree():
    for n_bus in (0, 2, 16):
        dims = L.Dims(n_bus=n_bus)
        assert dims.n_out == L.n_outputs(n_bus) == len(L.output_names(n_bus))
        assert L.output_names(n_bus)[dims.main_l] == "L"
        assert L.output_names(n_bus)[dims.cue_l] == "CL"


def test_dynamics_rows_are_named_ranges_that_do_not_overlap():
    ranges = {
        "gate params": range(L.IP_GATE, L.IP_GATE + L.N_GATE_PARAMS),
        "comp params": range(L.IP_COMP, L.IP_COMP + L.N_COMP_PARAMS),
        "gate state": range(L.IS_GATE, L.IS_GATE + L.N_GATE_STATE),
        "comp state": range(L.IS_COMP, L.IS_COMP + L.N_COMP_STATE),
    }
    rows = [r for span in ranges.values() for r in span]
    assert len(rows) == len(set(rows))
    # Parameters travel in the mailbox; state never does.
    assert max(ranges["gate params"]) < L.N_IN_PARAMS
    assert max(ranges["comp params"]) < L.N_IN_PARAMS
    assert min(ranges["gate state"]) >= L.N_IN_PARAMS
    assert max(ranges["comp state"]) < L.N_IN_FIELDS
    assert L.IP_GATE_REL == L.IP_GATE + L.GATE_REL
    assert L.IM_COMP_GR == L.IS_COMP + L.COMP_GR

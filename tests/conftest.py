"""Shared pytest fixtures.

Each section below is self-contained; add new fixtures in their own section.
"""

from __future__ import annotations

import pytest

# ---------------------------------------------------------------------------
# JACK server: a private jackd (dummy backend, 48 kHz, 64 frames, 8 in / 8 out)
# that PortAudio/sounddevice in this process can open streams on.
# Process, wait and PortAudio logic live in tests/jackserver.py.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory):
    """A running JACK server, as seen by PortAudio.

    Yields a ``jackserver.JackServer`` with ``device`` (PortAudio device index),
    ``name``, ``samplerate``, ``blocksize``, ``server_name``, ``xruns()`` and
    ``client_xruns()``.  jackd's logs go to the pytest temp dir ``jackd*``.
    If jackd cannot be started, the requesting tests fail when ``CI`` is set
    and are skipped otherwise.
    """
    from jackserver import JackServerError, running_in_ci, start_jack_server

    try:
        server = start_jack_server(log_dir=tmp_path_factory.mktemp("jackd"))
    except JackServerError as exc:
        message = f"no JACK server: {exc}"
        if running_in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield server
    finally:
        server.close()


# ---------------------------------------------------------------------------
# Engine state: every engine a test starts (in-process or as a subprocess)
# autosaves into a private folder, never the user's ~/.local/state.
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _private_engine_state(tmp_path, monkeypatch):
    """Each test's engines autosave into that test's own folder, so no test
    restores another's show (nor the user's ~/.local/state)."""
    monkeypatch.setenv("LIVESOUND_STATE", str(tmp_path / "livesound-state"))


@pytest.fixture(autouse=True, scope="session")
def _session_engine_state(tmp_path_factory):
    """The same for engines started by module- or session-scoped fixtures."""
    import os

    os.environ["LIVESOUND_STATE"] = str(tmp_path_factory.mktemp("livesound-state"))

"""Where livesound keeps things on disk (no imports of its own: any floor and
the command line may ask)."""

import hashlib
import os
from pathlib import Path


def default_state_dir() -> Path:
    """Where the show's autosave lives unless ``--state-dir`` says otherwise:
    ``$LIVESOUND_STATE``, else ``$XDG_STATE_HOME/livesound``, else
    ``~/.local/state/livesound``."""
    env = os.environ.get("LIVESOUND_STATE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "livesound"


def audio_digest() -> str:
    """A digest of the audio plane's sources. numba's cache checks only the
    file a function is defined in, but the compiled kernels also hold
    ``layout``'s constants, and the JACK callback holds the kernels: a cache
    folder per digest means no change to any of them ever runs stale code."""
    digest = hashlib.sha256()
    for path in sorted((Path(__file__).parent / "audio").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def numba_cache_dir() -> Path:
    """Where numba keeps the compiled kernels:
    ``$XDG_CACHE_HOME/livesound/numba/DIGEST`` (else ``~/.cache/...``),
    outside the package, so an installed copy and a source checkout never
    read each other's cache files, and one folder per ``audio_digest``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "livesound" / "numba" / audio_digest()


def use_numba_cache() -> None:
    """Point numba at ``numba_cache_dir()`` unless the user chose a folder;
    must run before numba is imported."""
    os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))


def kernels_cached() -> bool:
    """Whether numba's cache holds the compiled audio callback (a start
    without it compiles for half a minute or more)."""
    from numba.core.caching import UserProvidedCacheLocator

    kernels = Path(__file__).parent / "audio" / "kernels.py"
    sub = UserProvidedCacheLocator.get_suitable_cache_subpath(str(kernels))
    folder = Path(os.environ.get("NUMBA_CACHE_DIR") or numba_cache_dir()) / sub
    return any(folder.glob("kernels.audio_callback-*.nbi"))

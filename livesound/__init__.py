"""livesound: a live sound reinforcement console."""

from livesound.places import use_numba_cache

use_numba_cache()

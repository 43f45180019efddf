"""livesound: a live sound reinforcement console."""

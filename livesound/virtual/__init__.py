"""The virtual stage and closed-loop simulation: a band, a room and a sound
card without hardware, and material for measuring feedback suppression."""

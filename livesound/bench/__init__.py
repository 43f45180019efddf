"""``livesound bench``: one module per subject (engine, osc, scenes, console,
feedback, faults)."""

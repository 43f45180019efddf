"""Scenes: recallable show presets, saved safely."""

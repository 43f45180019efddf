"""Feedback suppression: howl detection and notch decisions."""

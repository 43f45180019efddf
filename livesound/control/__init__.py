"""The control plane: the parameter registry, derivation, the Mixer, undo."""

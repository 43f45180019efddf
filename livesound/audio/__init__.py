"""The audio plane: memory layout, kernels, the C callback, devices. Imports
nothing else of livesound."""

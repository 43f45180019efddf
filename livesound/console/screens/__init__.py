"""Console screens: mixer, channel detail, outputs, scenes, dialogs."""

"""cm-tracking: trackers bound to the engine only through cm's lifecycle hooks."""

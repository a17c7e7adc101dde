"""Registration of the built-in trackers. Nothing is registered yet: the MLflow tracker,
the Optuna sweep driver and replay land with issue #6 (`cm plugins` shows no trackers)."""

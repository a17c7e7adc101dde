"""Registration of the built-in trackers: ``mlflow`` (see docs/tracking.md)."""

from cm.hookspecs import hookimpl
from cm_tracking.mlflow_tracker import MlflowOptions, build_tracker


@hookimpl
def register_trackers(register):
    register("mlflow", build_tracker, options=MlflowOptions)

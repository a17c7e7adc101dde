"""Registration of the built-in trackers: ``mlflow`` (see docs/tracking.md)."""

from cm.hookspecs import hookimpl
from cm_tracking.options import MlflowOptions


def build_mlflow(options, experiment):
    """mlflow is imported only when a run is tracked (it takes seconds to import)."""
    from cm_tracking.mlflow_tracker import MlflowTracker

    return MlflowTracker(options, experiment)


@hookimpl
def register_trackers(register):
    register("mlflow", build_mlflow, options=MlflowOptions)

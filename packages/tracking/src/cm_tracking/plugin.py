"""The ``tracking`` entry point of group ``cm``: the ``mlflow`` tracker (see
docs/tracking.md) and the commands ``cm sweep``, ``cm replay`` and ``cm predict --run-id``."""

from cm.hookspecs import hookimpl
from cm_tracking.options import MlflowOptions


def build_mlflow(options, experiment):
    """mlflow is imported only when a run is tracked (it takes seconds to import)."""
    from cm_tracking.mlflow_tracker import MlflowTracker

    return MlflowTracker(options, experiment)


@hookimpl
def register_trackers(register):
    register("mlflow", build_mlflow, options=MlflowOptions)


@hookimpl
def register_commands(cli):
    from cm_tracking.commands import register

    register(cli)

"""The ``tracking`` entry point of group ``cm``: the ``mlflow`` tracker (see
docs/tracking.md), the commands ``cm sweep`` and ``cm replay``, and MLflow runs as the run
source of ``cm predict --run-id`` and ``cm compare ID``."""

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


@hookimpl
def fetch_run(run_id, part, tracking_uri, into):
    """An MLflow run's logged checkpoint or test predictions (``tracking_uri``: the store,
    default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."""
    from cm_tracking.replay import logged_checkpoint, logged_predictions

    fetch = {"checkpoint": logged_checkpoint, "predictions": logged_predictions}[part]
    return fetch(run_id, tracking_uri, into)

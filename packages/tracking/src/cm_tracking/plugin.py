"""The ``tracking`` entry point of group ``cm``: the ``mlflow`` tracker (see
docs/tracking.md), the commands ``cm sweep`` and ``cm replay``, and MLflow runs as the run
source of ``cm predict --run-id`` and ``cm compare ID``."""

import re

from cm.errors import UserError
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

    if re.fullmatch(r"[0-9a-f]{32}", run_id) is None:  # a mistyped path, not a lookup
        folder = "no such run directory, and " if part == "predictions" else ""
        raise UserError(f"{run_id!r}: {folder}not an MLflow run id (32 hex digits); pass a "
                        "run directory written by `cm run` (outputs/<name>/<timestamp>) or "
                        "the id of a tracked run")
    fetch = {"checkpoint": logged_checkpoint, "predictions": logged_predictions}[part]
    return fetch(run_id, tracking_uri, into)

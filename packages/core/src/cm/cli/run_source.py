"""Runs given by id (``cm predict --run-id``, ``cm compare ID ...``): what a tracker logged,
fetched through the ``fetch_run`` hook (cm-tracking answers it for MLflow) into a temporary
folder that lives as long as the command."""

import contextlib
import tempfile
from pathlib import Path

import click

from cm.errors import UserError

TRACKING_URI_HELP = ("Store holding runs given by id (cm-tracking: an MLflow tracking URI; "
                     "default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")


def tracking_uri_option(func):
    return click.option("--tracking-uri", help=TRACKING_URI_HELP)(func)


@contextlib.contextmanager
def scratch():
    """A temporary folder for fetched runs, removed when the command ends."""
    with tempfile.TemporaryDirectory(prefix="cm-run-") as path:
        yield Path(path)


def fetch(run_id: str, part: str, tracking_uri: str | None, into: Path) -> Path:
    """``part`` ("checkpoint" or "predictions") of the run ``run_id``, from the installed
    run sources, fetched into the folder ``into`` (made here)."""
    from cm.plugins import installed_plugins

    into.mkdir(parents=True, exist_ok=True)
    found = installed_plugins().manager.hook.fetch_run(
        run_id=run_id, part=part, tracking_uri=tracking_uri, into=into)
    if found is None:
        raise UserError(f"run {run_id!r}: no installed plugin fetches runs by id; give a run "
                        "directory (or --model DIR), or install cm-tracking for MLflow run ids")
    return Path(found)

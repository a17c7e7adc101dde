"""Commands whose engines have not landed yet. They validate their experiment file (so
users can prepare configs today) and then say plainly that the engine is missing."""

import click

from cm.cli.options import experiment_argument, load

NOT_YET = 3  # exit code: the command exists but its engine is not implemented yet


def _not_yet(what, issue):
    click.secho(f"cm {what}: not implemented yet (tracked in issue #{issue}).",
                fg="yellow", err=True)
    raise SystemExit(NOT_YET)


@click.command()
@experiment_argument
@click.option("--storage", help="Optuna storage URL (default: sqlite next to the outputs).")
@click.option("--study-name", help="Resume or join this study.")
def sweep(experiment_file, overrides, storage, study_name):
    """Run an Optuna study over the search space in EXPERIMENT_FILE's [hpo] table."""
    load(experiment_file, overrides)
    _not_yet("sweep", 6)


@click.command()
@click.option("--run-id", required=True, help="MLflow run id to replay.")
@click.option("--eval-only", is_flag=True, help="Re-evaluate the logged checkpoint.")
@click.option("--allow-data-change", is_flag=True, help="Replay even if the data changed.")
@click.option("--tolerance", type=float, default=0.5, show_default=True,
              help="Largest accepted |delta| of test macro-F1, in percentage points.")
@click.option("--tracking-uri", help="MLflow store holding the run (default: "
              "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
def replay(run_id, eval_only, allow_data_change, tolerance, tracking_uri):
    """Re-run a logged run from its stored config and compare metrics.

    Landed with issue #6: the engine is cm-tracking's, imported only when called so cm-core
    works without MLflow. Exit 1 when the delta is beyond the tolerance."""
    import importlib.util

    from cm.errors import UserError

    if importlib.util.find_spec("cm_tracking") is None:
        raise UserError("cm replay needs the cm-tracking package (MLflow); install it, e.g. "
                        "pip install -e packages/tracking")
    from cm_tracking.replay import replay as run_replay

    outcome = run_replay(run_id, uri=tracking_uri, eval_only=eval_only,
                         allow_data_change=allow_data_change, tolerance_pp=tolerance)
    raise SystemExit(0 if outcome.within else 1)


COMMANDS = [sweep, replay]

"""``cm sweep`` and ``cm replay``: their engines live in cm-tracking and are imported only
when a command runs, so cm-core works without MLflow or Optuna installed."""

import click

from cm.cli.options import experiment_argument


@click.command()
@experiment_argument
@click.option("--storage", metavar="URL",
              help="Optuna RDB storage: sqlite:///x.db or postgresql://user:pw@host/db "
                   "(default: sqlite:///<output_dir>/optuna.db).")
@click.option("--study-name", help="Resume or join this study (default: a new study named "
                                   "<name>-<timestamp>).")
@click.option("-v", "--verbose", is_flag=True, help="Show each trial's training output.")
def sweep(experiment_file, overrides, storage, study_name, verbose):
    """Run an Optuna study over the search space in EXPERIMENT_FILE's [hpo] table: the
    baseline first, then TPE-sampled trials pruned on per-epoch validation; each trial is an
    MLflow run nested under the study's run; the best config is written as a TOML."""
    try:
        from cm_tracking.sweep import run_sweep
    except ImportError as exc:
        from cm.errors import UserError

        raise UserError(f"cm sweep needs cm-tracking with Optuna ({exc}); install it: "
                        "pip install -e packages/tracking") from None
    run_sweep(experiment_file, overrides, storage=storage, study_name=study_name,
              verbose=verbose)


@click.command()
@click.option("--run-id", required=True, help="MLflow run id to replay.")
@click.option("--eval-only", is_flag=True, help="Re-evaluate the logged checkpoint.")
@click.option("--allow-data-change", is_flag=True, help="Replay even if the data changed.")
@click.option("--tolerance", type=float, default=0.5, show_default=True,
              help="Largest accepted |delta| of test macro-F1, in percentage points.")
@click.option("--tracking-uri", help="MLflow store holding the run (default: "
              "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")
def replay(run_id, eval_only, allow_data_change, tolerance, tracking_uri):
    """Re-run a logged run from its stored config and compare metrics; exit 1 when the test
    macro-F1 delta is beyond the tolerance."""
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
